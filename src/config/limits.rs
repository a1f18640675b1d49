//! `[connections]` (limits at the door: how many, how fast, from where) and `[flapping]`
//! (banning clients that reconnect in a loop). Per-session limits stay in `[limits]`; their
//! checks are here too, so every limit's validation reads in one place.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Limits};
use crate::limits::Cidr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Open connections on this node, all sources together. 0 = no limit.
    pub max: u32,
    /// Open connections from one source IP. 0 = no limit.
    pub max_per_ip: u32,
    /// New connections per second from one source IP (token bucket refill). 0 = no limit.
    pub rate_per_ip: u32,
    /// New connections one source IP may open at once before the rate applies.
    pub burst_per_ip: u32,
    /// Open connections with one username (checked at CONNECT). 0 = no limit.
    pub max_per_username: u32,
    /// Comma-separated CIDRs (or single IPs) exempt from the per-IP limits, e.g. a load
    /// balancer's health checks. The total limit still applies.
    pub allow: String,
    /// A refused source, username or client id is logged at most once per this many
    /// seconds (with the count refused meanwhile).
    pub log_interval_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlappingConfig {
    pub enabled: bool,
    /// A client id that connects more than this many times within `window_secs` is banned.
    pub max_connects: u32,
    pub window_secs: u64,
    /// How long the ban lasts.
    pub ban_secs: u64,
    /// Also ban the source IP of the flapping client.
    pub ban_ip: bool,
}

impl Default for ConnectionsConfig {
    fn default() -> ConnectionsConfig {
        ConnectionsConfig {
            max: 100_000,
            max_per_ip: 1_000,
            rate_per_ip: 50,
            burst_per_ip: 100,
            max_per_username: 1_000,
            allow: String::new(),
            log_interval_secs: 60,
        }
    }
}

impl Default for FlappingConfig {
    fn default() -> FlappingConfig {
        FlappingConfig {
            enabled: true,
            max_connects: 15,
            window_secs: 60,
            ban_secs: 300,
            ban_ip: false,
        }
    }
}

impl ConnectionsConfig {
    /// The allow-list, parsed.
    pub fn allow_list(&self) -> Result<Vec<Cidr>, ConfigError> {
        self.allow
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Cidr::parse(s).map_err(|m| ConfigError::invalid("connections.allow", m)))
            .collect()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.allow_list()?;
        if self.rate_per_ip > 0 && self.burst_per_ip == 0 {
            return Err(ConfigError::invalid(
                "connections.burst_per_ip",
                "must be at least 1 when connections.rate_per_ip is set",
            ));
        }
        if self.log_interval_secs == 0 {
            return Err(ConfigError::invalid(
                "connections.log_interval_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl FlappingConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        for (key, value) in [
            ("flapping.max_connects", u64::from(self.max_connects)),
            ("flapping.window_secs", self.window_secs),
            ("flapping.ban_secs", self.ban_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    key,
                    "must be at least 1 (or set flapping.enabled = false)",
                ));
            }
        }
        Ok(())
    }
}

/// The per-session limits added with the door limits (`[limits]`).
pub fn validate_session_limits(l: &Limits) -> Result<(), ConfigError> {
    for (key, value) in [
        ("limits.max_queued_bytes", l.max_queued_bytes),
        ("limits.max_subscriptions", u64::from(l.max_subscriptions)),
        ("limits.max_topic_length", u64::from(l.max_topic_length)),
        ("limits.max_topic_levels", u64::from(l.max_topic_levels)),
        ("limits.max_queued_bytes_total", l.max_queued_bytes_total),
    ] {
        if value == 0 {
            return Err(ConfigError::invalid(key, "must be at least 1"));
        }
    }
    if l.max_topic_length > 65_535 {
        return Err(ConfigError::invalid(
            "limits.max_topic_length",
            "must be at most 65535 (MQTT's own limit)",
        ));
    }
    if l.publish_rate > 0 && l.publish_burst == 0 {
        return Err(ConfigError::invalid(
            "limits.publish_burst",
            "must be at least 1 when limits.publish_rate is set",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn errors_name_their_key() {
        let mut c = Config::default();
        c.connections.allow = "10.0.0.0/8, nonsense".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("connections.allow"), "{err}");
        let mut c = Config::default();
        c.flapping.window_secs = 0;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("flapping.window_secs"), "{err}");
        let mut c = Config::default();
        c.limits.max_topic_levels = 0;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("limits.max_topic_levels"), "{err}");
        let err = Config::from_toml(
            "[limits]\nqueue_policy = \"drop_middle\"\n",
            std::path::Path::new("x"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("queue_policy"), "{err}");
    }

    #[test]
    fn environment_sets_the_new_keys() {
        let mut c = Config::default();
        let vars = [
            ("RAFTMQ_CONNECTIONS_MAX_PER_IP", "3"),
            ("RAFTMQ_CONNECTIONS_ALLOW", "127.0.0.1, ::1/128"),
            ("RAFTMQ_FLAPPING_ENABLED", "false"),
            ("RAFTMQ_LIMITS_QUEUE_POLICY", "drop_oldest"),
        ];
        super::super::apply_env(
            &mut c,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(c.connections.max_per_ip, 3);
        assert_eq!(c.connections.allow_list().unwrap().len(), 2);
        assert!(!c.flapping.enabled);
        assert_eq!(c.limits.queue_policy, raftmq_raft::QueuePolicy::DropOldest);
    }
}
