//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of the broker counters, the
//! replicated state's sizes and this node's Raft view. Written by hand: a few dozen lines
//! of text need no registry, and every value is read fresh at scrape time.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::admin::AppState;
use crate::cluster::Role;
use crate::metrics::Metrics;

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let status = s.raft_status();
    let stats = s.cluster.state().read().stats();
    let m = &s.metrics;
    let mut out = Exposition::default();
    let counters: [(&str, &str, &AtomicU64); 8] = [
        (
            "connections_total",
            "MQTT connections accepted",
            &m.connections_total,
        ),
        (
            "messages_received_total",
            "MQTT packets received",
            &m.messages_received,
        ),
        ("messages_sent_total", "MQTT packets sent", &m.messages_sent),
        (
            "bytes_received_total",
            "bytes received from MQTT clients",
            &m.bytes_received,
        ),
        (
            "bytes_sent_total",
            "bytes sent to MQTT clients",
            &m.bytes_sent,
        ),
        (
            "publish_dropped_total",
            "QoS 0 messages dropped for slow connections",
            &m.publish_dropped,
        ),
        (
            "connects_refused_total",
            "CONNECTs refused",
            &m.connects_refused,
        ),
        (
            "protocol_errors_total",
            "connections closed for a protocol error",
            &m.protocol_errors,
        ),
    ];
    for (name, help, counter) in counters {
        out.metric(name, "counter", help, Metrics::get(counter));
    }
    out.metric(
        "clients_connected",
        "gauge",
        "MQTT clients connected now",
        Metrics::get(&m.clients_connected),
    );
    out.metric(
        "clients_maximum",
        "gauge",
        "most MQTT clients connected at once",
        Metrics::get(&m.clients_maximum),
    );
    let state: [(&str, &str, &str, u64); 10] = [
        (
            "sessions",
            "gauge",
            "sessions in the replicated state",
            stats.sessions,
        ),
        (
            "sessions_online",
            "gauge",
            "sessions with a live connection",
            stats.sessions_online,
        ),
        (
            "subscriptions",
            "gauge",
            "subscriptions of all sessions",
            stats.subscriptions,
        ),
        (
            "retained_messages",
            "gauge",
            "retained messages",
            stats.retained,
        ),
        (
            "stored_messages",
            "gauge",
            "messages stored once for queues and retained",
            stats.stored_messages,
        ),
        (
            "queued_messages",
            "gauge",
            "messages queued beyond in-flight windows",
            stats.queued_messages,
        ),
        (
            "inflight_messages",
            "gauge",
            "QoS 1/2 deliveries awaiting acknowledgement",
            stats.inflight_messages,
        ),
        (
            "dropped_queue_full_total",
            "counter",
            "messages dropped by full session queues",
            stats.dropped_queue_full,
        ),
        (
            "expired_messages_total",
            "counter",
            "messages expired before delivery",
            stats.expired_messages,
        ),
        (
            "dropped_too_large_total",
            "counter",
            "deliveries dropped above a client's maximum packet size",
            stats.dropped_too_large,
        ),
    ];
    for (name, kind, help, value) in state {
        out.metric(name, kind, help, value);
    }
    let raft: [(&str, &str, u64); 8] = [
        ("raft_term", "current Raft term", status.term),
        (
            "raft_is_leader",
            "1 on the Raft leader",
            u64::from(status.role == Role::Leader),
        ),
        (
            "raft_lease_held",
            "1 while the leader holds its quorum lease",
            u64::from(status.lease.held),
        ),
        (
            "active",
            "1 while this node serves MQTT",
            u64::from(status.active),
        ),
        (
            "raft_last_log_index",
            "last log index on this node",
            status.last_log_index.unwrap_or(0),
        ),
        (
            "raft_applied_index",
            "last log index applied to the state machine",
            status.applied_index.unwrap_or(0),
        ),
        (
            "raft_snapshot_index",
            "last log index in the latest snapshot",
            status.snapshot_index.unwrap_or(0),
        ),
        (
            "raft_voters",
            "voters in the membership",
            status.voters().count() as u64,
        ),
    ];
    for (name, help, value) in raft {
        out.metric(name, "gauge", help, value);
    }
    // Authentication and authorization (`crate::auth`), one labelled family each.
    out.header(
        "auth_failures_total",
        "counter",
        "CONNECTs refused by authentication, by reason",
    );
    for (reason, counter) in [
        ("bad_credentials", &m.auth_bad_credentials),
        ("not_authorized", &m.auth_not_authorized),
        ("rate_limited", &m.auth_rate_limited),
    ] {
        let labels = format!("{{reason=\"{reason}\"}}");
        out.sample("auth_failures_total", &labels, Metrics::get(counter));
    }
    out.header(
        "acl_denied_total",
        "counter",
        "actions refused by the ACL file, by action",
    );
    for (action, counter) in [
        ("publish", &m.acl_denied_publish),
        ("subscribe", &m.acl_denied_subscribe),
        ("deliver", &m.acl_denied_deliver),
        ("will", &m.acl_denied_will),
    ] {
        let labels = format!("{{action=\"{action}\"}}");
        out.sample("acl_denied_total", &labels, Metrics::get(counter));
    }
    out.metric(
        "auth_reload_failures_total",
        "counter",
        "password/ACL file reloads that failed (the previous files stay in force)",
        Metrics::get(&m.auth_reload_failures),
    );
    // Limits (`crate::limits`): refusals by limit, bans, per-session limits.
    out.header(
        "door_refused_total",
        "counter",
        "connections refused at the door, by limit",
    );
    for (limit, counter) in [
        ("max", &m.door_refused_total),
        ("max_per_ip", &m.door_refused_per_ip),
        ("rate_per_ip", &m.door_refused_rate),
        ("max_per_username", &m.door_refused_username),
        ("connect_timeout", &m.connect_timeouts),
        ("banned", &m.banned_refused),
    ] {
        let labels = format!("{{limit=\"{limit}\"}}");
        out.sample("door_refused_total", &labels, Metrics::get(counter));
    }
    let limits: [(&str, &str, &str, u64); 8] = [
        (
            "flapping_bans_total",
            "counter",
            "bans set by flapping detection",
            Metrics::get(&m.flapping_bans),
        ),
        ("bans", "gauge", "bans stored (replicated)", stats.bans),
        (
            "publish_throttled_total",
            "counter",
            "times a connection's reads were paused by its publish rate",
            Metrics::get(&m.publish_throttled),
        ),
        (
            "subscriptions_refused_total",
            "counter",
            "SUBSCRIBE filters refused by limits.max_subscriptions",
            Metrics::get(&m.subscriptions_refused),
        ),
        (
            "topics_refused_total",
            "counter",
            "topics or filters over limits.max_topic_length or max_topic_levels",
            Metrics::get(&m.topics_refused),
        ),
        (
            "shed_qos0_total",
            "counter",
            "QoS 0 publishes dropped near limits.max_queued_bytes_total",
            Metrics::get(&m.shed_qos0),
        ),
        (
            "shed_qos12_total",
            "counter",
            "QoS 1/2 publishes refused at limits.max_queued_bytes_total",
            Metrics::get(&m.shed_qos12),
        ),
        (
            "queued_bytes",
            "gauge",
            "topic + payload bytes in session queues",
            stats.queued_bytes,
        ),
    ];
    for (name, kind, help, value) in limits {
        out.metric(name, kind, help, value);
    }
    let lags: Vec<(String, u64)> = status
        .members
        .iter()
        .filter_map(|m| Some((m.id.to_string(), m.lag?)))
        .collect();
    if !lags.is_empty() {
        out.header(
            "raft_replication_lag",
            "gauge",
            "entries a member is behind the leader (leader only)",
        );
        for (node, lag) in lags {
            out.sample("raft_replication_lag", &format!("{{node=\"{node}\"}}"), lag);
        }
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out.text,
    )
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(
            self.text,
            "# HELP raftmq_{name} {help}\n# TYPE raftmq_{name} {kind}"
        );
    }

    fn sample(&mut self, name: &str, labels: &str, value: u64) {
        let _ = writeln!(self.text, "raftmq_{name}{labels} {value}");
    }

    fn metric(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.header(name, kind, help);
        self.sample(name, "", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_text_format() {
        let mut e = Exposition::default();
        e.metric("sessions", "gauge", "sessions", 3);
        e.header("raft_replication_lag", "gauge", "lag");
        e.sample("raft_replication_lag", "{node=\"2\"}", 7);
        assert_eq!(
            e.text,
            "# HELP raftmq_sessions sessions\n# TYPE raftmq_sessions gauge\nraftmq_sessions 3\n\
             # HELP raftmq_raft_replication_lag lag\n# TYPE raftmq_raft_replication_lag gauge\n\
             raftmq_raft_replication_lag{node=\"2\"} 7\n"
        );
    }
}
