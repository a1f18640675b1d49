//! `GET /healthz` (the process answers) and `GET /readyz` (this node serves MQTT). Both are
//! open: load balancers and orchestrators call them without credentials.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::admin::{ApiError, AppState, LeaderHint};
use crate::cluster::{ClusterStatus, Role};

pub async fn healthz(State(s): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "node_id": s.cluster.node_id() }))
}

/// 200 only on the active node, so a TCP load balancer can route MQTT by this check instead
/// of a VIP (DESIGN: "Fencing and the VIP").
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    // The hot path of a frequent probe: one atomic read when serving.
    if s.cluster.is_active() {
        return Ok(Json(
            json!({ "status": "active", "node_id": s.cluster.node_id() }),
        ));
    }
    let status = s.raft_status();
    Err(ApiError::NotReady {
        reason: not_ready_reason(&status),
        leader: LeaderHint::from_status(&status),
    })
}

/// Why a node that is not active does not serve.
pub fn not_ready_reason(s: &ClusterStatus) -> String {
    let leader = match s.leader {
        Some(id) => format!("node {id} is the leader"),
        None => "no leader is known".into(),
    };
    match s.role {
        Role::Leader if !s.lease.held => match s.lease.millis_since_quorum_ack {
            Some(ms) => format!(
                "leader without a quorum lease: last quorum acknowledgement {ms} ms ago \
                 (lease {} ms)",
                s.lease.lease_ms
            ),
            None => "leader without a quorum lease: no quorum acknowledgement yet".into(),
        },
        Role::Leader if s.active => "serving".into(),
        Role::Leader => {
            "leader, not serving yet: resetting the previous leader's connections".into()
        }
        Role::Follower => format!("follower: {leader}"),
        Role::Learner => format!("learner (not a voter): {leader}"),
        Role::Candidate => "candidate: an election is in progress".into(),
        Role::Shutdown => "shutting down".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{LeaseStatus, MqttStatus};
    use raftmq_raft::NodeId;

    fn status(role: Role, leader: Option<u64>, held: bool, ack: Option<u64>) -> ClusterStatus {
        ClusterStatus {
            node_id: NodeId(1),
            role,
            term: 3,
            leader: leader.map(NodeId),
            active: false,
            lease: LeaseStatus {
                held,
                lease_ms: 400,
                millis_since_quorum_ack: ack,
            },
            last_log_index: None,
            applied_index: None,
            snapshot_index: None,
            membership_index: None,
            joint: false,
            members: Vec::new(),
            last_leader_change: None,
            leader_changes: 0,
            recent_leader_changes: Vec::new(),
            vip_holder: None,
            mqtt: MqttStatus::default(),
        }
    }

    #[test]
    fn every_reason_says_what_the_node_is() {
        let cases = [
            (
                status(Role::Follower, Some(2), false, None),
                "follower: node 2 is the leader",
            ),
            (
                status(Role::Follower, None, false, None),
                "follower: no leader is known",
            ),
            (status(Role::Learner, Some(2), false, None), "learner"),
            (status(Role::Candidate, None, false, None), "election"),
            (
                status(Role::Leader, Some(1), false, Some(900)),
                "900 ms ago (lease 400 ms)",
            ),
            (
                status(Role::Leader, Some(1), false, None),
                "no quorum acknowledgement yet",
            ),
            (
                status(Role::Leader, Some(1), true, Some(5)),
                "not serving yet",
            ),
        ];
        for (s, want) in cases {
            let reason = not_ready_reason(&s);
            assert!(reason.contains(want), "{reason:?} should contain {want:?}");
        }
    }
}
