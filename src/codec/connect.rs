//! CONNECT, both versions, read and written by us: the protocol level decides how the rest
//! is read, and mqttbytes' CONNECT reader cannot be used as it is. It reads the password as
//! a UTF-8 string (it is binary data: a non-UTF-8 password fails), turns an empty username
//! or password into "none", and checks neither the reserved flag nor 3.1.1's
//! password-without-username rule.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::put_packet;
use super::props::{self, Props, PropsOut};
use super::validate::check_topic_name;
use super::wire::{put_binary, put_string, Reader};
use super::{CodecError, Connect, LastWill, Protocol, PublishProps};
use raftmq_raft::QoS;

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

/// Reads a CONNECT body (after the fixed header). `level` receives the protocol level as
/// soon as it is read, so that a refused or malformed CONNECT can still be answered in the
/// client's version.
pub(crate) fn decode(body: Bytes, level: &mut Option<u8>) -> Result<Connect, CodecError> {
    let mut r = Reader::new(body);
    let name = r.binary("protocol name")?;
    let lvl = r.u8("protocol level")?;
    *level = Some(lvl);
    let protocol = match (&name[..], lvl) {
        (b"MQTT", 4) => Protocol::V4,
        (b"MQTT", 5) => Protocol::V5,
        // 3 is MQTT 3.1 ("MQIsdp"); both names with any other level are versions we refuse
        // with CONNACK 0x01 / 0x84 rather than by closing.
        (b"MQTT" | b"MQIsdp", _) => return Err(CodecError::UnsupportedProtocol(lvl)),
        _ => {
            return Err(CodecError::Protocol(format!(
                "protocol name {:?}",
                String::from_utf8_lossy(&name)
            )))
        }
    };
    let v5 = protocol == Protocol::V5;

    let flags = r.u8("connect flags")?;
    if flags & RESERVED != 0 {
        return Err(CodecError::Malformed("reserved connect flag set".into()));
    }
    let will_qos = (flags >> 3) & 0b11;
    if flags & WILL == 0 && (will_qos != 0 || flags & WILL_RETAIN != 0) {
        return Err(CodecError::Malformed(
            "will QoS or retain set without a will".into(),
        ));
    }
    let will_qos =
        QoS::from_u8(will_qos).ok_or_else(|| CodecError::Malformed("will QoS 3".into()))?;
    if !v5 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        // 3.1.1 [MQTT-3.1.2-22]; 5.0 allows a password alone.
        return Err(CodecError::Malformed("password without username".into()));
    }
    let keep_alive = r.u16("keep alive")?;
    let props = if v5 {
        Props::read(&mut r, props::IN_CONNECT)?
    } else {
        Props::default()
    };
    if props.auth_data.is_some() && props.auth_method.is_none() {
        return Err(CodecError::Protocol(
            "authentication data without a method".into(),
        ));
    }
    let client_id = r.string("client identifier")?;

    let will = if flags & WILL != 0 {
        let wp = if v5 {
            Props::read(&mut r, props::IN_WILL)?
        } else {
            Props::default()
        };
        let topic = r.string("will topic")?;
        check_topic_name(&topic)?;
        if let Some(rt) = &wp.response_topic {
            check_topic_name(rt)
                .map_err(|e| CodecError::Protocol(format!("will response topic: {e}")))?;
        }
        Some(LastWill {
            topic,
            payload: r.binary("will payload")?,
            qos: will_qos,
            retain: flags & WILL_RETAIN != 0,
            delay_interval: wp.will_delay,
            props: PublishProps {
                payload_format_indicator: wp.payload_format_indicator,
                message_expiry_interval: wp.message_expiry_interval,
                topic_alias: None,
                response_topic: wp.response_topic,
                correlation_data: wp.correlation_data,
                user_properties: wp.user_properties,
                subscription_identifiers: Vec::new(),
                content_type: wp.content_type,
            },
        })
    } else {
        None
    };
    let username = match flags & USERNAME {
        0 => None,
        _ => Some(r.string("username")?),
    };
    let password = match flags & PASSWORD {
        0 => None,
        _ => Some(r.binary("password")?),
    };
    r.finish("CONNECT")?;

    Ok(Connect {
        protocol: Some(protocol),
        client_id,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        username,
        password,
        will,
        session_expiry: props.session_expiry,
        receive_maximum: props.receive_maximum,
        maximum_packet_size: props.maximum_packet_size,
        topic_alias_maximum: props.topic_alias_maximum,
        request_response_info: props.request_response_info,
        request_problem_info: props.request_problem_info,
        user_properties: props.user_properties,
        auth_method: props.auth_method,
    })
}

/// Writes a CONNECT for `protocol` (the codec's, not `c.protocol`). 5.0 fields are dropped
/// for V4.
pub(crate) fn encode(
    c: &Connect,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let v5 = protocol == Protocol::V5;
    if !v5 && c.password.is_some() && c.username.is_none() {
        return Err(CodecError::Protocol(
            "3.1.1 forbids a password without a username".into(),
        ));
    }
    let mut flags = 0;
    if c.clean_start {
        flags |= CLEAN_START;
    }
    if let Some(w) = &c.will {
        flags |= WILL | (w.qos as u8) << 3;
        if w.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }

    let mut body = BytesMut::new();
    put_string(&mut body, "MQTT", "protocol name")?;
    body.put_u8(if v5 { 5 } else { 4 });
    body.put_u8(flags);
    body.put_u16(c.keep_alive);
    if v5 {
        let mut p = PropsOut::default();
        p.u32(props::SESSION_EXPIRY_INTERVAL, c.session_expiry);
        p.u16(props::RECEIVE_MAXIMUM, c.receive_maximum);
        p.u32(props::MAXIMUM_PACKET_SIZE, c.maximum_packet_size);
        p.u16(props::TOPIC_ALIAS_MAXIMUM, c.topic_alias_maximum);
        p.byte(props::REQUEST_RESPONSE_INFORMATION, c.request_response_info);
        p.byte(props::REQUEST_PROBLEM_INFORMATION, c.request_problem_info);
        p.user_properties(&c.user_properties)?;
        p.string(props::AUTHENTICATION_METHOD, c.auth_method.as_deref())?;
        p.write_to(&mut body)?;
    }
    put_string(&mut body, &c.client_id, "client identifier")?;
    if let Some(w) = &c.will {
        if v5 {
            let mut p = PropsOut::default();
            p.u32(props::WILL_DELAY_INTERVAL, w.delay_interval);
            put_publish_props(&mut p, &w.props)?;
            p.write_to(&mut body)?;
        }
        put_string(&mut body, &w.topic, "will topic")?;
        put_binary(&mut body, &w.payload, "will payload")?;
    }
    if let Some(u) = &c.username {
        put_string(&mut body, u, "username")?;
    }
    if let Some(p) = &c.password {
        put_binary(&mut body, p, "password")?;
    }
    put_packet(out, 0x10, &body)
}

/// The 5.0 properties shared by PUBLISH and the will.
pub(crate) fn put_publish_props(p: &mut PropsOut, pp: &PublishProps) -> Result<(), CodecError> {
    p.byte(props::PAYLOAD_FORMAT_INDICATOR, pp.payload_format_indicator);
    p.u32(props::MESSAGE_EXPIRY_INTERVAL, pp.message_expiry_interval);
    p.string(props::CONTENT_TYPE, pp.content_type.as_deref())?;
    p.string(props::RESPONSE_TOPIC, pp.response_topic.as_deref())?;
    p.binary(props::CORRELATION_DATA, pp.correlation_data.as_deref())?;
    p.u16(props::TOPIC_ALIAS, pp.topic_alias);
    for id in &pp.subscription_identifiers {
        p.varint(props::SUBSCRIPTION_IDENTIFIER, *id)?;
    }
    p.user_properties(&pp.user_properties)
}
