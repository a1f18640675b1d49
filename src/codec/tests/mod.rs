//! Codec tests: round trips (`roundtrip`), what rumqttc, our test client, makes of what we
//! write (`interop`), hostile input (`hostile`), and streaming: partial input, size limits,
//! byte-by-byte feeding (`stream`).

mod hostile;
mod interop;
mod roundtrip;
mod stream;

use bytes::{Bytes, BytesMut};
use raftmq_raft::{PacketId, QoS, SubOptions};

use super::*;

pub(super) const MAX: u32 = 1 << 20;

/// A codec past its CONNECT, speaking `protocol`.
pub(super) fn codec(protocol: Protocol) -> Codec {
    let mut c = Codec::new(MAX);
    c.set_protocol(protocol);
    c
}

pub(super) fn encode(protocol: Protocol, packet: &Packet) -> BytesMut {
    let mut out = BytesMut::new();
    codec(protocol).encode(packet, &mut out).unwrap();
    out
}

/// Decodes exactly one packet from `bytes` with `codec`, which must consume them all.
pub(super) fn decode_with(codec: &mut Codec, bytes: &[u8]) -> Result<Packet, CodecError> {
    let mut buf = BytesMut::from(bytes);
    let packet = codec.decode(&mut buf)?.expect("a whole packet");
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(packet)
}

/// Decodes one packet as a connection would: a CONNECT on a fresh codec, anything else
/// after the CONNECT.
pub(super) fn decode(protocol: Protocol, bytes: &[u8]) -> Result<Packet, CodecError> {
    if bytes.first().is_some_and(|b| b >> 4 == 1) {
        decode_with(&mut Codec::new(MAX), bytes)
    } else {
        decode_with(&mut codec(protocol), bytes)
    }
}

/// The error decoding `bytes` (after a CONNECT for `protocol`) gives.
pub(super) fn decode_err(protocol: Protocol, bytes: &[u8]) -> CodecError {
    match decode(protocol, bytes) {
        Ok(p) => panic!("{bytes:02x?} decoded as {p:?}"),
        Err(e) => e,
    }
}

/// A packet from bytes: fixed header byte, remaining length (< 128), body.
pub(super) fn pkt(byte1: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut v = vec![byte1, body.len() as u8];
    v.extend_from_slice(body);
    v
}

/// An MQTT string or binary field.
pub(super) fn s(text: &[u8]) -> Vec<u8> {
    let mut v = (text.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(text);
    v
}

pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn user_props() -> Vec<(String, String)> {
    vec![("k".into(), "v".into()), ("k".into(), "second".into())]
}

pub(super) fn connect(protocol: Protocol) -> Connect {
    let v5 = protocol == Protocol::V5;
    Connect {
        protocol: Some(protocol),
        client_id: "client-é".into(),
        clean_start: true,
        keep_alive: 30,
        username: Some("user".into()),
        // Binary, not UTF-8: mqttbytes could not read this.
        password: Some(Bytes::from_static(&[0xFF, 0x00, 0xFE])),
        will: Some(LastWill {
            topic: "will/topic".into(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
            delay_interval: v5.then_some(10),
            props: if v5 {
                will_props()
            } else {
                PublishProps::default()
            },
        }),
        session_expiry: v5.then_some(3600),
        receive_maximum: v5.then_some(100),
        maximum_packet_size: v5.then_some(65_536),
        topic_alias_maximum: v5.then_some(16),
        request_response_info: v5.then_some(1),
        request_problem_info: v5.then_some(0),
        user_properties: if v5 { user_props() } else { Vec::new() },
        auth_method: None,
    }
}

fn will_props() -> PublishProps {
    PublishProps {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        topic_alias: None,
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(&[1, 2, 3])),
        user_properties: user_props(),
        subscription_identifiers: Vec::new(),
        content_type: Some("text/plain".into()),
    }
}

pub(super) fn publish(qos: QoS, id: u16) -> Publish {
    Publish {
        dup: qos != QoS::AtMostOnce,
        qos,
        retain: true,
        topic: "a/b/c".into(),
        packet_id: (qos != QoS::AtMostOnce).then_some(PacketId(id)),
        payload: Bytes::from_static(b"payload \x00\xFF bytes"),
        props: PublishProps::default(),
    }
}

/// Every packet a client sends, with every field its version carries set.
pub(super) fn client_packets(protocol: Protocol) -> Vec<Packet> {
    let v5 = protocol == Protocol::V5;
    let mut p5 = publish(QoS::ExactlyOnce, 9);
    if v5 {
        p5.props = PublishProps {
            topic_alias: Some(3),
            ..will_props()
        };
    }
    let ack = |id: u16, reason: u8| Ack {
        packet_id: PacketId(id),
        reason: if v5 { reason } else { 0 },
        reason_string: v5.then(|| "why".to_string()),
    };
    let opts = |qos: QoS| SubOptions {
        qos,
        no_local: v5,
        retain_as_published: v5,
        retain_handling: if v5 { 2 } else { 0 },
        subscription_id: v5.then_some(77),
    };
    let mut packets = vec![
        Packet::Connect(Box::new(connect(protocol))),
        Packet::Publish(publish(QoS::AtMostOnce, 0)),
        Packet::Publish(publish(QoS::AtLeastOnce, 1)),
        Packet::Publish(p5),
        Packet::PubAck(ack(1, 0x10)),
        Packet::PubAck(Ack {
            packet_id: PacketId(2),
            ..Ack::default()
        }),
        Packet::PubRec(ack(3, 0x80)),
        Packet::PubRel(ack(4, 0x92)),
        Packet::PubComp(ack(65_535, 0)),
        Packet::Subscribe(Subscribe {
            packet_id: PacketId(5),
            filters: vec![
                ("a/+/c".into(), opts(QoS::AtMostOnce)),
                ("#".into(), opts(QoS::AtLeastOnce)),
                ("x/y".into(), opts(QoS::ExactlyOnce)),
            ],
            subscription_id: v5.then_some(77),
            user_properties: if v5 { user_props() } else { Vec::new() },
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: PacketId(6),
            filters: vec!["a/+/c".into(), "$share/g/x/#".into()],
        }),
        Packet::PingReq,
    ];
    if v5 {
        packets.push(Packet::Publish(Publish {
            topic: String::new(),
            props: PublishProps {
                topic_alias: Some(3),
                ..PublishProps::default()
            },
            ..publish(QoS::AtMostOnce, 0)
        }));
        packets.push(Packet::Disconnect(Disconnect {
            reason: reason::DISCONNECT_WITH_WILL,
            session_expiry: Some(0),
            reason_string: Some("bye".into()),
            server_reference: Some("elsewhere:1883".into()),
        }));
        packets.push(Packet::Disconnect(Disconnect::default()));
    }
    packets
}

/// Every packet a server sends.
pub(super) fn server_packets() -> Vec<Packet> {
    vec![
        Packet::ConnAck(Box::new(ConnAck {
            session_present: true,
            ..ConnAck::default()
        })),
        Packet::Publish(publish(QoS::AtLeastOnce, 7)),
        Packet::PubAck(Ack {
            packet_id: PacketId(1),
            ..Ack::default()
        }),
        Packet::PubRec(Ack {
            packet_id: PacketId(2),
            ..Ack::default()
        }),
        Packet::PubRel(Ack {
            packet_id: PacketId(3),
            ..Ack::default()
        }),
        Packet::PubComp(Ack {
            packet_id: PacketId(4),
            ..Ack::default()
        }),
        Packet::SubAck(SubAck {
            packet_id: PacketId(5),
            codes: vec![0, 1, 2, 0x80],
            reason_string: None,
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: PacketId(6),
            codes: vec![0, 0x11],
            reason_string: None,
        }),
        Packet::PingResp,
        Packet::Disconnect(Disconnect {
            reason: reason::SERVER_SHUTTING_DOWN,
            ..Disconnect::default()
        }),
    ]
}
