//! Command line: `raftmq [serve] [flags]`. Flags override the config file and environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::auth::passwd::PasswdArgs;
use crate::config::{apply_env, Config, ConfigError, LogFormat};
use crate::ctl::CtlArgs;

#[derive(Debug, Parser)]
#[command(
    name = "raftmq",
    version,
    about = "MQTT 3.1.1/5.0 broker: every acknowledgement means a Raft quorum has it on disk",
    long_about = "MQTT 3.1.1/5.0 broker: every acknowledgement means a Raft quorum has it on disk.\n\n\
        Without a subcommand, `raftmq` runs `serve`. Configuration comes from embedded defaults,\n\
        then the TOML file given with --config, then RAFTMQ_<SECTION>_<KEY> environment\n\
        variables (e.g. RAFTMQ_MQTT_LISTEN), then flags. See raftmq.example.toml.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker (the default).
    Serve(ServeArgs),
    /// Operate a running cluster through a node's admin API (status, membership changes).
    Ctl(CtlArgs),
    /// Seed a brand-new node's data directory from a backup taken with `raftmq ctl backup`.
    /// Restore the same file into every member of the new cluster before starting any.
    Restore(RestoreArgs),
    /// Add, change or delete a user in a Mosquitto password file (like mosquitto_passwd).
    Passwd(PasswdArgs),
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The new node's data directory (created if missing; must be empty).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Replace what the data directory holds (its log, state and snapshots are deleted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (without it, embedded defaults).
    #[arg(long, short = 'c', value_name = "FILE", env = "RAFTMQ_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (write-ahead log, state mirror, snapshots). Key: data_dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Plain MQTT listener, e.g. 0.0.0.0:1883. Key: mqtt.listen.
    #[arg(long, value_name = "ADDR")]
    pub mqtt_listen: Option<String>,
    /// MQTT over TLS listener (needs tls.cert_file and tls.key_file). Key: tls.listen.
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<String>,
    /// MQTT over WebSocket listener (path /mqtt), e.g. 0.0.0.0:8080. Key: mqtt.ws_listen.
    #[arg(long, value_name = "ADDR")]
    pub ws_listen: Option<String>,
    /// MQTT over WebSocket over TLS listener (needs tls.cert_file and tls.key_file).
    /// Key: mqtt.wss_listen.
    #[arg(long, value_name = "ADDR")]
    pub wss_listen: Option<String>,
    /// Log format. Key: log_format. Verbosity: RUST_LOG (default info).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// This node's Raft id. Key: node_id.
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,
    /// Raft listener for cluster traffic (starts when raft.secret is set). Key: raft.raft_listen.
    #[arg(long, value_name = "ADDR")]
    pub raft_listen: Option<String>,
    /// MQTT address clients are sent to (5.0 Server Reference). Key: mqtt.advertise.
    #[arg(long, value_name = "ADDR")]
    pub advertise_mqtt: Option<String>,
    /// Initial members, the same on every node: ID=RAFT_ADDR/MQTT_ADDR/ADMIN_ADDR,...
    /// Key: raft.peers.
    #[arg(long, value_name = "LIST")]
    pub peers: Option<String>,
    /// Wait to be added to a running cluster through its admin API instead of forming one.
    /// Key: raft.join.
    #[arg(long)]
    pub join: bool,
    /// Admin HTTP API listener. Key: admin.listen.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Bearer token of the admin API; prefer RAFTMQ_ADMIN_TOKEN (arguments show in `ps`).
    /// Key: admin.token.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Mosquitto password file. Key: auth.password_file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<String>,
    /// Mosquitto ACL file. Key: auth.acl_file.
    #[arg(long, value_name = "FILE")]
    pub acl_file: Option<String>,
}

impl ServeArgs {
    /// Defaults < file < environment < flags, then validated.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        apply_env(&mut config, std::env::vars())?;
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &self.mqtt_listen {
            config.mqtt.listen = v.clone();
        }
        if let Some(v) = &self.tls_listen {
            config.tls.listen = v.clone();
        }
        if let Some(v) = &self.ws_listen {
            config.mqtt.ws_listen = v.clone();
        }
        if let Some(v) = &self.wss_listen {
            config.mqtt.wss_listen = v.clone();
        }
        if let Some(v) = self.log_format {
            config.log_format = v;
        }
        if let Some(v) = self.node_id {
            config.node_id = v;
        }
        if let Some(v) = &self.raft_listen {
            config.raft.raft_listen = v.clone();
        }
        if let Some(v) = &self.advertise_mqtt {
            config.mqtt.advertise = v.clone();
        }
        if let Some(v) = &self.peers {
            config.raft.peers = v.clone();
        }
        if self.join {
            config.raft.join = true;
        }
        if let Some(v) = &self.admin_listen {
            config.admin.listen = v.clone();
        }
        if let Some(v) = &self.admin_token {
            config.admin.token = v.clone();
        }
        if let Some(v) = &self.password_file {
            config.auth.password_file = v.clone();
        }
        if let Some(v) = &self.acl_file {
            config.auth.acl_file = v.clone();
        }
        config.validate()?;
        Ok(config)
    }
}
