//! The broker's own counters (`crate::metrics::Metrics`), read at scrape time.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::{counter, gauge, histogram, labelled};
use crate::codec::reason;
use crate::latency::LatencyHistogram;
use crate::metrics::{DisconnectReason, Metrics, PerQos};

type Field<T> = fn(&Metrics) -> &T;

/// Plain counters: (name without `_total`, help, field). Exposing another atomic of
/// `Metrics` as a counter is one more line here.
const COUNTERS: &[(&str, &str, Field<AtomicU64>)] = &[
    ("connects", "CONNECTs accepted (CONNACK success)", |m| {
        &m.connections_total
    }),
    (
        "live_deliveries_dropped",
        "deliveries this node dropped: QoS 0 to a connection too far behind, or above the \
         client's maximum packet size",
        |m| &m.publish_dropped,
    ),
    (
        "auth_reload_failures",
        "password/ACL file reloads that failed (the previous files stay in force)",
        |m| &m.auth_reload_failures,
    ),
    ("flapping_bans", "bans set by flapping detection", |m| {
        &m.flapping_bans
    }),
    (
        "publish_throttled",
        "times a connection's reads were paused by its publish rate",
        |m| &m.publish_throttled,
    ),
    (
        "subscriptions_refused",
        "SUBSCRIBE filters refused by limits.max_subscriptions",
        |m| &m.subscriptions_refused,
    ),
    (
        "topics_refused",
        "topics or filters over limits.max_topic_length or max_topic_levels",
        |m| &m.topics_refused,
    ),
    (
        "shed_qos0",
        "QoS 0 publishes dropped near limits.max_queued_bytes_total",
        |m| &m.shed_qos0,
    ),
    (
        "shed_qos12",
        "QoS 1/2 publishes refused at limits.max_queued_bytes_total",
        |m| &m.shed_qos12,
    ),
];

/// Counters with one label: (name without `_total`, help, label, [(value, field)]).
type Family = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, Field<AtomicU64>)],
);
const FAMILIES: &[Family] = &[
    (
        "auth_failures",
        "CONNECTs refused by authentication, by reason",
        "reason",
        &[
            ("bad_credentials", |m| &m.auth_bad_credentials),
            ("not_authorized", |m| &m.auth_not_authorized),
            ("rate_limited", |m| &m.auth_rate_limited),
        ],
    ),
    (
        "acl_denied",
        "actions refused by the ACL file, by action",
        "action",
        &[
            ("publish", |m| &m.acl_denied_publish),
            ("subscribe", |m| &m.acl_denied_subscribe),
            ("deliver", |m| &m.acl_denied_deliver),
            ("will", |m| &m.acl_denied_will),
        ],
    ),
    (
        "door_refused",
        "connections refused at the door, by limit",
        "limit",
        &[
            ("max", |m| &m.door_refused_total),
            ("max_per_ip", |m| &m.door_refused_per_ip),
            ("rate_per_ip", |m| &m.door_refused_rate),
            ("max_per_username", |m| &m.door_refused_username),
            ("connect_timeout", |m| &m.connect_timeouts),
            ("banned", |m| &m.banned_refused),
        ],
    ),
];

/// Plain gauges, the same way.
const GAUGES: &[(&str, &str, Field<AtomicU64>)] = &[
    ("connections", "MQTT connections open on this node", |m| {
        &m.clients_connected
    }),
    (
        "connections_peak",
        "most MQTT connections open at once since start",
        |m| &m.clients_maximum,
    ),
];

/// Counters by QoS: (name, help, unit, field).
const BY_QOS: &[(&str, &str, Option<Unit>, Field<PerQos>)] = &[
    (
        "messages_received",
        "PUBLISH packets received from clients",
        None,
        |m| &m.messages_received,
    ),
    (
        "messages_sent",
        "messages delivered to clients, by delivery QoS",
        None,
        |m| &m.messages_sent,
    ),
    (
        "payload_received",
        "payload bytes of PUBLISH packets received",
        Some(Unit::Bytes),
        |m| &m.bytes_received,
    ),
    (
        "payload_sent",
        "payload bytes of messages delivered",
        Some(Unit::Bytes),
        |m| &m.bytes_sent,
    ),
];

/// Latency histograms in seconds: (name without `_seconds`, help, field).
const HISTOGRAMS: &[(&str, &str, Field<LatencyHistogram>)] = &[
    (
        "log_fsync_latency",
        "fdatasync of the Raft log (one per group commit)",
        |m| &m.fsync_latency,
    ),
    (
        "commit_latency",
        "a batch of proposals from hand-over to Raft until committed on a quorum and applied",
        |m| &m.commit_latency,
    ),
    (
        "puback_latency",
        "a QoS 1 PUBLISH read until its PUBACK is ready to write",
        |m| &m.puback_latency,
    ),
];

#[derive(Debug)]
pub(super) struct BrokerCollector {
    metrics: Arc<Metrics>,
    /// The most connections the process can hold: each needs a file descriptor.
    fd_limit: Option<u64>,
}

impl BrokerCollector {
    pub(super) fn new(metrics: Arc<Metrics>) -> BrokerCollector {
        BrokerCollector {
            metrics,
            fd_limit: open_files_limit(),
        }
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let m = &*self.metrics;
        for (name, help, field) in COUNTERS {
            counter(&mut e, name, help, Metrics::get(field(m)))?;
        }
        for (name, help, field) in GAUGES {
            gauge(&mut e, name, help, None, Metrics::get(field(m)))?;
        }
        if let Some(limit) = self.fd_limit {
            gauge(
                &mut e,
                "connections_max",
                "the most MQTT connections this node can hold (its open-file limit)",
                None,
                limit,
            )?;
        }
        labelled(
            &mut e,
            (
                "connects_refused",
                "CONNECTs refused, by CONNACK reason (5.0 names; 3.1.1 clients get the \
                 nearest 3.1.1 code)",
                None,
                MetricType::Counter,
            ),
            "reason",
            m.connects_refused
                .counted()
                .map(|(code, n)| (reason::name(code).to_owned(), n)),
        )?;
        labelled(
            &mut e,
            (
                "disconnects",
                "connections ended after CONNACK, by reason",
                None,
                MetricType::Counter,
            ),
            "reason",
            DisconnectReason::ALL
                .iter()
                .zip(&m.disconnects)
                .map(|(r, n)| (r.as_str().to_owned(), Metrics::get(n))),
        )?;
        for (name, help, label, fields) in FAMILIES {
            labelled(
                &mut e,
                (name, help, None, MetricType::Counter),
                label,
                fields
                    .iter()
                    .map(|(value, field)| (value.to_string(), Metrics::get(field(m)))),
            )?;
        }
        for (name, help, unit, field) in BY_QOS {
            labelled(
                &mut e,
                (name, help, unit.as_ref(), MetricType::Counter),
                "qos",
                field(m)
                    .iter()
                    .enumerate()
                    .map(|(qos, n)| (qos.to_string(), Metrics::get(n))),
            )?;
        }
        for (name, help, field) in HISTOGRAMS {
            histogram(&mut e, name, help, field(m))?;
        }
        Ok(())
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere or when
/// unlimited.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
