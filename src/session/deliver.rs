//! Outbound PUBLISH and PUBREL from the router: topic aliases towards the client, the
//! remaining message expiry, the client's maximum packet size, and the ACL's read check
//! (retained messages included).

use std::sync::atomic::Ordering;

use raftmq_raft::{Ack as StoredAck, AckKind, Delivery, Op, QoS, TopicAlias};

use super::{props, Close, Session};
use crate::auth::Access;
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
                if !self
                    .broker
                    .auth
                    .allows(&mut self.acl, &d.message.topic, Access::Read)
                {
                    self.acl_drop(&d);
                    return Ok(None);
                }
                Ok(self.publish_for(d))
            }
            Outbound::PubRel(packet_id) if self.acl_dropped.remove(&packet_id) => Ok(None),
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

    /// A delivery the client may not read is not sent. The state machine placed a QoS 1/2
    /// one in the session's in-flight window, so it is acknowledged on the client's behalf
    /// (QoS 2: PUBREC and PUBCOMP at once; the PUBREL this causes is not sent either).
    fn acl_drop(&mut self, d: &Delivery) {
        Metrics::add(&self.broker.metrics.acl_denied_deliver, 1);
        let Some(packet_id) = d.packet_id else {
            return;
        };
        let ack = |kind| StoredAck {
            client: self.client.clone(),
            conn: self.conn,
            packet_id,
            kind,
        };
        let acks = match d.qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => vec![ack(AckKind::PubAck)],
            QoS::ExactlyOnce => {
                self.acl_dropped.insert(packet_id);
                vec![ack(AckKind::PubRec), ack(AckKind::PubComp)]
            }
        };
        let cluster = self.broker.cluster.clone();
        // Not awaited: acks of this connection are ordered by nothing else, and one that
        // does not commit leaves the message in flight, redelivered (and dropped again)
        // on the next connection, as an unacked delivery would be.
        tokio::spawn(async move {
            let _ = cluster.propose(Op::Acks(acks)).await;
        });
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
        // The client's maximum packet size: a PUBLISH that fits is sent, one that does not is
        // dropped (the state machine already kept QoS 1/2 ones out of the window). A topic
        // alias is used only where the packet still fits with it.
        let max = self.client_max_packet.map(u64::from);
        let fits =
            |alias| max.is_none_or(|max| m.publish_size(d.qos, &d.subscription_ids, alias) <= max);
        if !fits(TopicAlias::None) {
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
                if fits(TopicAlias::Use) {
                    wire.topic_alias = Some(*alias);
                    topic = String::new();
                }
            } else if self.aliases_out.len() < usize::from(self.alias_out_max)
                && fits(TopicAlias::Set)
            {
                let alias = self.aliases_out.len() as u16 + 1;
                self.aliases_out.insert(topic.clone(), alias);
                wire.topic_alias = Some(alias);
            }
        }
        Metrics::add(&metrics.messages_sent[d.qos as usize], 1);
        Metrics::add(&metrics.bytes_sent[d.qos as usize], m.payload.len() as u64);
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

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use raftmq_raft::{Message, PacketId, PublishProps, QoS, TopicAlias};

    use crate::codec::{Codec, Packet, Publish, PublishProps as WireProps};

    /// `Message::publish_size` is what the codec writes, across the Variable Byte Integer
    /// width boundaries of the remaining length, the property length and subscription ids.
    #[test]
    fn publish_size_is_the_encoded_size() {
        let codec = Codec::new(u32::MAX);
        let full = PublishProps {
            payload_format_indicator: Some(1),
            content_type: Some("text/plain".into()),
            response_topic: Some("re/ply".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".repeat(130))],
        };
        for props in [PublishProps::default(), full] {
            for payload in [0, 1, 100, 127, 16_400] {
                for expiry in [None, Some(5_000)] {
                    for ids in [vec![], vec![1], vec![127, 128, 268_435_455]] {
                        for qos in [QoS::AtMostOnce, QoS::ExactlyOnce] {
                            for alias in [TopicAlias::None, TopicAlias::Set, TopicAlias::Use] {
                                let m = Message {
                                    topic: "some/topic".into(),
                                    payload: Bytes::from(vec![b'x'; payload]),
                                    qos,
                                    props: props.clone(),
                                    expires_at_ms: expiry,
                                    ..Message::default()
                                };
                                let p = Publish {
                                    qos,
                                    topic: match alias {
                                        TopicAlias::Use => String::new(),
                                        _ => m.topic.clone(),
                                    },
                                    packet_id: (qos != QoS::AtMostOnce).then_some(PacketId(1)),
                                    payload: m.payload.clone(),
                                    props: WireProps {
                                        topic_alias: (alias != TopicAlias::None).then_some(1),
                                        subscription_identifiers: ids.clone(),
                                        ..super::props::to_wire(&m, 0)
                                    },
                                    ..Publish::default()
                                };
                                let mut out = BytesMut::new();
                                codec.encode(&Packet::Publish(p), &mut out).unwrap();
                                assert_eq!(
                                    m.publish_size(qos, &ids, alias),
                                    out.len() as u64,
                                    "payload {payload}, expiry {expiry:?}, ids {ids:?}, {alias:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
