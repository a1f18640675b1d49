//! Broker-wide counters, lock-free. `$SYS` reads them; the Prometheus exporter will too.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub clients_connected: AtomicU64,
    pub clients_maximum: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub publish_dropped: AtomicU64,
    pub connects_refused: AtomicU64,
    pub protocol_errors: AtomicU64,

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

    pub fn client_connected(&self) {
        let now = self.clients_connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn client_disconnected(&self) {
        self.clients_connected.fetch_sub(1, Ordering::Relaxed);
    }
}
