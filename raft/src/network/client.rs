//! The client side: openraft's network factory (`Network`) and one `PeerClient` per target.
//!
//! openraft keeps at most one RPC in flight per target, so each `PeerClient` owns at most one
//! connection, made on first use and after any failure. The connection is taken out of the
//! client for the length of an RPC and put back only when the RPC completed: when openraft
//! drops an RPC future at its own deadline, the half-used connection goes with it and can
//! never be read out of step by the next RPC.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::sync::Arc;
use tokio::time::{timeout, timeout_at, Instant};

use super::auth::{BoxIo, ClusterAuth};
use super::wire::{self, Outbound, Reply};
use super::{NetworkConfig, TransportError};
use crate::ids::NodeId;
use crate::types::{Member, TypeConfig};

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, Member, E>>;

/// openraft's network factory for raftmq: hands out a `PeerClient` per target.
#[derive(Clone)]
pub struct Network {
    auth: Arc<ClusterAuth>,
    connect_timeout: Duration,
    unreachable_backoff: Duration,
}

impl Network {
    /// Builds the cluster credentials from `config` (reading TLS files, if configured).
    /// Give `auth()` to `serve` so both directions use the same credentials.
    pub fn new(config: &NetworkConfig) -> Result<Network, TransportError> {
        Ok(Network::with_auth(
            Arc::new(ClusterAuth::new(config)?),
            config,
        ))
    }

    /// A factory sharing credentials that were already built.
    pub fn with_auth(auth: Arc<ClusterAuth>, config: &NetworkConfig) -> Network {
        Network {
            auth,
            connect_timeout: config.connect_timeout,
            unreachable_backoff: config.unreachable_backoff,
        }
    }

    pub fn auth(&self) -> Arc<ClusterAuth> {
        Arc::clone(&self.auth)
    }

    /// A client for `target` outside openraft (admin tools, tests).
    pub fn client(&self, target: NodeId, node: &Member) -> PeerClient {
        PeerClient {
            target,
            node: node.clone(),
            auth: Arc::clone(&self.auth),
            connect_timeout: self.connect_timeout,
            unreachable_backoff: self.unreachable_backoff,
            conn: None,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    // No connection here: openraft cannot act on an error from this call, so the first RPC
    // connects (and reports the target unreachable if it cannot).
    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        self.client(target, node)
    }
}

/// The RPC client for one target node.
pub struct PeerClient {
    target: NodeId,
    node: Member,
    auth: Arc<ClusterAuth>,
    connect_timeout: Duration,
    unreachable_backoff: Duration,
    conn: Option<BoxIo>,
}

/// A failed call, sorted the way openraft wants it.
enum CallError {
    /// No verified connection could be made: openraft backs off before retrying.
    Unreachable(TransportError),
    /// The connection failed mid-RPC, or the reply made no sense: openraft retries.
    Network(TransportError),
}

impl CallError {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, Member, E> {
        match self {
            CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

impl PeerClient {
    /// Sends one request and waits for its reply, within `ttl` in all (connect included).
    async fn call(&mut self, req: Outbound, ttl: Duration) -> Result<Reply, CallError> {
        let deadline = Instant::now() + ttl;
        let max = self.auth.max_frame_bytes;
        let (head, tail) = wire::encode_request(req).map_err(CallError::Network)?;
        wire::frame_len(&head, &tail, max).map_err(CallError::Network)?;

        let (mut conn, reused) = match self.conn.take() {
            Some(conn) => (conn, true),
            None => (self.connect(deadline).await?, false),
        };
        let mut outcome = timeout_at(deadline, exchange(&mut conn, &head, &tail, max)).await;
        // A kept connection the peer has since closed (it restarted, or its idle timer ran
        // out) fails before any reply arrives. The requests are idempotent, so one retry on a
        // fresh connection spares openraft a lost vote or heartbeat round.
        if reused && matches!(&outcome, Ok(Err(TransportError::Io(_)))) {
            tracing::debug!(target = %self.target, "kept raft connection was dead, reconnecting");
            conn = self.connect(deadline).await?;
            outcome = timeout_at(deadline, exchange(&mut conn, &head, &tail, max)).await;
        }
        match outcome {
            Ok(Ok(reply)) => {
                self.conn = Some(conn);
                Ok(reply)
            }
            Ok(Err(e)) => Err(CallError::Network(e)),
            Err(_) => Err(CallError::Network(TransportError::Timeout("raft rpc"))),
        }
    }

    async fn connect(&self, deadline: Instant) -> Result<BoxIo, CallError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = self.auth.connect(&self.node.raft_addr, self.target);
        match timeout(self.connect_timeout.min(left), attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => {
                tracing::debug!(target = %self.target, addr = %self.node.raft_addr, error = %e,
                    "raft peer unreachable");
                Err(CallError::Unreachable(e))
            }
            Err(_) => Err(CallError::Unreachable(TransportError::Timeout(
                "connect and handshake",
            ))),
        }
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, Member, E> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            e,
        ))
    }
}

async fn exchange(
    conn: &mut BoxIo,
    head: &[u8],
    tail: &[u8],
    max: u32,
) -> Result<Reply, TransportError> {
    wire::write_frame(conn, head, tail, max).await?;
    match wire::read_frame(conn, max).await? {
        Some(frame) => wire::decode_reply(&frame),
        None => Err(TransportError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed before replying",
        ))),
    }
}

fn mismatched(expected: &'static str) -> CallError {
    CallError::Network(TransportError::Decode {
        what: expected,
        detail: "the peer answered a different request".into(),
    })
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let entries = rpc.entries.len() as u64;
        // soft_ttl: give up (and drop the connection) a little before openraft's hard
        // deadline would drop this future, so the failure is reported rather than lost.
        match self
            .call(Outbound::AppendEntries(rpc), option.soft_ttl())
            .await
        {
            Ok(Reply::AppendEntries(Ok(resp))) => Ok(resp),
            Ok(Reply::AppendEntries(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(mismatched("append entries reply").into_rpc()),
            // Too big for one frame: openraft retries at once with fewer entries.
            Err(CallError::Network(e @ TransportError::FrameTooLarge { .. })) if entries > 1 => {
                tracing::debug!(target = %self.target, entries, error = %e,
                    "append batch over the frame limit, asking openraft to split it");
                Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(entries / 2).with_source_error(&e),
                ))
            }
            Err(e) => Err(e.into_rpc()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self
            .call(Outbound::InstallSnapshot(rpc), option.soft_ttl())
            .await
        {
            Ok(Reply::InstallSnapshot(Ok(resp))) => Ok(resp),
            Ok(Reply::InstallSnapshot(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(mismatched("install snapshot reply").into_rpc()),
            Err(e) => Err(e.into_rpc()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Outbound::Vote(rpc), option.soft_ttl()).await {
            Ok(Reply::Vote(Ok(resp))) => Ok(resp),
            Ok(Reply::Vote(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(mismatched("vote reply").into_rpc()),
            Err(e) => Err(e.into_rpc()),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.unreachable_backoff))
    }
}
