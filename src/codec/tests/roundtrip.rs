//! Every client packet survives encode -> decode in both versions; server packets encode to
//! the exact bytes the spec gives; encoding follows the protocol the CONNECT asked for.

use super::*;

#[test]
fn client_packets_round_trip_v4() {
    for p in client_packets(Protocol::V4) {
        let bytes = encode(Protocol::V4, &p);
        assert_eq!(decode(Protocol::V4, &bytes), Ok(p.clone()), "{bytes:02x?}");
    }
}

#[test]
fn client_packets_round_trip_v5() {
    for p in client_packets(Protocol::V5) {
        let bytes = encode(Protocol::V5, &p);
        assert_eq!(decode(Protocol::V5, &bytes), Ok(p.clone()), "{bytes:02x?}");
    }
}

#[test]
fn v4_encoding_drops_5_0_fields() {
    let rich = client_packets(Protocol::V5);
    let plain = client_packets(Protocol::V4);
    // Same kinds in the same order for the first entries (5.0 adds some at the end).
    for (r, p) in rich.iter().zip(&plain) {
        let bytes = encode(Protocol::V4, r);
        let mut expected = p.clone();
        if let Packet::Publish(x) = &mut expected {
            x.props = PublishProps::default();
        }
        assert_eq!(decode(Protocol::V4, &bytes), Ok(expected));
    }
}

#[test]
fn v4_disconnect_writes_nothing() {
    assert!(encode(Protocol::V4, &Packet::Disconnect(Disconnect::default())).is_empty());
}

#[test]
fn server_packets_have_the_spec_bytes_v4() {
    let expected: [&[u8]; 10] = [
        &[0x20, 2, 1, 0],
        &[
            0x3B, 25, 0, 5, b'a', b'/', b'b', b'/', b'c', 0, 7, b'p', b'a', b'y', b'l', b'o',
        ],
        &[0x40, 2, 0, 1],
        &[0x50, 2, 0, 2],
        &[0x62, 2, 0, 3],
        &[0x70, 2, 0, 4],
        &[0x90, 6, 0, 5, 0, 1, 2, 0x80],
        &[0xB0, 2, 0, 6],
        &[0xD0, 0],
        &[],
    ];
    for (p, want) in server_packets().iter().zip(expected) {
        let got = encode(Protocol::V4, p);
        // The PUBLISH payload is longer than the prefix listed.
        assert!(got.starts_with(want), "{p:?}: {got:02x?}");
    }
}

#[test]
fn server_packets_have_the_spec_bytes_v5() {
    let expected: [&[u8]; 10] = [
        // CONNACK always carries a property length (mqttbytes' None drops it).
        &[0x20, 3, 1, 0, 0],
        &[
            0x3B, 26, 0, 5, b'a', b'/', b'b', b'/', b'c', 0, 7, 0, b'p', b'a', b'y', b'l',
        ],
        // Plain successes use the 2-byte form.
        &[0x40, 2, 0, 1],
        &[0x50, 2, 0, 2],
        &[0x62, 2, 0, 3],
        &[0x70, 2, 0, 4],
        &[0x90, 7, 0, 5, 0, 0, 1, 2, 0x80],
        &[0xB0, 5, 0, 6, 0, 0, 0x11],
        &[0xD0, 0],
        &[0xE0, 2, 0x8B, 0],
    ];
    for (p, want) in server_packets().iter().zip(expected) {
        let got = encode(Protocol::V5, p);
        assert!(got.starts_with(want), "{p:?}: {got:02x?}");
    }
}

#[test]
fn v5_acks_with_reason_carry_it_and_the_reason_string() {
    let ack = Ack {
        packet_id: PacketId(1),
        reason: reason::NO_MATCHING_SUBSCRIBERS,
        reason_string: None,
    };
    assert_eq!(
        &encode(Protocol::V5, &Packet::PubAck(ack.clone()))[..],
        &[0x40, 4, 0, 1, 0x10, 0]
    );
    let with_string = Ack {
        reason_string: Some("no".into()),
        ..ack
    };
    assert_eq!(
        &encode(Protocol::V5, &Packet::PubRec(with_string))[..],
        &[0x50, 9, 0, 1, 0x10, 5, 0x1F, 0, 2, b'n', b'o']
    );
}

#[test]
fn connack_reason_codes_map_to_3_1_1_return_codes() {
    let table = [
        (0x00, 0),
        (0x84, 1),
        (0x85, 2),
        (0x88, 3),
        (0x89, 3),
        (0x9C, 3),
        (0x9F, 3),
        (0x8A, 3),
        (0x86, 4),
        (0x87, 5),
        (0x80, 3),
        (0x95, 3),
    ];
    for (reason, code) in table {
        let ack = Packet::ConnAck(Box::new(ConnAck {
            reason,
            session_present: true,
            ..ConnAck::default()
        }));
        // Session present only survives on success [MQTT-3.2.2-4].
        let sp = u8::from(reason == 0);
        assert_eq!(
            &encode(Protocol::V4, &ack)[..],
            &[0x20, 2, sp, code],
            "{reason:#x}"
        );
    }
}

#[test]
fn suback_v4_sends_0x80_for_every_failure() {
    let ack = Packet::SubAck(SubAck {
        packet_id: PacketId(1),
        codes: vec![0x87, 0x8F, 0xA2, 0x03, 1],
        reason_string: Some("dropped in 3.1.1".into()),
    });
    assert_eq!(
        &encode(Protocol::V4, &ack)[..],
        &[0x90, 7, 0, 1, 0x80, 0x80, 0x80, 0x80, 1]
    );
}

#[test]
fn encoding_follows_the_level_the_connect_asked_for() {
    let refused = Packet::ConnAck(Box::new(ConnAck {
        reason: reason::UNSUPPORTED_PROTOCOL_VERSION,
        ..ConnAck::default()
    }));
    // MQTT 3.1 ("MQIsdp", level 3): refused, answered in 3.1.1 with return code 1.
    let mut c = Codec::new(MAX);
    let v31 = pkt(0x10, &cat(&[&s(b"MQIsdp"), &[3, 2, 0, 10], &s(b"id")]));
    assert_eq!(
        decode_with(&mut c, &v31),
        Err(CodecError::UnsupportedProtocol(3))
    );
    assert_eq!(c.protocol(), Some(Protocol::V4));
    let mut out = BytesMut::new();
    c.encode(&refused, &mut out).unwrap();
    assert_eq!(&out[..], &[0x20, 2, 0, 1]);

    // A future level 6: answered in 5.0 with 0x84.
    let mut c = Codec::new(MAX);
    let v6 = pkt(0x10, &cat(&[&s(b"MQTT"), &[6, 2, 0, 10, 0], &s(b"id")]));
    assert_eq!(
        decode_with(&mut c, &v6),
        Err(CodecError::UnsupportedProtocol(6))
    );
    assert_eq!(c.protocol(), Some(Protocol::V5));
    let mut out = BytesMut::new();
    c.encode(&refused, &mut out).unwrap();
    assert_eq!(&out[..], &[0x20, 3, 0, 0x84, 0]);

    // A 3.1.1 CONNECT that is malformed after its level still fixes the protocol.
    let mut c = Codec::new(MAX);
    let bad = pkt(0x10, &cat(&[&s(b"MQTT"), &[4, 1, 0, 10], &s(b"id")]));
    assert!(matches!(
        decode_with(&mut c, &bad),
        Err(CodecError::Malformed(_))
    ));
    assert_eq!(c.protocol(), Some(Protocol::V4));

    // Nothing read yet: 5.0.
    assert_eq!(Codec::new(MAX).protocol(), None);
    let mut out = BytesMut::new();
    Codec::new(MAX).encode(&Packet::PingResp, &mut out).unwrap();
    assert_eq!(&out[..], &[0xD0, 0]);
}

#[test]
fn accepted_connect_sets_the_protocol() {
    for protocol in [Protocol::V4, Protocol::V5] {
        let bytes = encode(protocol, &Packet::Connect(Box::new(connect(protocol))));
        let mut c = Codec::new(MAX);
        decode_with(&mut c, &bytes).unwrap();
        assert_eq!(c.protocol(), Some(protocol));
    }
}

#[test]
fn encode_errors_write_nothing() {
    let mut no_id = publish(QoS::AtLeastOnce, 1);
    no_id.packet_id = None;
    let mut long_topic = publish(QoS::AtMostOnce, 0);
    long_topic.topic = "t".repeat(70_000);
    let mut no_topic = publish(QoS::AtMostOnce, 0);
    no_topic.topic.clear();
    let mut long_prop = publish(QoS::AtMostOnce, 0);
    long_prop.props.user_properties = vec![("k".repeat(70_000), "v".into())];
    let bad_sub = Packet::Subscribe(Subscribe {
        packet_id: PacketId(1),
        filters: vec![(
            "a".into(),
            SubOptions {
                retain_handling: 3,
                ..SubOptions::default()
            },
        )],
        ..Subscribe::default()
    });
    let cases = [
        (Protocol::V4, Packet::Publish(no_id.clone())),
        (Protocol::V5, Packet::Publish(no_id)),
        (Protocol::V4, Packet::Publish(long_topic.clone())),
        (Protocol::V5, Packet::Publish(long_topic)),
        (Protocol::V4, Packet::Publish(no_topic.clone())),
        (Protocol::V5, Packet::Publish(no_topic)),
        (Protocol::V5, Packet::Publish(long_prop)),
        (Protocol::V5, bad_sub),
    ];
    for (protocol, p) in cases {
        let mut out = BytesMut::from(&b"kept"[..]);
        assert!(
            codec(protocol).encode(&p, &mut out).is_err(),
            "{protocol:?}"
        );
        assert_eq!(&out[..], b"kept");
    }
}

#[test]
fn oversized_publish_is_refused_when_encoding() {
    let mut big = publish(QoS::AtMostOnce, 0);
    big.payload = Bytes::from(vec![0u8; 268_435_456]);
    for protocol in [Protocol::V4, Protocol::V5] {
        let mut out = BytesMut::new();
        let err = codec(protocol).encode(&Packet::Publish(big.clone()), &mut out);
        assert!(
            matches!(err, Err(CodecError::PacketTooLarge { .. })),
            "{err:?}"
        );
        assert!(out.is_empty());
    }
}
