//! Inbound PUBLISH and PUBREL. QoS 1/2 and retained publishes are proposed and acked only
//! after commit; QoS 0 non-retained publishes are routed in memory by the active node.
//! A publish the ACL denies is never proposed (see `refuse_publish`).

use std::sync::Arc;
use std::time::Instant;

use raftmq_raft::{Op, PacketId, QoS, Reply};

use super::{propose, props, Close, Session, Step};
use crate::auth::Access;
use crate::codec::{self, reason, Ack, Packet, Protocol, Publish};
use crate::limits;
use crate::metrics::Metrics;

impl Session {
    pub(super) fn on_publish(&mut self, p: Publish) -> Result<Step, Close> {
        let topic = self.resolve_alias(&p)?;
        let cfg = &self.broker.config;
        if let Err(why) = limits::check_topic(&topic, &cfg.limits) {
            Metrics::add(&self.broker.metrics.topics_refused, 1);
            return Err(Close::error(reason::TOPIC_NAME_INVALID, why));
        }
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
        if !self
            .broker
            .auth
            .allows(&mut self.acl, &topic, Access::Write)
        {
            Metrics::add(&metrics.acl_denied_publish, 1);
            return Ok(self.refuse_publish(p.qos, p.packet_id));
        }
        if limits::shed(p.qos, &cfg.limits, metrics) {
            return self.shed_publish(p.qos, p.packet_id);
        }
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

    /// A PUBLISH over the global queued-bytes cap: QoS 0 is dropped; QoS 1/2 is refused
    /// with 0x97 Quota exceeded (5.0). 3.1.1 cannot refuse and must not be acked for what
    /// was not stored, so the connection closes and the client resends after reconnecting.
    fn shed_publish(&mut self, qos: QoS, packet_id: Option<PacketId>) -> Result<Step, Close> {
        let Some(packet_id) = packet_id.filter(|_| qos != QoS::AtMostOnce) else {
            return Ok(Step::Nothing);
        };
        if self.protocol == Protocol::V4 {
            return Err(Close::error(
                reason::QUOTA_EXCEEDED,
                "queued bytes over limits.max_queued_bytes_total",
            ));
        }
        let ack = Ack {
            packet_id,
            reason: reason::QUOTA_EXCEEDED,
            reason_string: self.reason_string("broker queues full; retry later"),
        };
        // Nothing was proposed: an error PUBREC ends a QoS 2 flow. `sent` closes the
        // accounting of a PUBACK, as for an accepted publish.
        if qos == QoS::ExactlyOnce {
            return Ok(Step::Send(vec![Packet::PubRec(ack)]));
        }
        self.inbound_open += 1;
        Ok(Step::Send(vec![Packet::PubAck(ack)]))
    }

    /// A PUBLISH the ACL denies is dropped. As Mosquitto does, 3.1.1 still completes the
    /// QoS flow as if it had been accepted (3.1.1 has no way to say no); 5.0 answers
    /// PUBACK or PUBREC with 0x87 Not authorized, which ends a QoS 2 flow.
    fn refuse_publish(&mut self, qos: QoS, packet_id: Option<PacketId>) -> Step {
        let Some(packet_id) = packet_id.filter(|_| qos != QoS::AtMostOnce) else {
            return Step::Nothing;
        };
        let v5 = self.protocol == Protocol::V5;
        let ack = Ack {
            packet_id,
            reason: if v5 {
                reason::NOT_AUTHORIZED
            } else {
                reason::SUCCESS
            },
            reason_string: self.reason_string("not authorized by the ACL"),
        };
        // `sent` closes the accounting of what is acked here, as for an accepted publish.
        match qos {
            QoS::ExactlyOnce if v5 => Step::Send(vec![Packet::PubRec(ack)]),
            QoS::ExactlyOnce => {
                if self.inbound_qos2.insert(packet_id) {
                    self.inbound_open += 1;
                }
                Step::Send(vec![Packet::PubRec(ack)])
            }
            _ => {
                self.inbound_open += 1;
                Step::Send(vec![Packet::PubAck(ack)])
            }
        }
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
