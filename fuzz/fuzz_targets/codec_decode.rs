//! Arbitrary bytes through `Codec::decode`, as one connection's inbound stream.
//!
//! Byte 0 chooses the set-up, the rest is the stream:
//! - bits 0-1: start before CONNECT (0, 3), or already speaking 3.1.1 (1) or 5.0 (2);
//! - bits 2-6: the stream arrives in reads of that many bytes (0: all at once);
//! - bit 7: a 64-byte packet size limit instead of 1 MiB.
//!
//! Checked on every input: no panic; "need more bytes" consumes nothing; every packet that
//! decodes encodes again, and that encoding decodes to the same packet.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use raftmq::codec::{Codec, Packet, Protocol};

const MAX: u32 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let max = if mode & 0x80 != 0 { 64 } else { MAX };
    let mut codec = Codec::new(max);
    match mode & 0b11 {
        1 => codec.set_protocol(Protocol::V4),
        2 => codec.set_protocol(Protocol::V5),
        _ => {}
    }
    let read = match usize::from((mode >> 2) & 0x1F) {
        0 => stream.len().max(1),
        n => n,
    };
    let mut buf = BytesMut::new();
    for piece in stream.chunks(read) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.clone();
            match codec.decode(&mut buf) {
                Ok(Some(packet)) => round_trip(&codec, &packet),
                Ok(None) => {
                    assert_eq!(buf, before, "an incomplete packet was consumed");
                    break;
                }
                // The connection would be closed here.
                Err(_) => return,
            }
        }
    }
});

fn round_trip(codec: &Codec, packet: &Packet) {
    let protocol = codec
        .protocol()
        .expect("a decoded packet implies a protocol");
    let mut out = BytesMut::new();
    if let Err(e) = codec.encode(packet, &mut out) {
        panic!("decoded packet does not encode: {e}: {packet:?}");
    }
    if out.is_empty() {
        // 3.1.1 has no server DISCONNECT: encoding one writes nothing.
        assert!(matches!(packet, Packet::Disconnect(_)) && protocol == Protocol::V4);
        return;
    }
    let mut again = Codec::new(u32::MAX);
    if !matches!(packet, Packet::Connect(_)) {
        again.set_protocol(protocol);
    }
    match again.decode(&mut out) {
        Ok(Some(p)) => assert_eq!(&p, packet, "re-encoding changed the packet"),
        other => panic!("re-encoded {packet:?} decodes as {other:?}"),
    }
    assert!(out.is_empty(), "re-encoding left {} bytes", out.len());
}
