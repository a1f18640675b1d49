//! Broker-wide counters, lock-free. `$SYS` (`crate::sys`) and the Prometheus exporter
//! (`crate::exporter`) both read them, so the two never disagree.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::latency::LatencyHistogram;

/// One counter per MQTT QoS level, indexed by the level (0, 1, 2).
pub type PerQos = [AtomicU64; 3];

#[derive(Debug, Default)]
pub struct Metrics {
    pub clients_connected: AtomicU64,
    pub clients_maximum: AtomicU64,
    pub connections_total: AtomicU64,
    /// PUBLISH packets received from clients, by QoS.
    pub messages_received: PerQos,
    /// Messages delivered to clients, by the QoS they were delivered with.
    pub messages_sent: PerQos,
    /// Payload bytes of `messages_received`, by QoS.
    pub bytes_received: PerQos,
    /// Payload bytes of `messages_sent`, by QoS.
    pub bytes_sent: PerQos,
    pub publish_dropped: AtomicU64,
    /// CONNECTs refused, by the CONNACK reason code sent (or that would have been sent to a
    /// 3.1.1 client that has no code for it).
    pub connects_refused: ReasonCounts,
    /// Connections that ended after CONNACK, by `DisconnectReason` (the index).
    pub disconnects: [AtomicU64; DisconnectReason::ALL.len()],
    /// WAL `fdatasync` calls (wired to the storage flusher by main.rs).
    pub fsync_latency: LatencyHistogram,
    /// A batch of proposals handed to Raft until it is committed and applied.
    pub commit_latency: LatencyHistogram,
    /// A QoS 1 PUBLISH read until its PUBACK is ready to write (the commit dominates).
    pub puback_latency: LatencyHistogram,

    // Authentication and authorization (`crate::auth`).
    /// CONNECTs refused for an unknown user or a wrong password.
    pub auth_bad_credentials: AtomicU64,
    /// CONNECTs refused as not authorized: anonymous when not allowed, a disabled user, a
    /// TLS client without a certificate identity.
    pub auth_not_authorized: AtomicU64,
    /// CONNECTs refused by the per-username authentication rate limit.
    pub auth_rate_limited: AtomicU64,
    /// ACL denials: PUBLISH, SUBSCRIBE filters, deliveries (retained included), wills.
    pub acl_denied_publish: AtomicU64,
    pub acl_denied_subscribe: AtomicU64,
    pub acl_denied_deliver: AtomicU64,
    pub acl_denied_will: AtomicU64,
    /// Password/ACL reloads that failed (the previous files stay in force).
    pub auth_reload_failures: AtomicU64,

    // Limits (`crate::limits`): refusals at the door, bans, per-session limits.
    /// Sockets closed at accept: `connections.max`, `max_per_ip`, `rate_per_ip`.
    pub door_refused_total: AtomicU64,
    pub door_refused_per_ip: AtomicU64,
    pub door_refused_rate: AtomicU64,
    /// CONNECTs refused by `connections.max_per_username`.
    pub door_refused_username: AtomicU64,
    /// Sockets closed for sending no CONNECT within `mqtt.connect_timeout_secs`.
    pub connect_timeouts: AtomicU64,
    /// CONNECTs refused by a ban.
    pub banned_refused: AtomicU64,
    /// Bans set by flapping detection.
    pub flapping_bans: AtomicU64,
    /// Times a connection's reads were paused by its publish rate.
    pub publish_throttled: AtomicU64,
    /// SUBSCRIBE filters refused by `limits.max_subscriptions`.
    pub subscriptions_refused: AtomicU64,
    /// PUBLISH topics or SUBSCRIBE filters over the topic length or level limits.
    pub topics_refused: AtomicU64,
    /// New QoS 0 publishes dropped, and QoS 1/2 publishes refused, by
    /// `limits.max_queued_bytes_total`.
    pub shed_qos0: AtomicU64,
    pub shed_qos12: AtomicU64,
    /// Topic + payload bytes in session queues, sampled (the gauge the cap is checked on).
    pub queued_bytes: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The sum of a per-QoS counter.
    pub fn total(counters: &PerQos) -> u64 {
        counters.iter().map(Metrics::get).sum()
    }

    pub fn client_connected(&self) {
        let now = self.clients_connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn client_disconnected(&self, reason: DisconnectReason) {
        self.clients_connected.fetch_sub(1, Ordering::Relaxed);
        self.disconnects[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters indexed by an MQTT reason code (one byte).
#[derive(Debug)]
pub struct ReasonCounts([AtomicU64; 256]);

impl Default for ReasonCounts {
    fn default() -> ReasonCounts {
        ReasonCounts(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl ReasonCounts {
    pub fn add(&self, code: u8) {
        self.0[usize::from(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// (code, count) of every code counted at least once, in code order.
    pub fn counted(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        (0..=u8::MAX)
            .zip(&self.0)
            .map(|(code, n)| (code, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
    }

    pub fn total(&self) -> u64 {
        self.counted().map(|(_, n)| n).sum()
    }
}

/// Why a connection ended, in a few classes an operator acts on differently (the exact
/// detail is in the log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT.
    Client,
    /// The socket closed or failed without a DISCONNECT.
    ConnectionLost,
    KeepaliveTimeout,
    /// A new connection with the same client id took the session over.
    TakenOver,
    /// The client broke the protocol or a limit (the 5.0 reason code tells which).
    ProtocolError,
    /// This node stopped serving (lost leadership or its lease, or a proposal failed).
    NotServing,
    Shutdown,
}

impl DisconnectReason {
    pub const ALL: [DisconnectReason; 7] = [
        DisconnectReason::Client,
        DisconnectReason::ConnectionLost,
        DisconnectReason::KeepaliveTimeout,
        DisconnectReason::TakenOver,
        DisconnectReason::ProtocolError,
        DisconnectReason::NotServing,
        DisconnectReason::Shutdown,
    ];

    /// The metric label and log field value.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Client => "client_disconnect",
            DisconnectReason::ConnectionLost => "connection_lost",
            DisconnectReason::KeepaliveTimeout => "keepalive_timeout",
            DisconnectReason::TakenOver => "taken_over",
            DisconnectReason::ProtocolError => "protocol_error",
            DisconnectReason::NotServing => "not_serving",
            DisconnectReason::Shutdown => "shutdown",
        }
    }
}
