//! The cluster handle: the only way the session layer changes durable state.
//!
//! # Layout
//! - `mod.rs`: `Cluster` (propose an op, read the shared state, am I active?).
//! - `proposer`: batches ops into `Command`s and pipelines them through openraft.
//! - `leadership`: watches Raft metrics; resets connections of a previous leader before
//!   serving, and publishes whether this node is active.
//! - `ticker`: periodic `Tick` proposals (wills, expiry).
//! - `network`: the Raft RPC client factory (a single node has no peers to call).
//! - `status`: this node's view of the cluster for the admin API and `raftmq ctl status`.

mod leadership;
mod network;
mod proposer;
mod status;
mod ticker;

use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use raftmq_raft::{Member, NodeId, Op, Reply, SharedState, TypeConfig};
use thiserror::Error;

use crate::metrics::Metrics;
use tokio::sync::{mpsc, oneshot, watch};

pub use network::SingleNodeNetwork;
pub use status::{
    ClusterStatus, LeaderChange, LeaseStatus, MemberStatus, MqttStatus, Role, StatusTracker,
    STALLED_AFTER,
};

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ClusterError {
    /// This node is not the active leader; `leader` names the one that is, if known.
    #[error("not the active leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("proposal not committed within {0:?}")]
    Timeout(Duration),
    #[error("raft stopped: {0}")]
    Stopped(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// Tuning the proposer and the housekeeping need.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub node_id: NodeId,
    pub proposal_timeout: Duration,
    pub batch_max_ops: usize,
    pub max_inflight_batches: usize,
    pub tick: Duration,
    /// How recently a quorum must have acknowledged this leader for it to serve.
    pub lease: Duration,
    /// Where the proposer records commit latency.
    pub metrics: Arc<Metrics>,
}

struct Proposal {
    op: Op,
    reply: oneshot::Sender<Result<Reply, ClusterError>>,
}

/// Cheap to clone; every connection holds one.
#[derive(Clone)]
pub struct Cluster {
    raft: Raft<TypeConfig>,
    state: SharedState,
    proposals: mpsc::Sender<Proposal>,
    active: watch::Receiver<bool>,
    node_id: NodeId,
}

impl Cluster {
    /// Start the proposer, leadership watcher and ticker on the current runtime.
    pub fn start(raft: Raft<TypeConfig>, state: SharedState, opts: ClusterOptions) -> Cluster {
        let (tx, rx) = mpsc::channel(opts.batch_max_ops.max(1024));
        let (active_tx, active_rx) = watch::channel(false);
        let cluster = Cluster {
            raft: raft.clone(),
            state,
            proposals: tx,
            active: active_rx,
            node_id: opts.node_id,
        };
        tokio::spawn(proposer::run(raft, rx, opts.clone()));
        tokio::spawn(leadership::run(cluster.clone(), active_tx, opts.lease));
        tokio::spawn(ticker::run(cluster.clone(), opts.tick));
        cluster
    }

    /// Propose one op; resolves when it is committed (on a quorum, fsynced) and applied.
    pub async fn propose(&self, op: Op) -> Result<Reply, ClusterError> {
        let (reply, rx) = oneshot::channel();
        // The proposals of one connection must enter the channel in the order it made them:
        // log order is delivery order [MQTT-4.6.0-6]. A connection first polls its pending
        // proposals in that order, but a send that ran out of tokio's cooperative budget
        // would return Pending, be polled again after later ones and be overtaken. Without
        // the budget, a send either succeeds at once or queues in the channel's fair FIFO.
        tokio::task::unconstrained(self.proposals.send(Proposal { op, reply }))
            .await
            .map_err(|_| ClusterError::Stopped("proposer gone".into()))?;
        rx.await
            .map_err(|_| ClusterError::Stopped("proposal dropped".into()))?
    }

    pub fn state(&self) -> &SharedState {
        &self.state
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Whether this node serves MQTT now: leader, and connections of earlier leaders reset.
    pub fn is_active(&self) -> bool {
        *self.active.borrow()
    }

    /// Changes of `is_active`, for connections to close when the node stops serving.
    pub fn active_changes(&self) -> watch::Receiver<bool> {
        self.active.clone()
    }

    /// The current leader, if known (for redirects).
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The current leader's id and member record, when known and not this node.
    pub fn other_leader(&self) -> Option<(NodeId, Member)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader.filter(|id| *id != self.node_id)?;
        let member = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, member))
    }

    /// Wait until this node is active or `deadline` passes.
    pub async fn wait_active(&self, deadline: Duration) -> bool {
        let mut rx = self.active.clone();
        tokio::time::timeout(deadline, rx.wait_for(|a| *a))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}
