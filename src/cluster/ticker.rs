//! Housekeeping: the active node proposes `Tick` periodically so delayed wills fire and
//! sessions and messages expire, at the leader's time stamped into the command.

use std::time::Duration;

use raftmq_raft::Op;
use tracing::debug;

use super::Cluster;

pub(super) async fn run(cluster: Cluster, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if !cluster.is_active() {
            continue;
        }
        if let Err(e) = cluster.propose(Op::Tick).await {
            debug!(error = %e, "tick not committed");
        }
    }
}
