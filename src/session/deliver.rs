//! Outbound PUBLISH and PUBREL from the router: topic aliases towards the client, the
//! remaining message expiry, and the client's maximum packet size.

use std::sync::atomic::Ordering;

use raftmq_raft::{Delivery, QoS};

use super::{props, Close, Session};
use crate::codec::{Ack, Packet, Protocol, Publish};
use crate::metrics::Metrics;
use crate::router::{Mailbox, Outbound};

impl Session {
    /// The packet for one mailbox item; `Err` closes the connection.
    pub fn outbound(&mut self, item: Outbound, mailbox: &Mailbox) -> Result<Option<Packet>, Close> {
        match item {
            Outbound::Deliver(d) => {
                if d.qos == QoS::AtMostOnce {
                    mailbox.pending_qos0.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(self.publish_for(d))
            }
            Outbound::PubRel(packet_id) => Ok(Some(Packet::PubRel(Ack {
                packet_id,
                ..Ack::default()
            }))),
            Outbound::Close(code) => Err(Close {
                send: Some(code),
                why: "closed by the broker",
                end: super::End::Abandon,
            }),
        }
    }

    fn publish_for(&mut self, d: Delivery) -> Option<Packet> {
        let now = crate::clock::now_ms();
        let m = &d.message;
        // An expired QoS 0 message is simply not sent; QoS 1/2 ones were already counted
        // against the window and the client will ack them.
        if d.qos == QoS::AtMostOnce && m.expired(now) {
            return None;
        }
        let metrics = &self.broker.metrics;
        let size = m.payload.len() + m.topic.len() + 64 + props_len(m);
        if self
            .client_max_packet
            .is_some_and(|max| size > max as usize)
        {
            Metrics::add(&metrics.publish_dropped, 1);
            return None;
        }
        let mut topic = m.topic.clone();
        let mut wire = if self.protocol == Protocol::V5 {
            let mut w = props::to_wire(m, now);
            w.subscription_identifiers = d.subscription_ids.clone();
            w
        } else {
            Default::default()
        };
        if self.protocol == Protocol::V5 && self.alias_out_max > 0 {
            if let Some(alias) = self.aliases_out.get(&topic) {
                wire.topic_alias = Some(*alias);
                topic = String::new();
            } else if self.aliases_out.len() < usize::from(self.alias_out_max) {
                let alias = self.aliases_out.len() as u16 + 1;
                self.aliases_out.insert(topic.clone(), alias);
                wire.topic_alias = Some(alias);
            }
        }
        Metrics::add(&metrics.messages_sent, 1);
        Metrics::add(&metrics.bytes_sent, m.payload.len() as u64);
        Some(Packet::Publish(Publish {
            dup: d.dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id: d.packet_id,
            payload: m.payload.clone(),
            props: wire,
        }))
    }
}

/// A generous estimate of the properties' encoded size, for the client's packet limit.
fn props_len(m: &raftmq_raft::Message) -> usize {
    let p = &m.props;
    p.content_type.as_ref().map_or(0, |s| s.len() + 3)
        + p.response_topic.as_ref().map_or(0, |s| s.len() + 3)
        + p.correlation_data.as_ref().map_or(0, |s| s.len() + 3)
        + p.user_properties
            .iter()
            .map(|(k, v)| k.len() + v.len() + 5)
            .sum::<usize>()
}
