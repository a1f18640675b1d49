//! Inbound PUBLISH and PUBREL. QoS 1/2 and retained publishes are proposed and acked only
//! after commit; QoS 0 non-retained publishes are routed in memory by the active node.

use std::sync::Arc;
use std::time::Instant;

use raftmq_raft::{Op, PacketId, QoS, Reply};

use super::{propose, props, Close, Session, Step};
use crate::codec::{self, reason, Ack, Packet, Protocol, Publish};
use crate::metrics::Metrics;

impl Session {
    pub(super) fn on_publish(&mut self, p: Publish) -> Result<Step, Close> {
        let topic = self.resolve_alias(&p)?;
        let cfg = &self.broker.config;
        if p.retain && !cfg.mqtt.retain_available {
            return Err(Close::error(
                reason::RETAIN_NOT_SUPPORTED,
                "retain not available",
            ));
        }
        let metrics = &self.broker.metrics;
        Metrics::add(&metrics.messages_received[p.qos as usize], 1);
        Metrics::add(
            &metrics.bytes_received[p.qos as usize],
            p.payload.len() as u64,
        );
        let now = crate::clock::now_ms();
        let read_at = Instant::now();
        let message = props::message(
            &self.client,
            topic,
            p.payload,
            p.qos,
            p.retain,
            &p.props,
            now,
        );

        if p.qos == QoS::AtMostOnce && !p.retain {
            // Not durable, so not proposed; but only the active node may route.
            if self.broker.cluster.is_active() {
                let message = Arc::new(message);
                let deliveries = self.broker.cluster.state().read().route_transient(&message);
                self.broker.router.deliver_transient(deliveries);
            }
            return Ok(Step::Nothing);
        }

        let packet_id = p.packet_id;
        if p.qos != QoS::AtMostOnce {
            let fresh_qos2 = p.qos == QoS::ExactlyOnce
                && packet_id.is_some_and(|id| self.inbound_qos2.insert(id));
            if p.qos == QoS::AtLeastOnce || fresh_qos2 {
                self.inbound_open += 1;
            }
            if self.protocol == Protocol::V5
                && self.inbound_open > usize::from(self.broker.config.mqtt.receive_maximum)
            {
                return Err(Close::error(
                    reason::RECEIVE_MAXIMUM_EXCEEDED,
                    "receive maximum exceeded",
                ));
            }
        }
        let op = Op::Publish {
            client: self.client.clone(),
            conn: self.conn,
            packet_id: (p.qos == QoS::ExactlyOnce).then_some(packet_id).flatten(),
            message,
        };
        let cluster = self.broker.cluster.clone();
        let v5 = self.protocol == Protocol::V5;
        let no_match = self.reason_string("no matching subscribers");
        let qos = p.qos;
        let broker = self.broker.clone();
        Ok(Step::Wait(Box::pin(async move {
            let reply = propose(&cluster, op).await?;
            let matched = match reply {
                Reply::Published { matched } => Some(matched),
                Reply::Duplicate => None,
                _ => return Err(Close::unexpected()),
            };
            let Some(packet_id) = packet_id else {
                return Ok(Vec::new());
            };
            let (code, reason_string) = if v5 && matched == Some(0) {
                (reason::NO_MATCHING_SUBSCRIBERS, no_match)
            } else {
                (reason::SUCCESS, None)
            };
            let ack = Ack {
                packet_id,
                reason: code,
                reason_string,
            };
            Ok(vec![match qos {
                QoS::ExactlyOnce => Packet::PubRec(ack),
                _ => {
                    broker.metrics.puback_latency.observe(read_at.elapsed());
                    Packet::PubAck(ack)
                }
            }])
        })))
    }

    pub(super) fn on_pubrel(&mut self, packet_id: PacketId) -> Step {
        let op = Op::PubRel {
            client: self.client.clone(),
            conn: self.conn,
            packet_id,
        };
        let cluster = self.broker.cluster.clone();
        let not_found = self.reason_string("packet id not found");
        let v5 = self.protocol == Protocol::V5;
        Step::Wait(Box::pin(async move {
            let reply = propose(&cluster, op).await?;
            let (code, reason_string) = match reply {
                Reply::Released { known: true } => (reason::SUCCESS, None),
                Reply::Released { known: false } if v5 => (reason::PACKET_ID_NOT_FOUND, not_found),
                Reply::Released { known: false } => (reason::SUCCESS, None),
                _ => return Err(Close::unexpected()),
            };
            Ok(vec![Packet::PubComp(Ack {
                packet_id,
                reason: code,
                reason_string,
            })])
        }))
    }

    /// The topic a PUBLISH is for, after 5.0 topic alias mapping.
    fn resolve_alias(&mut self, p: &Publish) -> Result<String, Close> {
        let Some(alias) = p.props.topic_alias else {
            return Ok(p.topic.clone());
        };
        if alias == 0 || alias > self.broker.config.mqtt.topic_alias_maximum {
            return Err(Close::error(
                reason::TOPIC_ALIAS_INVALID,
                "topic alias out of range",
            ));
        }
        if p.topic.is_empty() {
            return self
                .aliases_in
                .get(&alias)
                .cloned()
                .ok_or_else(|| Close::error(reason::PROTOCOL_ERROR, "unknown topic alias"));
        }
        if !codec::valid_topic_name(&p.topic) {
            return Err(Close::error(
                reason::TOPIC_NAME_INVALID,
                "invalid topic name",
            ));
        }
        self.aliases_in.insert(alias, p.topic.clone());
        Ok(p.topic.clone())
    }
}
