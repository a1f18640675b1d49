//! `$SYS/broker/...` topics with Mosquitto's names, plus raftmq's own (per QoS, per
//! disconnect reason, queued bytes, subscription memory, cluster term and leader). They
//! read the same counters and totals as `/metrics` (`crate::exporter`), so the two agree.
//! They describe this node, so they are kept here and not replicated: every `interval` the
//! values are refreshed, sent as QoS 0 to current subscribers, and kept as this node's
//! retained `$SYS` messages for new ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use raftmq_raft::{Message, QoS};

use crate::broker::Broker;
use crate::codec::Publish;
use crate::metrics::{DisconnectReason, Metrics};

pub struct Sys {
    started: Instant,
    values: Mutex<BTreeMap<String, Bytes>>,
}

impl Default for Sys {
    fn default() -> Sys {
        Sys::new()
    }
}

impl Sys {
    pub fn new() -> Sys {
        Sys {
            started: Instant::now(),
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Current values matching `filter`, as retained PUBLISH packets.
    pub fn retained_for(&self, filter: &str) -> Vec<Publish> {
        self.values
            .lock()
            .iter()
            .filter(|(topic, _)| raftmq_raft::state::topic_matches(filter, topic))
            .map(|(topic, payload)| Publish {
                retain: true,
                qos: QoS::AtMostOnce,
                topic: topic.clone(),
                payload: payload.clone(),
                ..Publish::default()
            })
            .collect()
    }

    fn snapshot(&self, broker: &Broker) -> Vec<(String, String)> {
        let m = &broker.metrics;
        let stats = broker.cluster.state().read().stats();
        let uptime = self.started.elapsed().as_secs();
        let connected = Metrics::get(&m.clients_connected);
        let received = Metrics::total(&m.messages_received);
        let sent = Metrics::total(&m.messages_sent);
        let mut values: Vec<(String, String)> = vec![
            (
                "version".into(),
                format!("raftmq version {}", env!("CARGO_PKG_VERSION")),
            ),
            ("uptime".into(), format!("{uptime} seconds")),
            ("clients/connected".into(), connected.to_string()),
            ("clients/active".into(), connected.to_string()),
            (
                "clients/maximum".into(),
                Metrics::get(&m.clients_maximum).to_string(),
            ),
            ("clients/total".into(), stats.sessions.to_string()),
            (
                "clients/disconnected".into(),
                stats
                    .sessions
                    .saturating_sub(stats.sessions_online)
                    .to_string(),
            ),
            (
                "clients/refused".into(),
                m.connects_refused.total().to_string(),
            ),
            ("messages/received".into(), received.to_string()),
            ("messages/sent".into(), sent.to_string()),
            ("publish/messages/received".into(), received.to_string()),
            ("publish/messages/sent".into(), sent.to_string()),
            ("messages/stored".into(), stats.stored_messages.to_string()),
            (
                "messages/inflight".into(),
                stats.inflight_messages.to_string(),
            ),
            (
                // Like Mosquitto's: every message not delivered to a subscriber because of a
                // limit — slow QoS 0 connections (this node's metric) and full offline queues
                // or oversized messages (the replicated counts).
                "publish/messages/dropped".into(),
                (Metrics::get(&m.publish_dropped)
                    + stats.dropped_queue_full
                    + stats.dropped_too_large)
                    .to_string(),
            ),
            (
                "publish/bytes/received".into(),
                Metrics::total(&m.bytes_received).to_string(),
            ),
            (
                "publish/bytes/sent".into(),
                Metrics::total(&m.bytes_sent).to_string(),
            ),
            (
                "load/bytes/received".into(),
                Metrics::total(&m.bytes_received).to_string(),
            ),
            (
                "load/bytes/sent".into(),
                Metrics::total(&m.bytes_sent).to_string(),
            ),
            (
                "subscriptions/count".into(),
                stats.subscriptions.to_string(),
            ),
            (
                "subscriptions/memory/bytes".into(),
                stats.subscription_bytes.to_string(),
            ),
            ("retained messages/count".into(), stats.retained.to_string()),
            (
                "store/messages/count".into(),
                stats.queued_messages.to_string(),
            ),
            (
                "store/messages/bytes".into(),
                stats.queued_bytes.to_string(),
            ),
        ];
        // The per-QoS and per-reason counts `/metrics` labels, as raftmq's own topics.
        for (qos, (r, s)) in m.messages_received.iter().zip(&m.messages_sent).enumerate() {
            values.push((
                format!("publish/messages/received/qos{qos}"),
                Metrics::get(r).to_string(),
            ));
            values.push((
                format!("publish/messages/sent/qos{qos}"),
                Metrics::get(s).to_string(),
            ));
        }
        for (reason, n) in DisconnectReason::ALL.iter().zip(&m.disconnects) {
            values.push((
                format!("clients/disconnects/{}", reason.as_str()),
                Metrics::get(n).to_string(),
            ));
        }
        let raft = broker.cluster.raft().metrics().borrow().clone();
        values.push(("cluster/node".into(), broker.cluster.node_id().to_string()));
        values.push(("cluster/term".into(), raft.current_term.to_string()));
        values.push((
            "cluster/leader".into(),
            raft.current_leader.map_or(0, |l| l.0).to_string(),
        ));
        values.push((
            "cluster/active".into(),
            u8::from(broker.cluster.is_active()).to_string(),
        ));
        values
    }

    /// Refresh the values and send them to current subscribers (active node only).
    pub fn publish(&self, broker: &Broker) {
        let now = crate::clock::now_ms();
        let fresh = self.snapshot(broker);
        {
            let mut values = self.values.lock();
            for (name, value) in &fresh {
                values.insert(format!("$SYS/broker/{name}"), Bytes::from(value.clone()));
            }
        }
        if !broker.cluster.is_active() {
            return;
        }
        for (name, value) in fresh {
            let message = Arc::new(Message {
                topic: format!("$SYS/broker/{name}"),
                payload: Bytes::from(value),
                qos: QoS::AtMostOnce,
                retain: false,
                received_ms: now,
                ..Message::default()
            });
            let deliveries = broker.cluster.state().read().route_transient(&message);
            broker.router.deliver_transient(deliveries);
        }
    }
}

/// Refresh `$SYS` every `interval` until shutdown.
pub async fn run(broker: Arc<Broker>, interval: Duration) {
    let mut shutdown = broker.shutdown.clone();
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => broker.sys.publish(&broker),
            _ = shutdown.changed() => return,
        }
    }
}
