//! raftmq's own packet model: one type per MQTT packet, a superset of 3.1.1 and 5.0, so
//! nothing above the codec knows mqttbytes or which version's parser read the bytes.
//! Reason codes are 5.0 values (`reason`); the encoder maps them to 3.1.1 where it must.

use bytes::Bytes;
use raftmq_raft::{PacketId, QoS, SubOptions};

/// The protocol level from CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1.1 (level 4; level 3, MQTT 3.1, is refused).
    V4,
    V5,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(Box<ConnAck>),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connect {
    pub protocol: Option<Protocol>,
    pub client_id: String,
    pub clean_start: bool,
    pub keep_alive: u16,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub will: Option<LastWill>,
    pub session_expiry: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub request_response_info: Option<u8>,
    pub request_problem_info: Option<u8>,
    pub user_properties: Vec<(String, String)>,
    pub auth_method: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastWill {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub delay_interval: Option<u32>,
    pub props: PublishProps,
}

/// 5.0 publish properties carried on the wire (shared by PUBLISH and the will).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishProps {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
    pub subscription_identifiers: Vec<u32>,
    pub content_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// 5.0 reason code; mapped to the 3.1.1 return code for V4.
    pub reason: u8,
    pub session_expiry: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub maximum_packet_size: Option<u32>,
    pub assigned_client_id: Option<String>,
    pub topic_alias_maximum: Option<u16>,
    pub reason_string: Option<String>,
    pub wildcard_available: Option<u8>,
    pub subscription_ids_available: Option<u8>,
    pub shared_available: Option<u8>,
    pub server_keep_alive: Option<u16>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in 5.0 when a topic alias stands for it.
    pub topic: String,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    pub payload: Bytes,
    pub props: PublishProps,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: PacketId,
    pub reason: u8,
    pub reason_string: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: PacketId,
    pub filters: Vec<(String, SubOptions)>,
    pub subscription_id: Option<u32>,
    pub user_properties: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    /// One per filter: granted QoS (0, 1, 2) or a 5.0 failure code (>= 0x80; V4 sends 0x80).
    pub codes: Vec<u8>,
    pub reason_string: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    pub filters: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    /// 5.0 only (V4's UNSUBACK has no payload).
    pub codes: Vec<u8>,
    pub reason_string: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: u8,
    pub session_expiry: Option<u32>,
    pub reason_string: Option<String>,
    pub server_reference: Option<String>,
}
