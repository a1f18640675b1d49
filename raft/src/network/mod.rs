//! The Raft RPC transport: openraft's `AppendEntries`, `Vote` and `InstallSnapshot` between
//! cluster members, over TCP (optionally mutual TLS), on a listener of its own that only
//! holders of the cluster secret can use. The only module of this crate that does I/O.
//!
//! # Wire protocol
//! 1. (TLS, when configured: the server requires a client certificate signed by the cluster
//!    CA and the client checks the server's against the same CA.)
//! 2. Handshake, before anything else is read or answered (see `auth`): the server sends
//!    `"RMQ1"` and a random 32-byte nonce; the client answers its node id (u64 BE), its own
//!    nonce and `HMAC-SHA256(secret, server nonce || "client" || node id)`; the server checks
//!    it in constant time, then answers its node id and `HMAC(secret, client nonce || "server"
//!    || its node id)`. Either side closes on a bad proof. The client also checks that the node
//!    that answered is the one it meant to reach (a restarted node on a reused address is not).
//! 3. Frames, one request then one response, in turn: a u32 big-endian length (checked against
//!    the maximum frame size before anything is allocated) and that many bytes of bincode 2
//!    (`config::standard()`) holding a `wire::Request` or `wire::Reply`. A snapshot chunk's bytes
//!    follow its encoded header in the same frame, raw, so megabytes are not serialized one
//!    byte at a time.
//!
//! # Use
//! ```ignore
//! let config = NetworkConfig { tls: Some(files), ..NetworkConfig::new(node_id, secret) };
//! let network = Network::new(&config)?; // reads the TLS files
//! let auth = network.auth(); // the same credentials for the server
//! let raft = openraft::Raft::new(node_id, raft_config, network, log_store, state_machine).await?;
//! tokio::spawn(serve(TcpListener::bind(raft_listen).await?, raft.clone(), auth, shutdown));
//! ```
//! openraft sends snapshot chunks of `Config::snapshot_max_chunk_size` (3 MiB by default) and
//! gives each `install_snapshot_timeout` (200 ms by default: raise it); chunks and append
//! batches must fit in `max_frame_bytes`.
//!
//! # Layout
//! - `mod.rs`: configuration and the error enum.
//! - `auth`: `ClusterAuth`, the HMAC handshake of both sides, TLS wrapping.
//! - `tls`: PEM files to rustls server and client configurations.
//! - `wire`: frames, the request/reply enums and their encoding.
//! - `client`: `Network` (openraft's network factory) and `PeerClient`, one per target.
//! - `server`: `serve`, the accept loop and one task per connection.

mod auth;
mod client;
mod server;
mod tls;
mod wire;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::ids::NodeId;

pub use auth::ClusterAuth;
pub use client::{Network, PeerClient};
pub use server::serve;

/// 64 MiB: far above a 3 MiB snapshot chunk or a batch of 300 entries of ordinary size,
/// small enough that a length prefix cannot make a node allocate without bound.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 64 << 20;

/// How this node reaches its peers and lets them in.
#[derive(Clone)]
pub struct NetworkConfig {
    /// This node's id: announced in the handshake, and checked by the peer's client.
    pub node_id: NodeId,
    /// The cluster secret, the same string on every member. Never logged.
    pub secret: String,
    /// Mutual TLS under the HMAC handshake, when set.
    pub tls: Option<TlsFiles>,
    /// Bound on making a connection: TCP connect, TLS and the handshake (openraft's RPC
    /// deadline bounds it too).
    pub connect_timeout: Duration,
    /// How long the server waits for a new connection's TLS and HMAC handshake.
    pub handshake_timeout: Duration,
    /// The server closes a connection that sent no request for this long (a leader sends a
    /// heartbeat every few tens of ms; a silent connection belongs to a former leader or a
    /// dead host). The client reconnects transparently.
    pub idle_timeout: Duration,
    /// Largest frame sent or accepted, in bytes.
    pub max_frame_bytes: u32,
    /// How long openraft's replication waits before retrying a peer that was unreachable.
    pub unreachable_backoff: Duration,
}

impl NetworkConfig {
    /// Defaults sized for a LAN cluster with sub-second failover.
    pub fn new(node_id: NodeId, secret: impl Into<String>) -> NetworkConfig {
        NetworkConfig {
            node_id,
            secret: secret.into(),
            tls: None,
            connect_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(60),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            // Below openraft's 500 ms default: a restarted follower is back in replication
            // sooner, and an unreachable peer costs one failed connect per period.
            unreachable_backoff: Duration::from_millis(250),
        }
    }
}

// By hand: a derived Debug would print the secret into logs.
impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("node_id", &self.node_id)
            .field("secret", &"<redacted>")
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("unreachable_backoff", &self.unreachable_backoff)
            .finish()
    }
}

/// PEM files for mutual TLS between members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain, used both as server and as client.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The cluster CA: peers' certificates must chain to it.
    pub ca: PathBuf,
    /// The name checked in every peer's certificate. `None`: the host part of the peer's
    /// `raft_addr` (a DNS name or an IP address, which the certificate must carry as a SAN).
    pub server_name: Option<String>,
}

/// Everything that can go wrong on a Raft connection. The client sorts these into openraft's
/// `Unreachable` (could not get a verified connection) and `Network` (a connection failed
/// mid-RPC); the server closes the one connection.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("tls: {0}")]
    Tls(String),
    /// The peer does not speak this protocol, or closed during the handshake (what a server
    /// does when our proof fails).
    #[error("handshake: {0}")]
    Handshake(&'static str),
    /// A client whose proof did not verify: it does not know the cluster secret.
    #[error("peer claiming node {claimed} did not prove the cluster secret")]
    ClientRefused { claimed: NodeId },
    #[error("server did not prove the cluster secret")]
    ServerRefused,
    #[error("expected node {expected} at this address, found node {found}")]
    WrongNode { expected: NodeId, found: NodeId },
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: u64, max: u32 },
    #[error("cannot decode {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("no system randomness")]
    Random,
}
