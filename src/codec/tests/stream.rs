//! The codec on a byte stream: partial input, byte-by-byte feeding, several packets in one
//! read, the size limit enforced from the fixed header alone, payloads not copied.

use super::*;

/// A connection's whole inbound stream: every client packet, CONNECT first.
fn stream(protocol: Protocol) -> (Vec<Packet>, Vec<u8>) {
    let packets = client_packets(protocol);
    let bytes = packets
        .iter()
        .flat_map(|p| encode(protocol, p).to_vec())
        .collect();
    (packets, bytes)
}

#[test]
fn every_prefix_of_every_packet_is_incomplete_and_left_alone() {
    for protocol in [Protocol::V4, Protocol::V5] {
        for p in client_packets(protocol) {
            let bytes = encode(protocol, &p);
            for cut in 0..bytes.len() {
                let mut c = if matches!(p, Packet::Connect(_)) {
                    Codec::new(MAX)
                } else {
                    codec(protocol)
                };
                let mut buf = BytesMut::from(&bytes[..cut]);
                assert_eq!(c.decode(&mut buf), Ok(None), "{p:?} cut at {cut}");
                assert_eq!(&buf[..], &bytes[..cut], "consumed from {p:?} cut at {cut}");
            }
        }
    }
}

#[test]
fn byte_by_byte_yields_every_packet_kind() {
    for protocol in [Protocol::V4, Protocol::V5] {
        let (packets, bytes) = stream(protocol);
        let mut c = Codec::new(MAX);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in &bytes {
            buf.extend_from_slice(&[b]);
            while let Some(p) = c.decode(&mut buf).unwrap() {
                got.push(p);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got, packets, "{protocol:?}");
    }
}

#[test]
fn one_read_with_many_packets() {
    for protocol in [Protocol::V4, Protocol::V5] {
        let (packets, bytes) = stream(protocol);
        let mut c = Codec::new(MAX);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut got = Vec::new();
        while let Some(p) = c.decode(&mut buf).unwrap() {
            got.push(p);
        }
        assert_eq!(got, packets);
        assert!(buf.is_empty());
    }
}

#[test]
fn oversized_packet_is_refused_from_its_header_alone() {
    // A 100-byte limit; the header announces 101 bytes in all.
    let mut c = Codec::new(100);
    c.set_protocol(Protocol::V4);
    let mut buf = BytesMut::from(&[0x30, 99][..]);
    let capacity = buf.capacity();
    assert_eq!(
        c.decode(&mut buf),
        Err(CodecError::PacketTooLarge {
            size: 101,
            max: 100
        })
    );
    assert_eq!(
        buf.capacity(),
        capacity,
        "nothing was allocated for the body"
    );

    // The largest remaining length, with no body at all, before any CONNECT.
    let mut buf = BytesMut::from(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let err = Codec::new(MAX).decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        CodecError::PacketTooLarge {
            size: 5 + 268_435_455,
            max: MAX
        }
    );
    assert_eq!(err.reason_code(), reason::PACKET_TOO_LARGE);

    // Exactly at the limit is fine.
    let mut c = Codec::new(100);
    c.set_protocol(Protocol::V4);
    let body = cat(&[&s(b"t"), &[7u8; 95]]);
    let mut buf = BytesMut::from(&pkt(0x30, &body)[..]);
    assert_eq!(buf.len(), 100);
    assert!(matches!(c.decode(&mut buf), Ok(Some(Packet::Publish(_)))));
}

#[test]
fn buffer_grows_with_what_arrived_not_with_what_was_announced() {
    let mut c = codec(Protocol::V5);
    // 524,287 bytes announced, none sent: no room is made for them.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0x1F][..]);
    assert_eq!(c.decode(&mut buf), Ok(None));
    assert!(buf.capacity() < 1024, "{}", buf.capacity());
    // Once 10,000 bytes are in, room for as many again: geometric growth.
    buf.extend_from_slice(&[0, 1, b't', 0]);
    buf.extend_from_slice(&[7; 9_992]);
    assert_eq!(c.decode(&mut buf), Ok(None));
    assert!(buf.capacity() >= 20_000, "{}", buf.capacity());
    assert_eq!(buf.len(), 10_000);
}

#[test]
fn a_bad_first_byte_is_refused_before_the_rest_arrives() {
    let mut buf = BytesMut::from(&[0x30][..]);
    let err = Codec::new(MAX).decode(&mut buf).unwrap_err();
    assert_eq!(err.reason_code(), reason::PROTOCOL_ERROR); // PUBLISH before CONNECT
    let mut buf = BytesMut::from(&[0x06][..]);
    let err = codec(Protocol::V4).decode(&mut buf).unwrap_err();
    assert_eq!(err.reason_code(), reason::MALFORMED_PACKET);
}

#[test]
fn publish_payload_is_a_slice_of_the_read_buffer() {
    for protocol in [Protocol::V4, Protocol::V5] {
        let mut p = publish(QoS::AtLeastOnce, 1);
        p.payload = Bytes::from(vec![0xAB; 4096]);
        let bytes = encode(protocol, &Packet::Publish(p.clone()));
        let mut buf = BytesMut::from(&bytes[..]);
        let range = buf.as_ptr_range();
        let Some(Packet::Publish(got)) = codec(protocol).decode(&mut buf).unwrap() else {
            panic!("not a PUBLISH");
        };
        assert_eq!(got.payload, p.payload);
        assert!(
            range.contains(&got.payload.as_ptr()),
            "{protocol:?}: the payload was copied"
        );
    }
}
