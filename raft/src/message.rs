//! Application messages as the state machine stores and routes them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::ClientId;

/// MQTT quality of service.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// MQTT 5.0 publish properties that the broker passes through untouched. Topic alias and
/// subscription identifiers are per-connection and never stored here; message expiry is
/// stored as an absolute deadline on `Message`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishProps {
    pub payload_format_indicator: Option<u8>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
}

/// A published message. `qos` and `retain` are as the publisher sent them; the QoS of each
/// delivery is the minimum of this and the subscription's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub props: PublishProps,
    /// Who published it (for no-local); `None` for broker-made messages.
    pub publisher: Option<ClientId>,
    /// Leader timestamp (ms since the Unix epoch) stamped into the command that carried it.
    pub received_ms: u64,
    /// Absolute expiry (ms since the Unix epoch) from the 5.0 message expiry interval.
    pub expires_at_ms: Option<u64>,
}

impl Message {
    /// Whether the message has expired at `now_ms` (always false without an expiry).
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms >= at)
    }

    /// The 5.0 message expiry interval left at `now_ms`, in whole seconds, rounded up.
    pub fn remaining_expiry_secs(&self, now_ms: u64) -> Option<u32> {
        self.expires_at_ms
            .map(|at| (at.saturating_sub(now_ms).div_ceil(1000)).min(u32::MAX as u64) as u32)
    }

    /// The exact size in bytes of the 5.0 PUBLISH that carries this message at `qos` with
    /// these subscription identifiers, the topic sent as `alias` says. The client's Maximum
    /// Packet Size is compared with this: a packet that fits must be sent, one that does
    /// not must never be (MQTT-3.1.2-24).
    pub fn publish_size(&self, qos: QoS, subscription_ids: &[u32], alias: TopicAlias) -> u64 {
        let p = &self.props;
        let string = |s: &Option<String>| s.as_ref().map_or(0, |s| 3 + s.len() as u64);
        let mut props = string(&p.content_type) + string(&p.response_topic);
        props += p
            .correlation_data
            .as_ref()
            .map_or(0, |d| 3 + d.len() as u64);
        props += p
            .user_properties
            .iter()
            .map(|(k, v)| 5 + (k.len() + v.len()) as u64)
            .sum::<u64>();
        props += subscription_ids
            .iter()
            .map(|id| 1 + varint_len(u64::from(*id)))
            .sum::<u64>();
        if p.payload_format_indicator.is_some() {
            props += 2;
        }
        if self.expires_at_ms.is_some() {
            props += 5;
        }
        let topic = match alias {
            TopicAlias::None => self.topic.len() as u64,
            TopicAlias::Set => {
                props += 3;
                self.topic.len() as u64
            }
            TopicAlias::Use => {
                props += 3;
                0
            }
        };
        let packet_id = if qos == QoS::AtMostOnce { 0 } else { 2 };
        let remaining =
            2 + topic + packet_id + varint_len(props) + props + self.payload.len() as u64;
        1 + varint_len(remaining) + remaining
    }
}

/// How a PUBLISH names its topic in 5.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicAlias {
    /// The topic, no alias.
    None,
    /// The topic and a new alias for it.
    Set,
    /// An empty topic and an alias set before.
    Use,
}

/// Bytes a Variable Byte Integer takes.
fn varint_len(value: u64) -> u64 {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Subscription options (3.1.1 uses only `qos`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0: send retained on subscribe; 1: only if the subscription is new; 2: never.
    pub retain_handling: u8,
    pub subscription_id: Option<u32>,
}

/// A will message and its 5.0 delay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Will {
    pub message: Message,
    pub delay_secs: u32,
}
