//! Configuration: embedded defaults < TOML file < `RAFTMQ_*` environment < flags.
//! Every error names the key it is about; `main` exits with status 2 on any of them.

mod admin;
mod auth;
mod env;
mod limits;
pub mod peers;
mod validate;
mod vip;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use raftmq_raft::{Member, NodeId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use admin::{is_host_port, AdminConfig};
pub use auth::{Anonymous, AuthConfig};
pub use env::apply_env;
pub use limits::{ConnectionsConfig, FlappingConfig};
pub use vip::{VipAddress, VipConfig, VipMode};

/// The example file shipped in the repository, parsed by a test so it never drifts.
pub const EXAMPLE: &str = include_str!("../../raftmq.example.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("unknown environment variable {var}: no config key `{key}`")]
    UnknownEnv { var: String, key: String },
}

impl ConfigError {
    pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's Raft id (non-zero, unique in the cluster).
    pub node_id: u64,
    /// Where the write-ahead log, the state mirror and snapshots live.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub mqtt: MqttConfig,
    pub tls: TlsConfig,
    pub limits: Limits,
    pub connections: ConnectionsConfig,
    pub flapping: FlappingConfig,
    pub raft: RaftConfig,
    pub sys: SysConfig,
    pub vip: VipConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Plain TCP listener. Loopback by default, like Mosquitto 2 without a config file.
    pub listen: String,
    /// MQTT over WebSocket (path `/mqtt`, subprotocol `mqtt`); empty = off.
    pub ws_listen: String,
    /// MQTT over WebSocket over TLS (the `tls` section's certificate); empty = off.
    pub wss_listen: String,
    /// Address clients should use to reach this node (CONNACK server reference on followers).
    pub advertise: String,
    /// Seconds a new socket has to send its CONNECT.
    pub connect_timeout_secs: u64,
    /// Largest keep alive accepted; a 5.0 client asking for more is told this value.
    pub max_keepalive_secs: u16,
    /// Whether clients may publish retained messages.
    pub retain_available: bool,
    /// Topic aliases a 5.0 client may use towards the broker.
    pub topic_alias_maximum: u16,
    /// QoS 1/2 publishes a client may have unacknowledged towards the broker (5.0 receive
    /// maximum in CONNACK; back-pressure for 3.1.1).
    pub receive_maximum: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// TLS listener, started only when `cert_file` and `key_file` are set.
    pub listen: String,
    pub cert_file: String,
    pub key_file: String,
    /// CA bundle to verify client certificates with; empty = no client certificates.
    pub client_ca_file: String,
    /// With `client_ca_file`: refuse clients that present no certificate.
    pub require_client_cert: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest MQTT packet accepted or sent, in bytes.
    pub max_packet_size: u32,
    /// QoS 1/2 deliveries unacknowledged at once per session (Mosquitto: max_inflight_messages).
    pub max_inflight: u16,
    /// Messages queued per session beyond the in-flight window; more are dropped and counted
    /// (Mosquitto: max_queued_messages).
    pub max_queued_messages: u32,
    /// QoS 0 messages waiting to be written to one slow connection before new ones are dropped.
    pub max_pending_qos0: u32,
    /// Client ids longer than this are refused.
    pub max_client_id_len: usize,
    /// Topic + payload bytes queued per session; with `max_queued_messages`, whichever
    /// is reached first (Mosquitto: max_queued_bytes).
    pub max_queued_bytes: u64,
    /// Which message a full session queue drops: `drop_newest` (the one arriving, as
    /// Mosquitto does) or `drop_oldest` (keep the latest values).
    pub queue_policy: raftmq_raft::QueuePolicy,
    /// Topic + payload bytes queued in all sessions together. From 90% of it new QoS 0
    /// publishes are dropped; at it, new QoS 1/2 publishes are refused (5.0: 0x97).
    pub max_queued_bytes_total: u64,
    /// Subscriptions one session may hold; more are refused (5.0: 0x97, 3.1.1: 0x80).
    pub max_subscriptions: u32,
    /// Longest topic name or filter, in bytes.
    pub max_topic_length: u32,
    /// Most levels (`/`-separated parts) in a topic name or filter.
    pub max_topic_levels: u32,
    /// PUBLISH packets per second one connection may send; beyond it the broker stops
    /// reading the socket until the rate allows (back-pressure, not a disconnect). 0 = none.
    pub publish_rate: u32,
    /// PUBLISH packets sent at once before `publish_rate` applies.
    pub publish_burst: u32,
    /// PUBLISH payload bytes per second per connection, enforced the same way. 0 = none.
    pub publish_bytes_rate: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// The leader serves only while a quorum acknowledged it within this many ms; must be
    /// shorter than `election_timeout_min_ms` so a new leader cannot exist meanwhile.
    pub lease_ms: u64,
    /// Every proposal fails after this long instead of hanging (a cut-off leader never acks).
    pub proposal_timeout_ms: u64,
    /// Most ops batched into one Raft entry.
    pub batch_max_ops: usize,
    /// Entries appended but not yet committed at once (pipelining depth).
    pub max_inflight_batches: usize,
    /// Build a snapshot (and purge the log) every this many entries.
    pub snapshot_every_entries: u64,
    /// Housekeeping period (wills, session and message expiry).
    pub tick_ms: u64,
    /// Raft traffic between members (started when `secret` is set).
    pub raft_listen: String,
    /// Address peers dial for Raft; empty = `raft_listen`.
    pub advertise_raft: String,
    /// Initial members, the same on every node: `ID=RAFT/MQTT/ADMIN,...` (see `peers`).
    /// Empty: a one-node cluster of this node.
    pub peers: String,
    /// Start as a node to be added through the admin API (`POST /cluster/learners`): never
    /// form a cluster of its own, even with an empty data directory.
    pub join: bool,
    /// Shared by every member; only holders can vote, append or send snapshots. Empty: this
    /// node runs alone and opens no Raft listener.
    pub secret: String,
    /// Mutual TLS for Raft traffic (all three or none): this node's certificate and key,
    /// and the CA that signed every member's certificate.
    pub tls_cert_file: String,
    pub tls_key_file: String,
    pub tls_ca_file: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SysConfig {
    /// Seconds between `$SYS` updates; 0 disables `$SYS`.
    pub interval_secs: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            node_id: 1,
            data_dir: PathBuf::from("raftmq-data"),
            log_format: LogFormat::Plain,
            mqtt: MqttConfig::default(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            connections: ConnectionsConfig::default(),
            flapping: FlappingConfig::default(),
            raft: RaftConfig::default(),
            sys: SysConfig::default(),
            vip: VipConfig::default(),
            admin: AdminConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

impl Default for MqttConfig {
    fn default() -> MqttConfig {
        MqttConfig {
            listen: "127.0.0.1:1883".into(),
            ws_listen: String::new(),
            wss_listen: String::new(),
            advertise: String::new(),
            connect_timeout_secs: 10,
            max_keepalive_secs: 65535,
            retain_available: true,
            topic_alias_maximum: 10,
            receive_maximum: 1024,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            listen: "127.0.0.1:8883".into(),
            cert_file: String::new(),
            key_file: String::new(),
            client_ca_file: String::new(),
            require_client_cert: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_packet_size: 1024 * 1024,
            max_inflight: 20,
            max_queued_messages: 1000,
            max_pending_qos0: 1000,
            max_client_id_len: 256,
            max_queued_bytes: 16 * 1024 * 1024,
            queue_policy: raftmq_raft::QueuePolicy::DropNewest,
            max_queued_bytes_total: 1024 * 1024 * 1024,
            max_subscriptions: 1_000,
            max_topic_length: 4_096,
            max_topic_levels: 128,
            publish_rate: 50_000,
            publish_burst: 50_000,
            publish_bytes_rate: 64 * 1024 * 1024,
        }
    }
}

impl Default for RaftConfig {
    fn default() -> RaftConfig {
        RaftConfig {
            heartbeat_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 500,
            lease_ms: 300,
            proposal_timeout_ms: 5000,
            batch_max_ops: 4096,
            max_inflight_batches: 4,
            snapshot_every_entries: 20_000,
            tick_ms: 1000,
            raft_listen: "127.0.0.1:7946".into(),
            advertise_raft: String::new(),
            peers: String::new(),
            join: false,
            secret: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_ca_file: String::new(),
        }
    }
}

impl Default for SysConfig {
    fn default() -> SysConfig {
        SysConfig { interval_secs: 10 }
    }
}

impl Config {
    /// Parse a TOML document (unknown keys and wrong types are errors naming the key).
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Check values a type cannot (addresses, ranges, files that must go together).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::check(self)
    }

    pub fn mqtt_listen(&self) -> Result<SocketAddr, ConfigError> {
        validate::addr("mqtt.listen", &self.mqtt.listen)
    }

    pub fn raft_listen(&self) -> Result<SocketAddr, ConfigError> {
        validate::addr("raft.raft_listen", &self.raft.raft_listen)
    }

    /// The MQTT address clients should be sent to.
    pub fn advertise_mqtt(&self) -> String {
        if self.mqtt.advertise.is_empty() {
            self.mqtt.listen.clone()
        } else {
            self.mqtt.advertise.clone()
        }
    }

    /// The initial members: `raft.peers`, or this node alone.
    pub fn initial_members(&self) -> Result<BTreeMap<NodeId, Member>, ConfigError> {
        let members = peers::parse(&self.raft.peers)?;
        if !members.is_empty() {
            return Ok(members);
        }
        let raft_addr = if self.raft.advertise_raft.is_empty() {
            self.raft.raft_listen.clone()
        } else {
            self.raft.advertise_raft.clone()
        };
        Ok(BTreeMap::from([(
            NodeId(self.node_id),
            Member {
                raft_addr,
                mqtt_addr: self.advertise_mqtt(),
                admin_addr: self.admin.advertised().to_owned(),
            },
        )]))
    }

    /// The WebSocket listener's address, when one is configured.
    pub fn ws_listen(&self) -> Result<Option<SocketAddr>, ConfigError> {
        optional_addr("mqtt.ws_listen", &self.mqtt.ws_listen)
    }

    /// The WebSocket-over-TLS listener's address, when one is configured.
    pub fn wss_listen(&self) -> Result<Option<SocketAddr>, ConfigError> {
        optional_addr("mqtt.wss_listen", &self.mqtt.wss_listen)
    }

    /// The TLS listener's address, when TLS is configured.
    pub fn tls_listen(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.tls.cert_file.is_empty() {
            return Ok(None);
        }
        validate::addr("tls.listen", &self.tls.listen).map(Some)
    }
}

fn optional_addr(key: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    validate::addr(key, value).map(Some)
}
