//! Wire primitives for the parts of the codec we parse and write ourselves: big-endian
//! integers, Variable Byte Integers, UTF-8 strings and binary data. Every read is bounds
//! checked against the frame, so running out of bytes inside a complete frame is a
//! malformed packet, never "need more bytes" (mqttbytes gets this wrong, see `v5`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::validate::check_utf8;
use super::CodecError;

/// The largest Variable Byte Integer (four bytes of seven bits).
pub(crate) const MAX_VARINT: u32 = 268_435_455;

/// A cursor over one frame's body.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize, what: &str) -> Result<(), CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Malformed(format!("{what}: packet ends early")));
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, CodecError> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, CodecError> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, CodecError> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn varint(&mut self, what: &str) -> Result<u32, CodecError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8(what)?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::Malformed(format!(
            "{what}: variable byte integer longer than 4 bytes"
        )))
    }

    /// `n` bytes as a slice of the frame (no copy).
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<Bytes, CodecError> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    /// Binary Data: a two-byte length and that many bytes (no copy).
    pub(crate) fn binary(&mut self, what: &str) -> Result<Bytes, CodecError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// UTF-8 Encoded String: valid UTF-8 without U+0000, else the packet is malformed.
    pub(crate) fn string(&mut self, what: &str) -> Result<String, CodecError> {
        let raw = self.binary(what)?;
        check_utf8(&raw, what).map(str::to_owned)
    }

    /// Everything left: a PUBLISH payload, as a slice of the frame (no copy).
    pub(crate) fn rest(self) -> Bytes {
        self.buf
    }

    /// Fails unless the frame was read to its last byte.
    pub(crate) fn finish(&self, what: &str) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Malformed(format!(
                "{what}: {} unexpected bytes at the end",
                self.buf.len()
            )))
        }
    }
}

/// Bytes needed to encode `value` as a Variable Byte Integer.
pub(crate) fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a Variable Byte Integer; callers have checked `value <= MAX_VARINT`.
pub(crate) fn put_varint(out: &mut BytesMut, value: usize) {
    let mut rest = value;
    loop {
        let byte = (rest % 128) as u8;
        rest /= 128;
        if rest == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

/// Fails when `len` bytes cannot be carried by a two-byte length prefix (mqttbytes would
/// silently truncate the prefix and desynchronise the stream).
pub(crate) fn check_u16_len(len: usize, what: &str) -> Result<(), CodecError> {
    if len > usize::from(u16::MAX) {
        return Err(CodecError::Protocol(format!(
            "{what}: {len} bytes do not fit a two-byte length"
        )));
    }
    Ok(())
}

pub(crate) fn put_binary(out: &mut BytesMut, data: &[u8], what: &str) -> Result<(), CodecError> {
    check_u16_len(data.len(), what)?;
    out.put_u16(data.len() as u16);
    out.put_slice(data);
    Ok(())
}

pub(crate) fn put_string(out: &mut BytesMut, s: &str, what: &str) -> Result<(), CodecError> {
    put_binary(out, s.as_bytes(), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width_boundary() {
        for value in [
            0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_VARINT,
        ] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value as usize);
            assert_eq!(out.len(), varint_len(value as usize), "{value}");
            let mut r = Reader::new(out.freeze());
            assert_eq!(r.varint("v").unwrap(), value);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn five_byte_varint_is_malformed() {
        let mut r = Reader::new(Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]));
        assert!(matches!(r.varint("v"), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn running_out_inside_a_frame_is_malformed_not_incomplete() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a']));
        assert!(matches!(r.string("s"), Err(CodecError::Malformed(_))));
        let mut r = Reader::new(Bytes::from_static(&[0x80]));
        assert!(matches!(r.varint("v"), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn strings_reject_bad_utf8_and_nul() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x02, 0xC3, 0x28]));
        assert!(matches!(r.string("s"), Err(CodecError::Malformed(_))));
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x03, b'a', 0, b'b']));
        assert!(matches!(r.string("s"), Err(CodecError::Malformed(_))));
        // An encoded surrogate (U+D800) is not UTF-8 either.
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x03, 0xED, 0xA0, 0x80]));
        assert!(matches!(r.string("s"), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn over_long_strings_are_refused_when_writing() {
        let long = "x".repeat(65_536);
        let mut out = BytesMut::new();
        assert!(put_string(&mut out, &long, "s").is_err());
        assert!(out.is_empty());
    }
}
