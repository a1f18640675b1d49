//! MQTT 5.0 properties (section 2.2.2), read and written by us. mqttbytes' property reader
//! does not stop at the declared property length (it reads on into the payload), keeps the
//! last of duplicated properties, checks no value ranges, and reports a truncated Variable
//! Byte Integer inside a complete frame as "need more bytes".

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_binary, put_string, put_varint, varint_len, Reader, MAX_VARINT};
use super::CodecError;

pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub(crate) const CONTENT_TYPE: u8 = 0x03;
pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
pub(crate) const CORRELATION_DATA: u8 = 0x09;
pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
pub(crate) const REASON_STRING: u8 = 0x1F;
pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub(crate) const TOPIC_ALIAS: u8 = 0x23;
pub(crate) const MAXIMUM_QOS: u8 = 0x24;
pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
pub(crate) const USER_PROPERTY: u8 = 0x26;
pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// The properties one packet type may carry: a bit per identifier (all are below 64).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allowed {
    packet: &'static str,
    ids: u64,
}

const fn allowed(packet: &'static str, ids: &[u8]) -> Allowed {
    let mut mask = 0u64;
    let mut i = 0;
    while i < ids.len() {
        mask |= 1 << ids[i];
        i += 1;
    }
    Allowed { packet, ids: mask }
}

/// The packets a client sends; a server-only property in them is malformed.
pub(crate) const IN_CONNECT: Allowed = allowed(
    "CONNECT",
    &[
        SESSION_EXPIRY_INTERVAL,
        RECEIVE_MAXIMUM,
        MAXIMUM_PACKET_SIZE,
        TOPIC_ALIAS_MAXIMUM,
        REQUEST_RESPONSE_INFORMATION,
        REQUEST_PROBLEM_INFORMATION,
        USER_PROPERTY,
        AUTHENTICATION_METHOD,
        AUTHENTICATION_DATA,
    ],
);
pub(crate) const IN_WILL: Allowed = allowed(
    "will",
    &[
        WILL_DELAY_INTERVAL,
        PAYLOAD_FORMAT_INDICATOR,
        MESSAGE_EXPIRY_INTERVAL,
        CONTENT_TYPE,
        RESPONSE_TOPIC,
        CORRELATION_DATA,
        USER_PROPERTY,
    ],
);
pub(crate) const IN_PUBLISH: Allowed = allowed(
    "PUBLISH",
    &[
        PAYLOAD_FORMAT_INDICATOR,
        MESSAGE_EXPIRY_INTERVAL,
        TOPIC_ALIAS,
        RESPONSE_TOPIC,
        CORRELATION_DATA,
        USER_PROPERTY,
        SUBSCRIPTION_IDENTIFIER,
        CONTENT_TYPE,
    ],
);
pub(crate) const IN_ACK: Allowed = allowed("acknowledgement", &[REASON_STRING, USER_PROPERTY]);
pub(crate) const IN_SUBSCRIBE: Allowed =
    allowed("SUBSCRIBE", &[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]);
pub(crate) const IN_UNSUBSCRIBE: Allowed = allowed("UNSUBSCRIBE", &[USER_PROPERTY]);
pub(crate) const IN_DISCONNECT: Allowed = allowed(
    "DISCONNECT",
    &[
        SESSION_EXPIRY_INTERVAL,
        REASON_STRING,
        USER_PROPERTY,
        SERVER_REFERENCE,
    ],
);

/// Every property a client's packet can carry. Unset ones are `None`/empty.
#[derive(Debug, Default)]
pub(crate) struct Props {
    pub(crate) payload_format_indicator: Option<u8>,
    pub(crate) message_expiry_interval: Option<u32>,
    pub(crate) content_type: Option<String>,
    pub(crate) response_topic: Option<String>,
    pub(crate) correlation_data: Option<Bytes>,
    /// Several in a server's PUBLISH; at most one in SUBSCRIBE (checked by its decoder).
    pub(crate) subscription_ids: Vec<u32>,
    pub(crate) session_expiry: Option<u32>,
    pub(crate) auth_method: Option<String>,
    /// Read only to check it comes with a method: enhanced authentication is refused.
    pub(crate) auth_data: Option<Bytes>,
    pub(crate) request_problem_info: Option<u8>,
    pub(crate) will_delay: Option<u32>,
    pub(crate) request_response_info: Option<u8>,
    pub(crate) server_reference: Option<String>,
    pub(crate) reason_string: Option<String>,
    pub(crate) receive_maximum: Option<u16>,
    pub(crate) topic_alias_maximum: Option<u16>,
    pub(crate) topic_alias: Option<u16>,
    pub(crate) user_properties: Vec<(String, String)>,
    pub(crate) maximum_packet_size: Option<u32>,
}

/// Stores a property that may appear once; a second one is a protocol error (5.0 2.2.2.2).
fn once<T>(slot: &mut Option<T>, value: T, id: u8) -> Result<(), CodecError> {
    if slot.is_some() {
        return Err(CodecError::Protocol(format!(
            "property {id:#04x} included more than once"
        )));
    }
    *slot = Some(value);
    Ok(())
}

/// A one-byte property whose only values are 0 and 1.
fn flag(r: &mut Reader, id: u8) -> Result<u8, CodecError> {
    let v = r.u8("property value")?;
    if v > 1 {
        return Err(CodecError::Protocol(format!(
            "property {id:#04x} must be 0 or 1, not {v}"
        )));
    }
    Ok(v)
}

impl Props {
    /// Reads a property section: its length, then properties up to exactly that length.
    pub(crate) fn read(r: &mut Reader, allowed: Allowed) -> Result<Props, CodecError> {
        let len = r.varint("property length")?;
        let mut section = Reader::new(r.take(len as usize, "properties")?);
        let mut p = Props::default();
        while !section.is_empty() {
            let id = section.u8("property identifier")?;
            if id >= 64 || allowed.ids & (1 << id) == 0 {
                return Err(CodecError::Malformed(format!(
                    "property {id:#04x} is not valid in {}",
                    allowed.packet
                )));
            }
            let s = &mut section;
            match id {
                PAYLOAD_FORMAT_INDICATOR => {
                    once(&mut p.payload_format_indicator, flag(s, id)?, id)?
                }
                MESSAGE_EXPIRY_INTERVAL => {
                    once(&mut p.message_expiry_interval, s.u32("expiry")?, id)?
                }
                CONTENT_TYPE => once(&mut p.content_type, s.string("content type")?, id)?,
                RESPONSE_TOPIC => once(&mut p.response_topic, s.string("response topic")?, id)?,
                CORRELATION_DATA => {
                    once(&mut p.correlation_data, s.binary("correlation data")?, id)?
                }
                SUBSCRIPTION_IDENTIFIER => {
                    let v = s.varint("subscription identifier")?;
                    if v == 0 {
                        return Err(CodecError::Protocol("subscription identifier 0".into()));
                    }
                    p.subscription_ids.push(v);
                }
                SESSION_EXPIRY_INTERVAL => {
                    once(&mut p.session_expiry, s.u32("session expiry")?, id)?
                }
                AUTHENTICATION_METHOD => {
                    once(&mut p.auth_method, s.string("authentication method")?, id)?
                }
                AUTHENTICATION_DATA => {
                    once(&mut p.auth_data, s.binary("authentication data")?, id)?
                }
                REQUEST_PROBLEM_INFORMATION => once(&mut p.request_problem_info, flag(s, id)?, id)?,
                WILL_DELAY_INTERVAL => once(&mut p.will_delay, s.u32("will delay")?, id)?,
                REQUEST_RESPONSE_INFORMATION => {
                    once(&mut p.request_response_info, flag(s, id)?, id)?
                }
                SERVER_REFERENCE => {
                    once(&mut p.server_reference, s.string("server reference")?, id)?
                }
                REASON_STRING => once(&mut p.reason_string, s.string("reason string")?, id)?,
                RECEIVE_MAXIMUM => {
                    let v = s.u16("receive maximum")?;
                    if v == 0 {
                        return Err(CodecError::Protocol("receive maximum 0".into()));
                    }
                    once(&mut p.receive_maximum, v, id)?
                }
                TOPIC_ALIAS_MAXIMUM => once(
                    &mut p.topic_alias_maximum,
                    s.u16("topic alias maximum")?,
                    id,
                )?,
                TOPIC_ALIAS => once(&mut p.topic_alias, s.u16("topic alias")?, id)?,
                USER_PROPERTY => {
                    let key = s.string("user property name")?;
                    let value = s.string("user property value")?;
                    p.user_properties.push((key, value));
                }
                MAXIMUM_PACKET_SIZE => {
                    let v = s.u32("maximum packet size")?;
                    if v == 0 {
                        return Err(CodecError::Protocol("maximum packet size 0".into()));
                    }
                    once(&mut p.maximum_packet_size, v, id)?
                }
                _ => {
                    return Err(CodecError::Malformed(format!(
                        "property {id:#04x} is not valid in {}",
                        allowed.packet
                    )))
                }
            }
        }
        Ok(p)
    }
}

/// Builds a property section; `write_to` prefixes it with its length.
#[derive(Default)]
pub(crate) struct PropsOut {
    buf: BytesMut,
}

impl PropsOut {
    pub(crate) fn byte(&mut self, id: u8, value: Option<u8>) {
        if let Some(v) = value {
            self.buf.put_u8(id);
            self.buf.put_u8(v);
        }
    }

    pub(crate) fn u16(&mut self, id: u8, value: Option<u16>) {
        if let Some(v) = value {
            self.buf.put_u8(id);
            self.buf.put_u16(v);
        }
    }

    pub(crate) fn u32(&mut self, id: u8, value: Option<u32>) {
        if let Some(v) = value {
            self.buf.put_u8(id);
            self.buf.put_u32(v);
        }
    }

    pub(crate) fn string(&mut self, id: u8, value: Option<&str>) -> Result<(), CodecError> {
        if let Some(v) = value {
            self.buf.put_u8(id);
            put_string(&mut self.buf, v, "string property")?;
        }
        Ok(())
    }

    pub(crate) fn binary(&mut self, id: u8, value: Option<&[u8]>) -> Result<(), CodecError> {
        if let Some(v) = value {
            self.buf.put_u8(id);
            put_binary(&mut self.buf, v, "binary property")?;
        }
        Ok(())
    }

    pub(crate) fn varint(&mut self, id: u8, value: u32) -> Result<(), CodecError> {
        if value == 0 || value > MAX_VARINT {
            return Err(CodecError::Protocol(format!(
                "property {id:#04x}: {value} is outside 1..={MAX_VARINT}"
            )));
        }
        self.buf.put_u8(id);
        put_varint(&mut self.buf, value as usize);
        Ok(())
    }

    pub(crate) fn user_properties(&mut self, pairs: &[(String, String)]) -> Result<(), CodecError> {
        for (key, value) in pairs {
            self.buf.put_u8(USER_PROPERTY);
            put_string(&mut self.buf, key, "user property name")?;
            put_string(&mut self.buf, value, "user property value")?;
        }
        Ok(())
    }

    /// Bytes `write_to` will write: the length and the properties.
    pub(crate) fn section_len(&self) -> usize {
        varint_len(self.buf.len()) + self.buf.len()
    }

    pub(crate) fn write_to(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        if self.buf.len() > MAX_VARINT as usize {
            return Err(CodecError::PacketTooLarge {
                size: self.buf.len(),
                max: MAX_VARINT,
            });
        }
        put_varint(out, self.buf.len());
        out.put_slice(&self.buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &'static [u8], allowed: Allowed) -> Result<Props, CodecError> {
        Props::read(&mut Reader::new(Bytes::from_static(bytes)), allowed)
    }

    #[test]
    fn section_must_end_exactly_at_its_length() {
        // Declared length 2, but the message expiry interval needs 5 bytes.
        let err = read(&[2, 0x02, 0, 0, 0, 1], IN_PUBLISH).unwrap_err();
        assert!(matches!(err, CodecError::Malformed(_)), "{err:?}");
        // Declared length beyond the packet.
        assert!(matches!(
            read(&[9, 0x01, 0], IN_PUBLISH),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn duplicates_and_ranges_are_protocol_errors() {
        let dup = read(&[4, 0x23, 0, 1, 0x23], IN_PUBLISH);
        assert!(matches!(dup, Err(CodecError::Malformed(_))));
        let dup = read(&[6, 0x23, 0, 1, 0x23, 0, 2], IN_PUBLISH);
        assert!(matches!(dup, Err(CodecError::Protocol(_))));
        let pfi = read(&[2, 0x01, 2], IN_PUBLISH);
        assert!(matches!(pfi, Err(CodecError::Protocol(_))));
        let rm = read(&[3, 0x21, 0, 0], IN_CONNECT);
        assert!(matches!(rm, Err(CodecError::Protocol(_))));
        let sid = read(&[2, 0x0B, 0], IN_SUBSCRIBE);
        assert!(matches!(sid, Err(CodecError::Protocol(_))));
    }

    #[test]
    fn repeatable_properties_accumulate() {
        let p = read(&[4, 0x0B, 1, 0x0B, 2], IN_PUBLISH).unwrap();
        assert_eq!(p.subscription_ids, vec![1, 2]);
        let p = read(&[10, 0x26, 0, 1, b'k', 0, 1, b'v', 0x1F, 0, 0], IN_ACK).unwrap();
        assert_eq!(p.user_properties, vec![("k".into(), "v".into())]);
        assert_eq!(p.reason_string.as_deref(), Some(""));
    }

    #[test]
    fn foreign_and_unknown_properties_are_malformed() {
        // Assigned client identifier is for CONNACK only.
        let e = read(&[3, 0x12, 0, 0], IN_CONNECT);
        assert!(matches!(e, Err(CodecError::Malformed(_))));
        let e = read(&[2, 0x7F, 0], IN_CONNECT);
        assert!(matches!(e, Err(CodecError::Malformed(_))));
        let e = read(&[2, 0xFF, 0], IN_CONNECT);
        assert!(matches!(e, Err(CodecError::Malformed(_))));
    }

    #[test]
    fn written_sections_read_back() {
        let mut out = PropsOut::default();
        out.byte(PAYLOAD_FORMAT_INDICATOR, Some(1));
        out.u16(TOPIC_ALIAS, Some(7));
        out.varint(SUBSCRIPTION_IDENTIFIER, 300).unwrap();
        out.user_properties(&[("a".into(), "b".into())]).unwrap();
        let mut buf = BytesMut::new();
        out.write_to(&mut buf).unwrap();
        assert_eq!(buf.len(), out.section_len());
        let p = Props::read(&mut Reader::new(buf.freeze()), IN_PUBLISH).unwrap();
        assert_eq!(p.payload_format_indicator, Some(1));
        assert_eq!(p.topic_alias, Some(7));
        assert_eq!(p.subscription_ids, vec![300]);
        assert_eq!(p.user_properties.len(), 1);
    }
}
