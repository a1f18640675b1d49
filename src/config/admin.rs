//! The `[admin]` section: the admin HTTP API (cluster status and membership, health checks,
//! Prometheus metrics) and the bearer token that protects it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Listener of the admin API. Loopback by default: the API changes cluster membership.
    pub listen: String,
    /// Bearer token for `GET /cluster/status` and every write. Empty: those routes answer
    /// 503 (nothing to compare a token with); `/healthz`, `/readyz` and `/metrics` stay open.
    pub token: String,
    /// Address operators and other nodes dial for this node's admin API (recorded in the
    /// membership, returned as the leader hint to writes sent to a follower); empty = `listen`.
    pub advertise: String,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: "127.0.0.1:8081".into(),
            token: String::new(),
            advertise: String::new(),
        }
    }
}

// By hand, so the token never reaches a log line or a panic message.
impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &if self.token.is_empty() { "" } else { "<set>" })
            .field("advertise", &self.advertise)
            .finish()
    }
}

impl AdminConfig {
    /// The admin listener's address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        super::validate::addr("admin.listen", &self.listen)
    }

    /// The admin address others should dial: `advertise`, or the listen address.
    pub fn advertised(&self) -> &str {
        if self.advertise.is_empty() {
            &self.listen
        } else {
            &self.advertise
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if !self.advertise.is_empty() && !is_host_port(&self.advertise) {
            return Err(ConfigError::invalid(
                "admin.advertise",
                format!("{:?} is not HOST:PORT", self.advertise),
            ));
        }
        if self
            .token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            // An HTTP header cannot carry it intact, so no client could ever present it.
            return Err(ConfigError::invalid(
                "admin.token",
                "must not contain spaces or control characters",
            ));
        }
        Ok(())
    }
}

/// `HOST:PORT` with a non-empty host and a port from 1 (a name is allowed: it is dialled, not
/// bound).
pub fn is_host_port(addr: &str) -> bool {
    addr.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_without_a_token() {
        let a = AdminConfig::default();
        assert_eq!(a.listen_addr().unwrap().to_string(), "127.0.0.1:8081");
        assert!(a.token.is_empty());
        assert_eq!(a.advertised(), "127.0.0.1:8081");
        a.validate().unwrap();
    }

    #[test]
    fn errors_name_their_key() {
        let bad = [
            AdminConfig {
                listen: "nowhere".into(),
                ..AdminConfig::default()
            },
            AdminConfig {
                advertise: "host-without-port".into(),
                ..AdminConfig::default()
            },
            AdminConfig {
                token: "two words".into(),
                ..AdminConfig::default()
            },
        ];
        for (a, key) in bad
            .iter()
            .zip(["admin.listen", "admin.advertise", "admin.token"])
        {
            let e = a.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let a = AdminConfig {
            token: "s3cret".into(),
            ..AdminConfig::default()
        };
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
