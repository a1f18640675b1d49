//! Decides when this node is active, i.e. serves MQTT (DESIGN: "One active node").
//!
//! Active means all of:
//! - Raft says this node is the leader;
//! - the leader committed `ResetConnections` in its current term (sessions that were online
//!   on an earlier leader are disconnected without DISCONNECT, so their wills are scheduled)
//!   before accepting any client;
//! - it holds its lease: a quorum acknowledged it within `lease` (shorter than the election
//!   timeout), so no other node can have been elected meanwhile. openraft 0.9 keeps a
//!   cut-off leader in the Leader state, so the lease is what fences it. A one-voter cluster
//!   is its own quorum and always holds the lease.
//!
//! openraft reports `millis_since_quorum_ack` only when it publishes metrics, so the time
//! of the last quorum ack is reconstructed from each report and the lease is re-checked
//! every `recheck` even when no report comes (a cut-off leader reports nothing new).

use std::time::Duration;

use openraft::ServerState;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Cluster;
use raftmq_raft::{Op, Reply};

pub(super) async fn run(cluster: Cluster, active: watch::Sender<bool>, lease: Duration) {
    let mut metrics = cluster.raft.metrics();
    let mut served_term: Option<u64> = None;
    let mut last_quorum_ack: Option<Instant> = None;
    let recheck = (lease / 4).max(Duration::from_millis(10));
    loop {
        let (is_leader, term, single_voter) = {
            let m = metrics.borrow_and_update();
            if let Some(ms) = m.millis_since_quorum_ack {
                let at = Instant::now()
                    .checked_sub(Duration::from_millis(ms))
                    .unwrap_or_else(Instant::now);
                last_quorum_ack = Some(last_quorum_ack.map_or(at, |prev| prev.max(at)));
            }
            let single = m.membership_config.membership().voter_ids().count() == 1;
            (m.state == ServerState::Leader, m.current_term, single)
        };
        let lease_held = single_voter || last_quorum_ack.is_some_and(|at| at.elapsed() < lease);
        if !is_leader || !lease_held {
            if *active.borrow() {
                warn!(term, is_leader, lease_held, "stopped serving MQTT");
            }
            if !is_leader {
                served_term = None;
                last_quorum_ack = None;
            }
            active.send_replace(false);
        } else if served_term != Some(term) {
            match cluster.propose(Op::ResetConnections).await {
                Ok(Reply::ConnectionsReset { count }) => {
                    served_term = Some(term);
                    active.send_replace(true);
                    // Logged after the switch: tools wait for this line to connect.
                    info!(term, reset = count, "leader: serving MQTT");
                }
                Ok(other) => warn!(?other, "unexpected reply to ResetConnections"),
                Err(e) => warn!(error = %e, "could not reset connections; retrying"),
            }
            // Re-check at once: the term may have moved while proposing.
            continue;
        } else if !*active.borrow() {
            active.send_replace(true);
            info!(term, "lease regained: serving MQTT again");
        }
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    active.send_replace(false);
                    return;
                }
            }
            _ = tokio::time::sleep(recheck) => {}
        }
    }
}
