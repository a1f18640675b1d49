//! Hostile and broken input: each case is refused with the error (and so the reason code)
//! the spec asks for, including everything mqttbytes 0.6 lets through.

use super::*;
use Protocol::{V4, V5};

const MALFORMED: u8 = reason::MALFORMED_PACKET;
const PROTOCOL: u8 = reason::PROTOCOL_ERROR;
const TOPIC: u8 = reason::TOPIC_NAME_INVALID;
const FILTER: u8 = reason::TOPIC_FILTER_INVALID;

#[track_caller]
fn refused(protocol: Protocol, bytes: &[u8], code: u8) {
    let e = decode_err(protocol, bytes);
    assert_eq!(e.reason_code(), code, "{protocol:?} {bytes:02x?}: {e}");
}

/// A CONNECT: flags, then the payload after the client id's place (v5: properties before).
fn connect(level: u8, flags: u8, props: &[u8], rest: &[u8]) -> Vec<u8> {
    let head = cat(&[&s(b"MQTT"), &[level, flags, 0, 10]]);
    pkt(0x10, &cat(&[&head, props, rest]))
}

#[test]
fn framing() {
    // A fifth remaining-length byte, before and after CONNECT.
    refused(V4, &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MALFORMED);
    refused(V5, &[0x30, 0xFF, 0xFF, 0xFF, 0x80, 0x01], MALFORMED);
    refused(V4, &[0x00, 0x00], MALFORMED);
    refused(V4, &[0x60, 0x02, 0x00, 0x01], MALFORMED); // PUBREL flags must be 0010
    refused(
        V5,
        &pkt(0x80, &cat(&[&[0, 1, 0], &s(b"a"), &[0]])),
        MALFORMED,
    );
    refused(V4, &pkt(0xA0, &cat(&[&[0, 1], &s(b"a")])), MALFORMED);
    refused(V4, &[0xC1, 0x00], MALFORMED);
    refused(V4, &pkt(0x36, &cat(&[&s(b"a"), &[0, 1]])), MALFORMED); // QoS 3
    refused(V5, &pkt(0x38, &cat(&[&s(b"a"), &[0]])), MALFORMED); // DUP on QoS 0
}

#[test]
fn packet_order() {
    let mut fresh = Codec::new(MAX);
    let e = decode_with(&mut fresh, &[0xC0, 0x00]).unwrap_err();
    assert_eq!(e.reason_code(), PROTOCOL);
    let e = decode_with(&mut Codec::new(MAX), &pkt(0x30, &s(b"a"))).unwrap_err();
    assert_eq!(e.reason_code(), PROTOCOL);

    let hello = encode(V4, &Packet::Connect(Box::new(super::connect(V4))));
    let mut c = Codec::new(MAX);
    decode_with(&mut c, &hello).unwrap();
    assert_eq!(
        decode_with(&mut c, &hello).unwrap_err().reason_code(),
        PROTOCOL
    );

    for server in [
        &[0x20, 2, 0, 0][..],
        &[0x90, 3, 0, 1, 0],
        &[0xB0, 2, 0, 1],
        &[0xD0, 0],
    ] {
        refused(V4, server, PROTOCOL);
        refused(V5, server, PROTOCOL);
    }
    // AUTH: not offered in 5.0, a reserved type in 3.1.1.
    refused(V5, &[0xF0, 0x00], PROTOCOL);
    refused(V4, &[0xF0, 0x00], MALFORMED);
}

#[test]
fn connect_versions() {
    let id = s(b"id");
    let mqisdp = pkt(0x10, &cat(&[&s(b"MQIsdp"), &[3, 2, 0, 10], &id]));
    for (bytes, level) in [
        (mqisdp, 3),
        (connect(3, 2, &[], &id), 3),
        (connect(6, 2, &[0], &id), 6),
        (connect(0, 2, &[], &id), 0),
    ] {
        let e = decode_err(V4, &bytes);
        assert_eq!(e, CodecError::UnsupportedProtocol(level));
        assert_eq!(e.reason_code(), reason::UNSUPPORTED_PROTOCOL_VERSION);
    }
    let wrong_name = pkt(0x10, &cat(&[&s(b"MQTX"), &[4, 2, 0, 10], &id]));
    refused(V4, &wrong_name, PROTOCOL);
    let wrong_pair = pkt(0x10, &cat(&[&s(b"MQIsdp"), &[4, 2, 0, 10], &id]));
    assert_eq!(
        decode_err(V4, &wrong_pair),
        CodecError::UnsupportedProtocol(4)
    );
}

#[test]
fn connect_flags_and_payload() {
    let id = s(b"id");
    let will = cat(&[&s(b"w"), &s(b"bye")]);
    refused(V4, &connect(4, 0x03, &[], &id), MALFORMED); // reserved flag
    refused(V4, &connect(4, 0x0A, &[], &id), MALFORMED); // will QoS, no will
    refused(V5, &connect(5, 0x22, &[0], &id), MALFORMED); // will retain, no will
    refused(V4, &connect(4, 0x1E, &[], &cat(&[&id, &will])), MALFORMED); // will QoS 3
    refused(
        V4,
        &connect(4, 0x42, &[], &cat(&[&id, &s(b"pw")])),
        MALFORMED,
    );
    // 5.0 allows a password alone.
    let Packet::Connect(c) = decode(V5, &connect(5, 0x42, &[0], &cat(&[&id, &s(b"pw")]))).unwrap()
    else {
        panic!("not a CONNECT");
    };
    assert_eq!(
        (c.username, c.password.as_deref()),
        (None, Some(&b"pw"[..]))
    );

    refused(V4, &connect(4, 2, &[], &s(&[0xC3, 0x28])), MALFORMED); // client id not UTF-8
    refused(V4, &connect(4, 2, &[], &s(b"i\0d")), MALFORMED);
    refused(
        V4,
        &connect(4, 0x82, &[], &cat(&[&id, &s(b"u\0")])),
        MALFORMED,
    );
    refused(
        V4,
        &connect(4, 0x06, &[], &cat(&[&id, &s(b"w/+"), &s(b"x")])),
        TOPIC,
    );
    refused(
        V4,
        &connect(4, 0x06, &[], &cat(&[&id, &s(b""), &s(b"x")])),
        TOPIC,
    );
    refused(V4, &connect(4, 2, &[], &cat(&[&id, &[0]])), MALFORMED); // trailing byte
    refused(V4, &connect(4, 0x82, &[], &id), MALFORMED); // username flag, no username
    refused(V4, &pkt(0x10, &s(b"MQTT")), MALFORMED); // ends after the name
}

#[test]
fn connect_v5_properties() {
    let id = s(b"id");
    refused(V5, &connect(5, 2, &[3, 0x21, 0, 0], &id), PROTOCOL); // receive maximum 0
    refused(V5, &connect(5, 2, &[5, 0x27, 0, 0, 0, 0], &id), PROTOCOL); // max packet 0
    refused(V5, &connect(5, 2, &[2, 0x19, 2], &id), PROTOCOL); // request response 2
    let twice = [10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2];
    refused(V5, &connect(5, 2, &twice, &id), PROTOCOL);
    refused(V5, &connect(5, 2, &[4, 0x16, 0, 1, 9], &id), PROTOCOL); // auth data, no method
    refused(V5, &connect(5, 2, &[3, 0x12, 0, 0], &id), MALFORMED); // CONNACK-only
    refused(V5, &connect(5, 2, &[9, 0x11, 0, 0, 0, 1], &id), MALFORMED); // overruns
    refused(V5, &connect(5, 2, &[0x80], &[]), MALFORMED); // length never ends
    let will = cat(&[&[4, 0x08], &s(b"#"), &s(b"w"), &s(b"x")]);
    refused(V5, &connect(5, 6, &[0], &cat(&[&id, &will])), PROTOCOL); // response topic
    let will = cat(&[&[2, 0x23, 0], &s(b"w"), &s(b"x")]);
    refused(V5, &connect(5, 6, &[0], &cat(&[&id, &will])), MALFORMED); // alias in a will
}

#[test]
fn publish_v4() {
    refused(V4, &pkt(0x30, &s(b"a/+")), TOPIC);
    refused(V4, &pkt(0x30, &s(b"#")), TOPIC);
    refused(V4, &pkt(0x30, &s(b"")), TOPIC);
    refused(V4, &pkt(0x30, &s(b"a\0")), MALFORMED);
    refused(V4, &pkt(0x30, &s(&[0xFF])), MALFORMED);
    refused(V4, &pkt(0x32, &cat(&[&s(b"a"), &[0, 0]])), PROTOCOL); // packet id 0
    refused(V4, &pkt(0x32, &s(b"a")), MALFORMED); // no packet id
    refused(V4, &pkt(0x30, &[0, 9, b'a']), MALFORMED); // topic overruns
}

#[test]
fn publish_v5() {
    refused(V5, &pkt(0x30, &cat(&[&s(b"a/#"), &[0]])), TOPIC);
    refused(V5, &pkt(0x30, &cat(&[&s(b""), &[0]])), PROTOCOL); // empty, no alias
    refused(V5, &pkt(0x30, &cat(&[&s(b"a"), &[2, 0x0B, 1]])), PROTOCOL); // subscription id
    refused(V5, &pkt(0x34, &cat(&[&s(b"a"), &[0, 0, 0]])), PROTOCOL); // packet id 0
    refused(
        V5,
        &pkt(0x30, &cat(&[&s(b"a"), &[1, 0x02, 0, 0, 0, 1]])),
        MALFORMED,
    );
    refused(
        V5,
        &pkt(0x30, &cat(&[&s(b"a"), &[6, 0x23, 0, 1, 0x23, 0, 2]])),
        PROTOCOL,
    );
    refused(V5, &pkt(0x30, &cat(&[&s(b"a"), &[2, 0x01, 2]])), PROTOCOL);
    refused(
        V5,
        &pkt(0x30, &cat(&[&s(b"a"), &[4, 0x08], &s(b"+")])),
        PROTOCOL,
    );
    refused(V5, &pkt(0x30, &cat(&[&s(b"a"), &[2, 0x11, 0]])), MALFORMED); // not for PUBLISH
    refused(V5, &pkt(0x30, &cat(&[&s(b"a"), &[0x80]])), MALFORMED); // length never ends
    refused(V5, &pkt(0x30, &s(b"a")), MALFORMED); // no property length

    let by_alias = pkt(0x30, &cat(&[&s(b""), &[3, 0x23, 0, 4], b"data"]));
    let Packet::Publish(p) = decode(V5, &by_alias).unwrap() else {
        panic!("not a PUBLISH");
    };
    assert_eq!((p.topic.as_str(), p.props.topic_alias), ("", Some(4)));
    assert_eq!(&p.payload[..], b"data");
}

#[test]
fn subscribe_v4() {
    let one = |filter: &[u8], opts: u8| pkt(0x82, &cat(&[&[0, 1], &s(filter), &[opts]]));
    refused(V4, &[0x82, 2, 0, 1], PROTOCOL); // no filters
    refused(V4, &pkt(0x82, &cat(&[&[0, 0], &s(b"a"), &[0]])), PROTOCOL); // packet id 0
    refused(V4, &one(b"a+/b", 0), FILTER);
    refused(V4, &one(b"a/#/b", 0), FILTER);
    refused(V4, &one(b"", 0), FILTER);
    refused(V4, &one(b"$share/g", 0), FILTER);
    refused(V4, &one(b"$share/g+/a", 0), FILTER);
    refused(V4, &one(b"a\0", 0), MALFORMED);
    refused(V4, &one(b"a", 3), MALFORMED); // QoS 3
    refused(V4, &one(b"a", 0x04), MALFORMED); // reserved bits
    refused(V4, &pkt(0x82, &cat(&[&[0, 1], &s(b"a")])), MALFORMED); // no options byte
    let two = pkt(0x82, &cat(&[&[0, 1], &s(b"a"), &[1], &s(b"b"), &[0x80]]));
    refused(V4, &two, MALFORMED); // reserved bits in the second filter's byte
}

#[test]
fn subscribe_v5() {
    let one = |props: &[u8], filter: &[u8], opts: u8| {
        pkt(0x82, &cat(&[&[0, 1], props, &s(filter), &[opts]]))
    };
    refused(V5, &[0x82, 3, 0, 1, 0], PROTOCOL); // no filters
    refused(
        V5,
        &pkt(0x82, &cat(&[&[0, 0, 0], &s(b"a"), &[0]])),
        PROTOCOL,
    );
    refused(V5, &one(&[0], b"a", 0x40), MALFORMED); // reserved bit 6
    refused(V5, &one(&[0], b"a", 0x80), MALFORMED); // reserved bit 7
    refused(V5, &one(&[0], b"a", 0x30), MALFORMED); // retain handling 3
    refused(V5, &one(&[0], b"a", 0x03), MALFORMED); // QoS 3
    refused(V5, &one(&[0], b"$share/g/a", 0x04), PROTOCOL); // no local, shared
    refused(V5, &one(&[4, 0x0B, 1, 0x0B, 2], b"a", 0), PROTOCOL); // two ids
    refused(V5, &one(&[2, 0x0B, 0], b"a", 0), PROTOCOL); // id 0
    refused(V5, &one(&[0], b"a+", 0), FILTER);
    refused(V5, &one(&[0], b"$share//a", 0), FILTER);
    refused(V5, &one(&[2, 0x01, 0], b"a", 0), MALFORMED); // not for SUBSCRIBE
}

#[test]
fn unsubscribe() {
    refused(V4, &[0xA2, 2, 0, 1], PROTOCOL);
    refused(V5, &[0xA2, 3, 0, 1, 0], PROTOCOL);
    refused(V4, &pkt(0xA2, &cat(&[&[0, 0], &s(b"a")])), PROTOCOL);
    refused(V5, &pkt(0xA2, &cat(&[&[0, 0, 0], &s(b"a")])), PROTOCOL);
    refused(V4, &pkt(0xA2, &cat(&[&[0, 1], &s(b"a/#/b")])), FILTER);
    refused(V5, &pkt(0xA2, &cat(&[&[0, 1, 0], &s(b"+x")])), FILTER);
    refused(V4, &pkt(0xA2, &cat(&[&[0, 1], &s(b"\0")])), MALFORMED);
    refused(V5, &pkt(0xA2, &cat(&[&[0, 1, 0], &s(&[0xFE])])), MALFORMED);
    refused(
        V5,
        &pkt(0xA2, &cat(&[&[0, 1, 2, 0x1F, 0], &s(b"a")])),
        MALFORMED,
    );
}

#[test]
fn acknowledgements() {
    refused(V4, &[0x40, 3, 0, 1, 0], MALFORMED); // 3.1.1 acks are exactly 2 bytes
    refused(V4, &[0x40, 1, 0], MALFORMED);
    refused(V4, &[0x40, 2, 0, 0], PROTOCOL);
    refused(V4, &[0x62, 2, 0, 0], PROTOCOL);
    refused(V5, &[0x40, 2, 0, 0], PROTOCOL);
    refused(V5, &[0x40, 3, 0, 1, 0x92], PROTOCOL); // not a PUBACK reason
    refused(V5, &[0x62, 3, 0, 1, 0x10], PROTOCOL); // not a PUBREL reason
    refused(V5, &[0x40, 1, 0], MALFORMED);
    refused(V5, &[0x40, 5, 0, 1, 0, 2, 0x26], MALFORMED); // property cut short
    refused(V5, &[0x40, 6, 0, 1, 0, 2, 0x23, 1], MALFORMED); // alias in an ack
                                                             // The three legal forms.
    for bytes in [
        &[0x40, 2, 0, 1][..],
        &[0x40, 3, 0, 1, 0],
        &[0x40, 4, 0, 1, 0, 0],
    ] {
        let Ok(Packet::PubAck(a)) = decode(V5, bytes) else {
            panic!("{bytes:02x?}");
        };
        assert_eq!((a.packet_id, a.reason), (PacketId(1), 0));
    }
}

#[test]
fn ping_and_disconnect() {
    refused(V4, &[0xC0, 1, 0], MALFORMED);
    refused(V5, &[0xC0, 1, 0], MALFORMED);
    refused(V4, &[0xE0, 1, 0], MALFORMED);
    refused(V5, &[0xE0, 1, 0x05], PROTOCOL); // not a DISCONNECT reason
    refused(V5, &[0xE0, 4, 0, 2, 0x23, 0], MALFORMED); // alias in DISCONNECT
    refused(V5, &[0xE0, 3, 0, 0, 9], MALFORMED); // trailing byte
                                                 // 0, 1 and 2 remaining bytes: all legal (mqttbytes refuses the first and third).
    for (bytes, want) in [
        (&[0xE0, 0][..], 0),
        (&[0xE0, 1, 0x04], 0x04),
        (&[0xE0, 2, 0, 0], 0),
    ] {
        let Ok(Packet::Disconnect(d)) = decode(V5, bytes) else {
            panic!("{bytes:02x?}");
        };
        assert_eq!(d.reason, want);
    }
    let full = [0xE0, 13, 0x04, 11, 0x11, 0, 0, 0, 9, 0x26, 0, 0, 0, 1, b'v'];
    let Ok(Packet::Disconnect(d)) = decode(V5, &full) else {
        panic!("not a DISCONNECT");
    };
    assert_eq!((d.reason, d.session_expiry), (0x04, Some(9)));
}
