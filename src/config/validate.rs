//! Checks a type cannot express. Each error names its key.

use std::net::SocketAddr;

use super::{Config, ConfigError};

pub fn addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::invalid(key, format!("{value:?} is not an IP:port address")))
}

pub fn check(c: &Config) -> Result<(), ConfigError> {
    if c.node_id == 0 {
        return Err(ConfigError::invalid("node_id", "must be at least 1"));
    }
    if c.data_dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid("data_dir", "must not be empty"));
    }
    addr("mqtt.listen", &c.mqtt.listen)?;
    c.ws_listen()?;
    if c.wss_listen()?.is_some() && (c.tls.cert_file.is_empty() || c.tls.key_file.is_empty()) {
        return Err(ConfigError::invalid(
            "mqtt.wss_listen",
            "needs tls.cert_file and tls.key_file (WebSocket over TLS uses the tls section's certificate)",
        ));
    }
    if c.mqtt.connect_timeout_secs == 0 {
        return Err(ConfigError::invalid(
            "mqtt.connect_timeout_secs",
            "must be at least 1",
        ));
    }
    if c.mqtt.receive_maximum == 0 {
        return Err(ConfigError::invalid(
            "mqtt.receive_maximum",
            "must be at least 1",
        ));
    }
    if !c.tls.cert_file.is_empty() || !c.tls.key_file.is_empty() {
        if c.tls.cert_file.is_empty() {
            return Err(ConfigError::invalid(
                "tls.cert_file",
                "required with tls.key_file",
            ));
        }
        if c.tls.key_file.is_empty() {
            return Err(ConfigError::invalid(
                "tls.key_file",
                "required with tls.cert_file",
            ));
        }
        addr("tls.listen", &c.tls.listen)?;
    }
    if c.tls.require_client_cert && c.tls.client_ca_file.is_empty() {
        return Err(ConfigError::invalid(
            "tls.require_client_cert",
            "needs tls.client_ca_file to verify certificates with",
        ));
    }
    let l = &c.limits;
    if !(64..=268_435_455).contains(&l.max_packet_size) {
        return Err(ConfigError::invalid(
            "limits.max_packet_size",
            "must be between 64 and 268435455 bytes",
        ));
    }
    if l.max_inflight == 0 {
        return Err(ConfigError::invalid(
            "limits.max_inflight",
            "must be at least 1",
        ));
    }
    if l.max_client_id_len == 0 || l.max_client_id_len > 65535 {
        return Err(ConfigError::invalid(
            "limits.max_client_id_len",
            "must be between 1 and 65535",
        ));
    }
    super::limits::validate_session_limits(l)?;
    c.connections.validate()?;
    c.flapping.validate()?;
    let r = &c.raft;
    if r.heartbeat_ms == 0 {
        return Err(ConfigError::invalid(
            "raft.heartbeat_ms",
            "must be at least 1",
        ));
    }
    if r.election_timeout_min_ms <= r.heartbeat_ms {
        return Err(ConfigError::invalid(
            "raft.election_timeout_min_ms",
            "must be greater than raft.heartbeat_ms",
        ));
    }
    if r.election_timeout_max_ms <= r.election_timeout_min_ms {
        return Err(ConfigError::invalid(
            "raft.election_timeout_max_ms",
            "must be greater than raft.election_timeout_min_ms",
        ));
    }
    if r.lease_ms == 0 || r.lease_ms >= r.election_timeout_min_ms {
        return Err(ConfigError::invalid(
            "raft.lease_ms",
            "must be at least 1 and less than raft.election_timeout_min_ms",
        ));
    }
    if r.proposal_timeout_ms == 0 {
        return Err(ConfigError::invalid(
            "raft.proposal_timeout_ms",
            "must be at least 1",
        ));
    }
    if r.batch_max_ops == 0 {
        return Err(ConfigError::invalid(
            "raft.batch_max_ops",
            "must be at least 1",
        ));
    }
    if r.max_inflight_batches == 0 {
        return Err(ConfigError::invalid(
            "raft.max_inflight_batches",
            "must be at least 1",
        ));
    }
    let members = super::peers::parse(&r.peers)?;
    if !members.is_empty() {
        if !members.contains_key(&raftmq_raft::NodeId(c.node_id)) {
            return Err(ConfigError::invalid(
                "raft.peers",
                format!("does not list this node (node_id {})", c.node_id),
            ));
        }
        if members.len() > 1 && r.secret.is_empty() {
            return Err(ConfigError::invalid(
                "raft.secret",
                "required when raft.peers lists more than one node",
            ));
        }
    }
    if !r.secret.is_empty() {
        addr("raft.raft_listen", &r.raft_listen)?;
    }
    if r.join && r.secret.is_empty() {
        return Err(ConfigError::invalid(
            "raft.join",
            "a joining node needs raft.secret to talk to the cluster",
        ));
    }
    let tls = [&r.tls_cert_file, &r.tls_key_file, &r.tls_ca_file];
    if tls.iter().any(|f| !f.is_empty()) && tls.iter().any(|f| f.is_empty()) {
        return Err(ConfigError::invalid(
            "raft.tls_cert_file",
            "raft.tls_cert_file, raft.tls_key_file and raft.tls_ca_file go together",
        ));
    }
    if r.tick_ms == 0 {
        return Err(ConfigError::invalid("raft.tick_ms", "must be at least 1"));
    }
    c.vip.validate()?;
    c.auth.validate(&c.tls.client_ca_file)?;
    c.admin.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn example_file_parses_and_is_valid() {
        let c = Config::from_toml(super::super::EXAMPLE, std::path::Path::new("example")).unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn errors_name_their_key() {
        let mut c = Config::default();
        c.mqtt.listen = "nowhere".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("mqtt.listen"));
        let mut c = Config::default();
        c.tls.key_file = "k.pem".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tls.cert_file"));
        let err = Config::from_toml(
            "[limits]\nmax_inflight = \"many\"\n",
            std::path::Path::new("x"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_inflight"), "{err}");
        let err =
            Config::from_toml("[mqtt]\nlisten_typo = 1\n", std::path::Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("listen_typo"), "{err}");
    }
}
