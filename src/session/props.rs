//! Conversions between wire properties and the stored message's.

use bytes::Bytes;
use raftmq_raft::{ClientId, Message, PublishProps as StoredProps, QoS, Will};

use crate::codec::{LastWill, PublishProps};

pub fn to_stored(p: &PublishProps) -> StoredProps {
    StoredProps {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
    }
}

/// Wire properties for an outbound PUBLISH of `m` (aliases and subscription ids are added
/// by the caller).
pub fn to_wire(m: &Message, now_ms: u64) -> PublishProps {
    PublishProps {
        payload_format_indicator: m.props.payload_format_indicator,
        message_expiry_interval: m.remaining_expiry_secs(now_ms),
        topic_alias: None,
        response_topic: m.props.response_topic.clone(),
        correlation_data: m.props.correlation_data.clone(),
        user_properties: m.props.user_properties.clone(),
        subscription_identifiers: Vec::new(),
        content_type: m.props.content_type.clone(),
    }
}

/// A message received now with an optional 5.0 expiry interval.
pub fn message(
    client: &ClientId,
    topic: String,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    props: &PublishProps,
    now_ms: u64,
) -> Message {
    Message {
        topic,
        payload,
        qos,
        retain,
        props: to_stored(props),
        publisher: Some(client.clone()),
        received_ms: now_ms,
        expires_at_ms: props
            .message_expiry_interval
            .map(|s| now_ms.saturating_add(u64::from(s) * 1000)),
    }
}

/// The will as stored. Its expiry interval is kept relative (ms in `expires_at_ms`) until
/// it fires, when the state machine makes it absolute from the firing time.
pub fn will_to_stored(w: &LastWill, client: &ClientId, now_ms: u64) -> Will {
    let mut m = message(
        client,
        w.topic.clone(),
        w.payload.clone(),
        w.qos,
        w.retain,
        &w.props,
        now_ms,
    );
    m.expires_at_ms = w.props.message_expiry_interval.map(|s| u64::from(s) * 1000);
    Will {
        message: m,
        delay_secs: w.delay_interval.unwrap_or(0),
    }
}
