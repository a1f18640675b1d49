//! Decides when this node is active. On winning an election, the new leader first commits
//! `ResetConnections` (sessions that were online on an earlier leader are disconnected
//! without DISCONNECT, so their wills are scheduled) and only then accepts MQTT. On losing
//! leadership it stops at once.

use openraft::ServerState;
use tokio::sync::watch;
use tracing::{info, warn};

use super::Cluster;
use raftmq_raft::{Op, Reply};

pub(super) async fn run(cluster: Cluster, active: watch::Sender<bool>) {
    let mut metrics = cluster.raft.metrics();
    let mut served_term: Option<u64> = None;
    loop {
        let (is_leader, term) = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Leader, m.current_term)
        };
        if !is_leader {
            if *active.borrow() {
                warn!(term, "lost leadership: no longer serving MQTT");
            }
            served_term = None;
            active.send_replace(false);
        } else if served_term != Some(term) {
            match cluster.propose(Op::ResetConnections).await {
                Ok(Reply::ConnectionsReset { count }) => {
                    info!(term, reset = count, "leader: serving MQTT");
                    served_term = Some(term);
                    active.send_replace(true);
                }
                Ok(other) => warn!(?other, "unexpected reply to ResetConnections"),
                Err(e) => warn!(error = %e, "could not reset connections; retrying"),
            }
            // Re-check at once: the term may have moved while proposing.
            continue;
        }
        if metrics.changed().await.is_err() {
            active.send_replace(false);
            return;
        }
    }
}
