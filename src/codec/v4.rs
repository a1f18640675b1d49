//! MQTT 3.1.1: mqttbytes::v4 <-> our packet model, for every packet but CONNECT
//! (`connect`). mqttbytes reads and writes the bytes; we check what it lets through:
//! trailing bytes in acknowledgements, PINGREQ and DISCONNECT, U+0000 in strings, topic and
//! filter rules, empty SUBSCRIBE/UNSUBSCRIBE, packet id 0 outside PUBLISH, reserved bits of
//! the requested QoS byte. Strings longer than 65,535 bytes are refused before mqttbytes
//! writes them (it would truncate the length prefix).

use bytes::{Bytes, BytesMut};
use mqttbytes::v4;
use raftmq_raft::{PacketId, QoS, SubOptions};

use super::frame::{Header, Kind};
use super::validate::{check_no_nul, check_topic_filter, check_topic_name};
use super::wire::{check_u16_len, MAX_VARINT};
use super::{reason, Ack, CodecError, Disconnect, Packet, Publish, Subscribe, Unsubscribe};

/// mqttbytes' errors, all about the bytes of a complete frame.
fn mqtt_err(e: mqttbytes::Error) -> CodecError {
    match e {
        mqttbytes::Error::PacketIdZero => CodecError::Protocol("packet id 0".into()),
        other => CodecError::Malformed(format!("{other:?}")),
    }
}

fn to_qos(q: mqttbytes::QoS) -> QoS {
    match q {
        mqttbytes::QoS::AtMostOnce => QoS::AtMostOnce,
        mqttbytes::QoS::AtLeastOnce => QoS::AtLeastOnce,
        mqttbytes::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn from_qos(q: QoS) -> mqttbytes::QoS {
    match q {
        QoS::AtMostOnce => mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => mqttbytes::QoS::ExactlyOnce,
    }
}

fn packet_id(id: u16) -> Result<PacketId, CodecError> {
    if id == 0 {
        return Err(CodecError::Protocol("packet id 0".into()));
    }
    Ok(PacketId(id))
}

fn exact_len(h: &Header, len: usize) -> Result<(), CodecError> {
    if h.remaining != len {
        return Err(CodecError::Malformed(format!(
            "{:?} with remaining length {} (must be {len})",
            h.kind, h.remaining
        )));
    }
    Ok(())
}

fn ack(packet_id: PacketId) -> Ack {
    Ack {
        packet_id,
        reason: reason::SUCCESS,
        reason_string: None,
    }
}

/// Decodes a client's packet other than CONNECT; `frame` includes the fixed header (that is
/// what mqttbytes' readers expect).
pub(crate) fn decode(h: &Header, frame: Bytes) -> Result<Packet, CodecError> {
    let fh = mqttbytes::FixedHeader::new(h.byte1, h.header_len - 1, h.remaining);
    Ok(match h.kind {
        Kind::Publish => {
            let p = v4::Publish::read(fh, frame).map_err(mqtt_err)?;
            check_no_nul(&p.topic, "topic")?;
            check_topic_name(&p.topic)?;
            let qos = to_qos(p.qos);
            Packet::Publish(Publish {
                dup: p.dup,
                qos,
                retain: p.retain,
                packet_id: match qos {
                    QoS::AtMostOnce => None,
                    _ => Some(packet_id(p.pkid)?),
                },
                topic: p.topic,
                payload: p.payload,
                props: Default::default(),
            })
        }
        Kind::PubAck | Kind::PubRec | Kind::PubRel | Kind::PubComp => {
            // mqttbytes ignores anything after the packet id.
            exact_len(h, 2)?;
            let id = match h.kind {
                Kind::PubAck => v4::PubAck::read(fh, frame).map_err(mqtt_err)?.pkid,
                Kind::PubRec => v4::PubRec::read(fh, frame).map_err(mqtt_err)?.pkid,
                Kind::PubRel => v4::PubRel::read(fh, frame).map_err(mqtt_err)?.pkid,
                _ => v4::PubComp::read(fh, frame).map_err(mqtt_err)?.pkid,
            };
            let a = ack(packet_id(id)?);
            match h.kind {
                Kind::PubAck => Packet::PubAck(a),
                Kind::PubRec => Packet::PubRec(a),
                Kind::PubRel => Packet::PubRel(a),
                _ => Packet::PubComp(a),
            }
        }
        Kind::Subscribe => {
            let s = v4::Subscribe::read(fh, frame.clone()).map_err(mqtt_err)?;
            let packet_id = packet_id(s.pkid)?;
            if s.filters.is_empty() {
                return Err(CodecError::Protocol("SUBSCRIBE without filters".into()));
            }
            // mqttbytes masks the requested QoS byte to its low two bits; the other six are
            // reserved and must be 0 [MQTT-3.8.3-4]. Each byte follows its filter.
            let mut at = h.header_len + 2;
            let mut filters = Vec::with_capacity(s.filters.len());
            for f in s.filters {
                at += 2 + f.path.len();
                if frame.get(at).is_none_or(|b| b & 0b1111_1100 != 0) {
                    return Err(CodecError::Malformed(
                        "reserved bits set in requested QoS".into(),
                    ));
                }
                at += 1;
                check_no_nul(&f.path, "topic filter")?;
                check_topic_filter(&f.path)?;
                let opts = SubOptions {
                    qos: to_qos(f.qos),
                    ..SubOptions::default()
                };
                filters.push((f.path, opts));
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                subscription_id: None,
                user_properties: Vec::new(),
            })
        }
        Kind::Unsubscribe => {
            let u = v4::Unsubscribe::read(fh, frame).map_err(mqtt_err)?;
            let packet_id = packet_id(u.pkid)?;
            if u.topics.is_empty() {
                return Err(CodecError::Protocol("UNSUBSCRIBE without filters".into()));
            }
            for f in &u.topics {
                check_no_nul(f, "topic filter")?;
                check_topic_filter(f)?;
            }
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters: u.topics,
            })
        }
        Kind::PingReq => {
            exact_len(h, 0)?;
            Packet::PingReq
        }
        Kind::Disconnect => {
            exact_len(h, 0)?;
            Packet::Disconnect(Disconnect::default())
        }
        // The codec routes CONNECT to `connect` and refuses server packets and type 15
        // before dispatching here.
        other => {
            return Err(CodecError::Protocol(format!(
                "{other:?} is not a 3.1.1 client packet"
            )))
        }
    })
}

/// The 3.1.1 CONNACK return code for a 5.0 reason code.
fn return_code(reason: u8) -> v4::ConnectReturnCode {
    use v4::ConnectReturnCode as C;
    match reason {
        reason::SUCCESS => C::Success,
        reason::UNSUPPORTED_PROTOCOL_VERSION => C::RefusedProtocolVersion,
        reason::CLIENT_ID_NOT_VALID => C::BadClientId,
        reason::BAD_USERNAME_OR_PASSWORD => C::BadUserNamePassword,
        reason::NOT_AUTHORIZED => C::NotAuthorized,
        // 0x88, 0x89, 0x8A, 0x9C, 0x9F and anything without a 3.1.1 equivalent.
        _ => C::ServiceUnavailable,
    }
}

fn pkid(p: &Publish) -> Result<u16, CodecError> {
    match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, _) => Ok(0),
        (_, Some(id)) if id.0 != 0 => Ok(id.0),
        _ => Err(CodecError::Protocol(
            "PUBLISH with QoS > 0 needs a packet id".into(),
        )),
    }
}

/// Encodes for 3.1.1; 5.0-only fields are dropped. A DISCONNECT writes nothing (3.1.1 has
/// no server DISCONNECT: the server just closes).
pub(crate) fn encode(packet: &Packet, out: &mut BytesMut) -> Result<(), CodecError> {
    let written = match packet {
        Packet::Connect(c) => return super::connect::encode(c, super::Protocol::V4, out),
        Packet::ConnAck(c) => {
            let code = return_code(c.reason);
            // [MQTT-3.2.2-4]: session present is 0 on a refusal.
            let session_present = c.session_present && c.reason == reason::SUCCESS;
            v4::ConnAck::new(code, session_present).write(out)
        }
        Packet::Publish(p) => {
            // 3.1.1 has no topic alias: the topic is always there.
            if p.topic.is_empty() {
                return Err(CodecError::Protocol("PUBLISH without a topic".into()));
            }
            check_u16_len(p.topic.len(), "topic")?;
            let size = 2 + p.topic.len() + 2 + p.payload.len();
            if size > MAX_VARINT as usize {
                return Err(CodecError::PacketTooLarge {
                    size,
                    max: MAX_VARINT,
                });
            }
            v4::Publish {
                dup: p.dup,
                qos: from_qos(p.qos),
                retain: p.retain,
                topic: p.topic.clone(),
                pkid: pkid(p)?,
                payload: p.payload.clone(),
            }
            .write(out)
        }
        Packet::PubAck(a) => v4::PubAck::new(a.packet_id.0).write(out),
        Packet::PubRec(a) => v4::PubRec::new(a.packet_id.0).write(out),
        Packet::PubRel(a) => v4::PubRel::new(a.packet_id.0).write(out),
        Packet::PubComp(a) => v4::PubComp::new(a.packet_id.0).write(out),
        Packet::Subscribe(s) => {
            let mut filters = Vec::with_capacity(s.filters.len());
            for (path, opts) in &s.filters {
                check_u16_len(path.len(), "topic filter")?;
                filters.push(v4::SubscribeFilter::new(path.clone(), from_qos(opts.qos)));
            }
            v4::Subscribe {
                pkid: s.packet_id.0,
                filters,
            }
            .write(out)
        }
        Packet::SubAck(s) => {
            let codes = s
                .codes
                .iter()
                .map(|&c| match QoS::from_u8(c) {
                    Some(q) => v4::SubscribeReasonCode::Success(from_qos(q)),
                    None => v4::SubscribeReasonCode::Failure,
                })
                .collect();
            v4::SubAck::new(s.packet_id.0, codes).write(out)
        }
        Packet::Unsubscribe(u) => {
            for f in &u.filters {
                check_u16_len(f.len(), "topic filter")?;
            }
            v4::Unsubscribe {
                pkid: u.packet_id.0,
                topics: u.filters.clone(),
            }
            .write(out)
        }
        Packet::UnsubAck(u) => v4::UnsubAck::new(u.packet_id.0).write(out),
        Packet::PingReq => v4::PingReq.write(out),
        Packet::PingResp => v4::PingResp.write(out),
        Packet::Disconnect(_) => return Ok(()),
    };
    written
        .map(drop)
        .map_err(|e| CodecError::Protocol(format!("cannot encode: {e:?}")))
}
