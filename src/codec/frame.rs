//! Framing: the fixed header's packet type and flags, and the Remaining Length. Read by us,
//! not mqttbytes, so the type is judged from the first byte and the size limit from the
//! length, before the body is waited for or buffered.

use bytes::{BufMut, BytesMut};

use super::wire::{put_varint, varint_len, MAX_VARINT};
use super::CodecError;

/// Packet types (3.1.1 and 5.0 section 2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    PingReq,
    PingResp,
    Disconnect,
    /// 5.0 only; 3.1.1 reserves type 15.
    Auth,
}

/// A fixed header whose Remaining Length is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) byte1: u8,
    pub(crate) kind: Kind,
    /// Fixed header bytes: the first byte plus 1 to 4 length bytes.
    pub(crate) header_len: usize,
    pub(crate) remaining: usize,
}

impl Header {
    /// The whole packet, fixed header included.
    pub(crate) fn frame_len(&self) -> usize {
        self.header_len + self.remaining
    }
}

/// The packet type of a first byte, with its flags checked: PUBREL, SUBSCRIBE and
/// UNSUBSCRIBE must carry 0b0010, PUBLISH any flags but QoS 3 or DUP on QoS 0, every other
/// type 0 (3.1.1 section 2.2.2, 5.0 section 2.1.3). mqttbytes checks none of this.
pub(crate) fn kind(byte1: u8) -> Result<Kind, CodecError> {
    let flags = byte1 & 0x0F;
    let (kind, required) = match byte1 >> 4 {
        1 => (Kind::Connect, 0),
        2 => (Kind::ConnAck, 0),
        3 => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(CodecError::Malformed("PUBLISH with QoS 3".into()));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(CodecError::Malformed(
                    "PUBLISH with DUP set on QoS 0".into(),
                ));
            }
            return Ok(Kind::Publish);
        }
        4 => (Kind::PubAck, 0),
        5 => (Kind::PubRec, 0),
        6 => (Kind::PubRel, 0b0010),
        7 => (Kind::PubComp, 0),
        8 => (Kind::Subscribe, 0b0010),
        9 => (Kind::SubAck, 0),
        10 => (Kind::Unsubscribe, 0b0010),
        11 => (Kind::UnsubAck, 0),
        12 => (Kind::PingReq, 0),
        13 => (Kind::PingResp, 0),
        14 => (Kind::Disconnect, 0),
        15 => (Kind::Auth, 0),
        _ => return Err(CodecError::Malformed("reserved packet type 0".into())),
    };
    if flags != required {
        return Err(CodecError::Malformed(format!(
            "{kind:?} with fixed header flags {flags:#06b}"
        )));
    }
    Ok(kind)
}

/// Reads the fixed header at the start of `buf`. `Ok(None)`: the Remaining Length is not
/// complete yet. A fifth length byte is malformed.
pub(crate) fn read_header(buf: &[u8]) -> Result<Option<Header>, CodecError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let kind = kind(byte1)?;
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some(Header {
                byte1,
                kind,
                header_len: 2 + i,
                remaining,
            }));
        }
    }
    Err(CodecError::Malformed(
        "remaining length longer than 4 bytes".into(),
    ))
}

/// Writes a fixed header for a body of `remaining` bytes.
pub(crate) fn put_header(
    out: &mut BytesMut,
    byte1: u8,
    remaining: usize,
) -> Result<(), CodecError> {
    if remaining > MAX_VARINT as usize {
        return Err(CodecError::PacketTooLarge {
            size: 1 + 4 + remaining,
            max: MAX_VARINT,
        });
    }
    out.reserve(1 + varint_len(remaining) + remaining);
    out.put_u8(byte1);
    put_varint(out, remaining);
    Ok(())
}

/// Writes a whole packet whose body is already assembled.
pub(crate) fn put_packet(out: &mut BytesMut, byte1: u8, body: &[u8]) -> Result<(), CodecError> {
    put_header(out, byte1, body.len())?;
    out.put_slice(body);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked_per_type() {
        assert_eq!(kind(0x10), Ok(Kind::Connect));
        assert_eq!(kind(0x62), Ok(Kind::PubRel));
        assert_eq!(kind(0x82), Ok(Kind::Subscribe));
        assert_eq!(kind(0xA2), Ok(Kind::Unsubscribe));
        assert_eq!(kind(0x3D), Ok(Kind::Publish)); // DUP, QoS 2, retain
        for bad in [0x00, 0x11, 0x60, 0x80, 0xA0, 0xC1, 0xE1, 0x36, 0x38] {
            assert!(
                matches!(kind(bad), Err(CodecError::Malformed(_))),
                "{bad:#x}"
            );
        }
    }

    #[test]
    fn remaining_length_widths() {
        assert_eq!(read_header(&[0xC0]), Ok(None));
        let h = read_header(&[0x30, 0x80, 0x01]).unwrap().unwrap();
        assert_eq!((h.header_len, h.remaining), (3, 128));
        let h = read_header(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F])
            .unwrap()
            .unwrap();
        assert_eq!((h.header_len, h.remaining), (5, MAX_VARINT as usize));
        assert_eq!(read_header(&[0x30, 0xFF, 0xFF, 0xFF]), Ok(None));
        assert!(matches!(
            read_header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(CodecError::Malformed(_))
        ));
    }
}
