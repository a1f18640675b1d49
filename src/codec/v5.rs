//! MQTT 5.0 <-> our packet model, for every packet but CONNECT (`connect`). Read and
//! written by us rather than through mqttbytes::v5, whose defects sit in the layer every
//! 5.0 packet shares: its property reader (see `props`) does not stop at the property
//! length, silently keeps the last of duplicated properties and reports a truncated
//! integer inside a complete frame as "need more bytes"; its UNSUBSCRIBE reader `dbg!`s
//! every packet id to stderr; it rejects the normal short DISCONNECT; its reason codes are
//! closed enums; it writes CONNACK without a property length when there are no properties
//! and truncates over-long strings' length prefixes.

use bytes::{BufMut, Bytes, BytesMut};
use raftmq_raft::{PacketId, QoS, SubOptions};

use super::connect::{self, put_publish_props};
use super::frame::{put_header, put_packet, Header, Kind};
use super::props::{self, Props, PropsOut};
use super::validate::{check_topic_filter, check_topic_name, SHARE_PREFIX};
use super::wire::{check_u16_len, put_string, Reader};
use super::{
    Ack, CodecError, Disconnect, Packet, Protocol, Publish, PublishProps, Subscribe, Unsubscribe,
};

/// Reason codes a client may put in PUBACK and PUBREC (5.0 sections 3.4.2.1, 3.5.2.1).
const PUBACK_REASONS: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
/// In PUBREL and PUBCOMP (3.6.2.1, 3.7.2.1).
const PUBREL_REASONS: &[u8] = &[0x00, 0x92];
/// In DISCONNECT (3.14.2.1).
const DISCONNECT_REASONS: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

fn packet_id(r: &mut Reader) -> Result<PacketId, CodecError> {
    match r.u16("packet id")? {
        0 => Err(CodecError::Protocol("packet id 0".into())),
        id => Ok(PacketId(id)),
    }
}

fn reason_in(code: u8, valid: &[u8], what: &str) -> Result<u8, CodecError> {
    if !valid.contains(&code) {
        return Err(CodecError::Protocol(format!(
            "reason code {code:#04x} is not valid in {what}"
        )));
    }
    Ok(code)
}

/// Decodes a client's packet other than CONNECT; `body` follows the fixed header.
pub(crate) fn decode(h: &Header, body: Bytes) -> Result<Packet, CodecError> {
    let mut r = Reader::new(body);
    Ok(match h.kind {
        Kind::Publish => Packet::Publish(decode_publish(h.byte1, r)?),
        Kind::PubAck => Packet::PubAck(decode_ack(&mut r, PUBACK_REASONS, "PUBACK")?),
        Kind::PubRec => Packet::PubRec(decode_ack(&mut r, PUBACK_REASONS, "PUBREC")?),
        Kind::PubRel => Packet::PubRel(decode_ack(&mut r, PUBREL_REASONS, "PUBREL")?),
        Kind::PubComp => Packet::PubComp(decode_ack(&mut r, PUBREL_REASONS, "PUBCOMP")?),
        Kind::Subscribe => Packet::Subscribe(decode_subscribe(&mut r)?),
        Kind::Unsubscribe => {
            let packet_id = packet_id(&mut r)?;
            // User properties are checked but not kept: the model has nowhere for them
            // and the broker does not use them.
            Props::read(&mut r, props::IN_UNSUBSCRIBE)?;
            let mut filters = Vec::new();
            while !r.is_empty() {
                let f = r.string("topic filter")?;
                check_topic_filter(&f)?;
                filters.push(f);
            }
            if filters.is_empty() {
                return Err(CodecError::Protocol("UNSUBSCRIBE without filters".into()));
            }
            Packet::Unsubscribe(Unsubscribe { packet_id, filters })
        }
        Kind::PingReq => {
            r.finish("PINGREQ")?;
            Packet::PingReq
        }
        Kind::Disconnect => Packet::Disconnect(decode_disconnect(&mut r)?),
        // The codec routes CONNECT to `connect` and refuses server packets and AUTH before
        // dispatching here.
        other => {
            return Err(CodecError::Protocol(format!(
                "{other:?} is not a 5.0 client packet"
            )))
        }
    })
}

fn decode_publish(byte1: u8, mut r: Reader) -> Result<Publish, CodecError> {
    // The fixed header flags were checked by `frame::kind` (no QoS 3, no DUP on QoS 0).
    let qos = QoS::from_u8((byte1 >> 1) & 0b11)
        .ok_or_else(|| CodecError::Malformed("PUBLISH with QoS 3".into()))?;
    let topic = r.string("topic")?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        _ => Some(packet_id(&mut r)?),
    };
    let p = Props::read(&mut r, props::IN_PUBLISH)?;
    if !p.subscription_ids.is_empty() {
        return Err(CodecError::Protocol(
            "subscription identifier in a client's PUBLISH".into(),
        ));
    }
    if topic.is_empty() {
        // [MQTT-3.3.2-1]/3.3.4: an empty topic only stands for a topic alias. The alias
        // value (0, above the maximum) is for the broker to judge: it needs the session.
        if p.topic_alias.is_none() {
            return Err(CodecError::Protocol(
                "empty topic without a topic alias".into(),
            ));
        }
    } else {
        check_topic_name(&topic)?;
    }
    if let Some(rt) = &p.response_topic {
        check_topic_name(rt).map_err(|e| CodecError::Protocol(format!("response topic: {e}")))?;
    }
    Ok(Publish {
        dup: byte1 & 0b1000 != 0,
        qos,
        retain: byte1 & 0b0001 != 0,
        topic,
        packet_id,
        payload: r.rest(),
        props: PublishProps {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            topic_alias: p.topic_alias,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
            subscription_identifiers: Vec::new(),
            content_type: p.content_type,
        },
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: packet id, then optionally the reason code, then
/// optionally properties (a remaining length of 2 means success, 3 no properties).
fn decode_ack(r: &mut Reader, reasons: &[u8], what: &str) -> Result<Ack, CodecError> {
    let packet_id = packet_id(r)?;
    let mut ack = Ack {
        packet_id,
        ..Ack::default()
    };
    if !r.is_empty() {
        ack.reason = reason_in(r.u8("reason code")?, reasons, what)?;
    }
    if !r.is_empty() {
        ack.reason_string = Props::read(r, props::IN_ACK)?.reason_string;
    }
    r.finish(what)?;
    Ok(ack)
}

fn decode_subscribe(r: &mut Reader) -> Result<Subscribe, CodecError> {
    let packet_id = packet_id(r)?;
    let p = Props::read(r, props::IN_SUBSCRIBE)?;
    if p.subscription_ids.len() > 1 {
        return Err(CodecError::Protocol(
            "more than one subscription identifier in SUBSCRIBE".into(),
        ));
    }
    let subscription_id = p.subscription_ids.first().copied();
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        let o = r.u8("subscription options")?;
        if o & 0b1100_0000 != 0 {
            return Err(CodecError::Malformed(
                "reserved bits set in subscription options".into(),
            ));
        }
        let qos = QoS::from_u8(o & 0b11)
            .ok_or_else(|| CodecError::Malformed("subscription with QoS 3".into()))?;
        let retain_handling = (o >> 4) & 0b11;
        if retain_handling == 3 {
            return Err(CodecError::Malformed("retain handling 3".into()));
        }
        check_topic_filter(&filter)?;
        let no_local = o & 0b0100 != 0;
        if no_local && filter.starts_with(SHARE_PREFIX) {
            return Err(CodecError::Protocol(
                "no local on a shared subscription".into(),
            ));
        }
        let opts = SubOptions {
            qos,
            no_local,
            retain_as_published: o & 0b1000 != 0,
            retain_handling,
            subscription_id,
        };
        filters.push((filter, opts));
    }
    if filters.is_empty() {
        return Err(CodecError::Protocol("SUBSCRIBE without filters".into()));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        subscription_id,
        user_properties: p.user_properties,
    })
}

/// A remaining length of 0 means a normal disconnection, 1 a reason code alone
/// (mqttbytes rejects both).
fn decode_disconnect(r: &mut Reader) -> Result<Disconnect, CodecError> {
    let mut d = Disconnect::default();
    if r.is_empty() {
        return Ok(d);
    }
    d.reason = reason_in(r.u8("reason code")?, DISCONNECT_REASONS, "DISCONNECT")?;
    if !r.is_empty() {
        // User properties are checked but not kept (no field in the model).
        let p = Props::read(r, props::IN_DISCONNECT)?;
        d.session_expiry = p.session_expiry;
        d.reason_string = p.reason_string;
        d.server_reference = p.server_reference;
    }
    r.finish("DISCONNECT")?;
    Ok(d)
}

/// Encodes for 5.0.
pub(crate) fn encode(packet: &Packet, out: &mut BytesMut) -> Result<(), CodecError> {
    let mut body = BytesMut::new();
    let byte1 = match packet {
        Packet::Connect(c) => return connect::encode(c, Protocol::V5, out),
        Packet::Publish(p) => return encode_publish(p, out),
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::ConnAck(c) => {
            // [MQTT-3.2.2-6]: session present is 0 on a refusal.
            body.put_u8(u8::from(
                c.session_present && c.reason == super::reason::SUCCESS,
            ));
            body.put_u8(c.reason);
            let mut p = PropsOut::default();
            p.u32(props::SESSION_EXPIRY_INTERVAL, c.session_expiry);
            p.u16(props::RECEIVE_MAXIMUM, c.receive_maximum);
            p.byte(props::MAXIMUM_QOS, c.maximum_qos);
            p.byte(props::RETAIN_AVAILABLE, c.retain_available);
            p.u32(props::MAXIMUM_PACKET_SIZE, c.maximum_packet_size);
            let assigned = c.assigned_client_id.as_deref();
            p.string(props::ASSIGNED_CLIENT_IDENTIFIER, assigned)?;
            p.u16(props::TOPIC_ALIAS_MAXIMUM, c.topic_alias_maximum);
            p.string(props::REASON_STRING, c.reason_string.as_deref())?;
            p.byte(props::WILDCARD_SUBSCRIPTION_AVAILABLE, c.wildcard_available);
            let sids = c.subscription_ids_available;
            p.byte(props::SUBSCRIPTION_IDENTIFIER_AVAILABLE, sids);
            p.byte(props::SHARED_SUBSCRIPTION_AVAILABLE, c.shared_available);
            p.u16(props::SERVER_KEEP_ALIVE, c.server_keep_alive);
            let info = c.response_information.as_deref();
            p.string(props::RESPONSE_INFORMATION, info)?;
            p.string(props::SERVER_REFERENCE, c.server_reference.as_deref())?;
            // Always a property length, even 0 (mqttbytes omits it; rumqttc then hangs).
            p.write_to(&mut body)?;
            0x20
        }
        Packet::PubAck(a) => put_ack(&mut body, a, 0x40)?,
        Packet::PubRec(a) => put_ack(&mut body, a, 0x50)?,
        Packet::PubRel(a) => put_ack(&mut body, a, 0x62)?,
        Packet::PubComp(a) => put_ack(&mut body, a, 0x70)?,
        Packet::Subscribe(s) => {
            body.put_u16(s.packet_id.0);
            let mut p = PropsOut::default();
            if let Some(id) = s.subscription_id {
                p.varint(props::SUBSCRIPTION_IDENTIFIER, id)?;
            }
            p.user_properties(&s.user_properties)?;
            p.write_to(&mut body)?;
            for (filter, o) in &s.filters {
                if o.retain_handling > 2 {
                    return Err(CodecError::Protocol("retain handling 3".into()));
                }
                put_string(&mut body, filter, "topic filter")?;
                body.put_u8(
                    o.qos as u8
                        | u8::from(o.no_local) << 2
                        | u8::from(o.retain_as_published) << 3
                        | o.retain_handling << 4,
                );
            }
            0x82
        }
        Packet::SubAck(s) => {
            put_id_and_reason_string(&mut body, s.packet_id, s.reason_string.as_deref())?;
            body.put_slice(&s.codes);
            0x90
        }
        Packet::Unsubscribe(u) => {
            body.put_u16(u.packet_id.0);
            body.put_u8(0); // no properties
            for f in &u.filters {
                put_string(&mut body, f, "topic filter")?;
            }
            0xA2
        }
        Packet::UnsubAck(u) => {
            put_id_and_reason_string(&mut body, u.packet_id, u.reason_string.as_deref())?;
            body.put_slice(&u.codes);
            0xB0
        }
        Packet::Disconnect(d) => {
            // Always reason code and property length: the short forms are valid 5.0 but
            // mqttbytes-derived clients (rumqttc 0.25) reject them.
            body.put_u8(d.reason);
            let mut p = PropsOut::default();
            p.u32(props::SESSION_EXPIRY_INTERVAL, d.session_expiry);
            p.string(props::REASON_STRING, d.reason_string.as_deref())?;
            p.string(props::SERVER_REFERENCE, d.server_reference.as_deref())?;
            p.write_to(&mut body)?;
            0xE0
        }
    };
    put_packet(out, byte1, &body)
}

/// The reason code and reason string are left out when the ack is a plain success, as
/// the spec allows (5.0 section 3.4.2.1); the short form saves 2 bytes per message.
fn put_ack(body: &mut BytesMut, a: &Ack, byte1: u8) -> Result<u8, CodecError> {
    body.put_u16(a.packet_id.0);
    if a.reason != super::reason::SUCCESS || a.reason_string.is_some() {
        body.put_u8(a.reason);
        let mut p = PropsOut::default();
        p.string(props::REASON_STRING, a.reason_string.as_deref())?;
        p.write_to(body)?;
    }
    Ok(byte1)
}

fn put_id_and_reason_string(
    body: &mut BytesMut,
    id: PacketId,
    reason_string: Option<&str>,
) -> Result<(), CodecError> {
    body.put_u16(id.0);
    let mut p = PropsOut::default();
    p.string(props::REASON_STRING, reason_string)?;
    p.write_to(body)
}

/// PUBLISH is the hot path: the header is sized up front and the payload is copied once,
/// straight into `out`.
fn encode_publish(p: &Publish, out: &mut BytesMut) -> Result<(), CodecError> {
    if p.topic.is_empty() && p.props.topic_alias.is_none() {
        return Err(CodecError::Protocol(
            "PUBLISH without a topic or a topic alias".into(),
        ));
    }
    check_u16_len(p.topic.len(), "topic")?;
    let id = match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, _) => None,
        (_, Some(id)) if id.0 != 0 => Some(id.0),
        _ => {
            return Err(CodecError::Protocol(
                "PUBLISH with QoS > 0 needs a packet id".into(),
            ))
        }
    };
    let mut props = PropsOut::default();
    put_publish_props(&mut props, &p.props)?;
    let remaining = 2
        + p.topic.len()
        + if id.is_some() { 2 } else { 0 }
        + props.section_len()
        + p.payload.len();
    let byte1 = 0x30 | u8::from(p.dup) << 3 | (p.qos as u8) << 1 | u8::from(p.retain);
    put_header(out, byte1, remaining)?;
    out.put_u16(p.topic.len() as u16);
    out.put_slice(p.topic.as_bytes());
    if let Some(id) = id {
        out.put_u16(id);
    }
    props.write_to(out)?;
    out.put_slice(&p.payload);
    Ok(())
}
