//! Membership changes: `POST /cluster/learners`, `POST /cluster/voters`,
//! `DELETE /cluster/nodes/{id}` (request forms in `admin/mod.rs`). Leader only.
//!
//! Each request is first checked against this leader's current view (`ClusterStatus`), so
//! a change that is bound to fail, or to stall the cluster, is refused with its reason
//! instead of hanging until the timeout. The Raft call then runs in its own task: openraft
//! changes voters in two steps (joint, then final configuration) driven by the caller, and
//! a caller that stopped waiting half-way would leave the cluster in the joint one.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use openraft::error::{ClientWriteError, RaftError};
use openraft::metrics::WaitError;
use openraft::raft::ClientWriteResponse;
use openraft::{ChangeMembers, Membership};
use raftmq_raft::{Member, NodeId, TypeConfig};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::admin::auth::Authorized;
use crate::admin::extract::{node_id, Body, Params};
use crate::admin::{ApiError, AppState, LeaderHint, Shared};
use crate::cluster::{ClusterStatus, Role};
use crate::config::is_host_port;

/// How long a write waits for Raft unless `?timeout_secs=` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_TIMEOUT_SECS: u64 = 600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddLearner {
    pub id: NodeId,
    pub raft_addr: String,
    pub mqtt_addr: String,
    pub admin_addr: String,
}

/// Exactly one key: `{"add": [..]}`, `{"remove": [..]}` or `{"set": [..]}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum VotersChange {
    /// Promote these learners.
    Add(BTreeSet<NodeId>),
    /// Demote these voters to learners.
    Remove(BTreeSet<NodeId>),
    /// The whole voter set; voters left out become learners.
    Set(BTreeSet<NodeId>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveParams {
    timeout_secs: Option<u64>,
    #[serde(default)]
    force: bool,
}

/// The answer to a successful write.
#[derive(Debug, Serialize)]
pub struct Changed {
    pub message: String,
    pub membership: MembershipView,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct MembershipView {
    /// Log index of this membership (`None`: the view before any change was needed).
    pub log_index: Option<u64>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Half-way through a change (joint consensus).
    pub joint: bool,
    pub members: Vec<MemberView>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub id: NodeId,
    pub voter: bool,
    pub raft_addr: String,
    pub mqtt_addr: String,
    pub admin_addr: String,
}

pub async fn add_learner(
    _: Authorized,
    State(s): State<AppState>,
    Params(p): Params<WriteParams>,
    Body(req): Body<AddLearner>,
) -> Result<Json<Changed>, ApiError> {
    let limit = timeout(p.timeout_secs)?;
    let member = validate_learner(&req)?;
    let status = leader_view(&s)?;
    check_new_learner(req.id, &member, &status)?;
    let deadline = Instant::now() + limit;
    let (raft, id) = (s.cluster.raft().clone(), req.id);
    // Not openraft's blocking add: it calls a learner "up to date" within
    // `replication_lag_threshold` (5000) entries, so on a young log one that never answered
    // passes at once. Caught up here means it holds the entry that added it.
    let resp = run_within(
        limit,
        async move { raft.add_learner(id, member, false).await },
        || {
            format!(
                "adding node {id} did not commit within {} s; it may still complete (see GET \
             /cluster/status)",
                limit.as_secs()
            )
        },
    )
    .await?;
    let added_at = resp.log_id.index;
    let holds_its_addition = |m: &openraft::RaftMetrics<NodeId, Member>| match &m.replication {
        Some(r) => r
            .get(&id)
            .copied()
            .flatten()
            .is_some_and(|l| l.index >= added_at),
        // No longer the leader: stop waiting, say so below.
        None => true,
    };
    let wait = s
        .cluster
        .raft()
        .wait(Some(deadline.saturating_duration_since(Instant::now())));
    match wait
        .metrics(holds_its_addition, "the new learner catches up")
        .await
    {
        Ok(m) if m.replication.is_some() => Ok(Json(changed(
            format!("node {id} is a learner and caught up with the log"),
            &resp,
        ))),
        Ok(_) => Err(ApiError::Unavailable(format!(
            "node {id} was added as a learner, then this node lost the leadership before it \
             caught up; see GET /cluster/status on the new leader"
        ))),
        Err(WaitError::Timeout(..)) => Err(ApiError::Timeout(format!(
            "node {id} was added as a learner but has not caught up within {} s; it goes on \
             catching up (see GET /cluster/status): check that the leader reaches its \
             raft_addr and that the node runs",
            limit.as_secs()
        ))),
        Err(WaitError::ShuttingDown) => Err(ApiError::Unavailable("raft is shutting down".into())),
    }
}

pub async fn change_voters(
    _: Authorized,
    State(s): State<AppState>,
    Params(p): Params<WriteParams>,
    Body(change): Body<VotersChange>,
) -> Result<Json<Changed>, ApiError> {
    let limit = timeout(p.timeout_secs)?;
    let status = leader_view(&s)?;
    let lag_threshold = s.cluster.raft().config().replication_lag_threshold;
    apply(
        &s,
        limit,
        plan_voters(change, &status, lag_threshold)?,
        &status,
    )
    .await
}

pub async fn remove_node(
    _: Authorized,
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Params(p): Params<RemoveParams>,
) -> Result<Json<Changed>, ApiError> {
    let id = node_id(&raw)?;
    let limit = timeout(p.timeout_secs)?;
    let status = leader_view(&s)?;
    apply(&s, limit, plan_remove(id, p.force, &status)?, &status).await
}

/// A change to make, or the reason none is needed.
#[derive(Debug)]
enum Planned {
    Change {
        change: ChangeMembers<NodeId, Member>,
        /// Whether voters that leave stay as learners.
        retain: bool,
        message: String,
    },
    Nothing(String),
}

async fn apply(
    s: &Shared,
    limit: Duration,
    planned: Planned,
    status: &ClusterStatus,
) -> Result<Json<Changed>, ApiError> {
    let (change, retain, message) = match planned {
        Planned::Nothing(message) => {
            return Ok(Json(Changed {
                message,
                membership: view_of_status(status),
            }))
        }
        Planned::Change {
            change,
            retain,
            message,
        } => (change, retain, message),
    };
    let raft = s.cluster.raft().clone();
    let resp = run_within(
        limit,
        async move { raft.change_membership(change, retain).await },
        || {
            format!(
                "the membership change did not commit within {} s; it may still complete (see \
             GET /cluster/status; a change left half-way, `joint`, is completed by repeating it)",
                limit.as_secs()
            )
        },
    )
    .await?;
    Ok(Json(changed(message, &resp)))
}

type WriteResult =
    Result<ClientWriteResponse<TypeConfig>, RaftError<NodeId, ClientWriteError<NodeId, Member>>>;

/// Run a Raft membership call in its own task (so it finishes even if we stop waiting) and
/// wait for it at most `limit`.
async fn run_within(
    limit: Duration,
    op: impl Future<Output = WriteResult> + Send + 'static,
    on_timeout: impl FnOnce() -> String,
) -> Result<ClientWriteResponse<TypeConfig>, ApiError> {
    match tokio::time::timeout(limit, tokio::spawn(op)).await {
        Ok(Ok(result)) => result.map_err(ApiError::from),
        Ok(Err(join)) => Err(ApiError::Unavailable(format!(
            "the membership change stopped: {join}"
        ))),
        Err(_) => Err(ApiError::Timeout(on_timeout())),
    }
}

fn timeout(secs: Option<u64>) -> Result<Duration, ApiError> {
    match secs {
        None => Ok(DEFAULT_TIMEOUT),
        Some(s) if (1..=MAX_TIMEOUT_SECS).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => Err(ApiError::BadRequest(format!(
            "`timeout_secs`: {s} is not between 1 and {MAX_TIMEOUT_SECS}"
        ))),
    }
}

/// This node's view if it may change the membership: the leader, holding its lease.
fn leader_view(s: &Shared) -> Result<ClusterStatus, ApiError> {
    let status = s.raft_status();
    if status.role != Role::Leader {
        return Err(ApiError::NotLeader(LeaderHint::from_status(&status)));
    }
    if !status.lease.held {
        return Err(ApiError::Unavailable(format!(
            "this node leads but no quorum acknowledged it within its lease ({} ms): a \
             membership change could not commit",
            status.lease.lease_ms
        )));
    }
    Ok(status)
}

fn validate_learner(req: &AddLearner) -> Result<Member, ApiError> {
    if req.id.0 == 0 {
        return Err(ApiError::BadRequest("`id`: must be a number from 1".into()));
    }
    let addrs = [
        ("raft_addr", &req.raft_addr),
        ("mqtt_addr", &req.mqtt_addr),
        ("admin_addr", &req.admin_addr),
    ];
    for (field, addr) in addrs {
        if !is_host_port(addr) {
            return Err(ApiError::BadRequest(format!(
                "`{field}`: {addr:?} is not HOST:PORT"
            )));
        }
    }
    Ok(Member {
        raft_addr: req.raft_addr.clone(),
        mqtt_addr: req.mqtt_addr.clone(),
        admin_addr: req.admin_addr.clone(),
    })
}

/// Adding is idempotent for a learner with the same addresses; openraft never replaces a
/// member's addresses on add, so other addresses are refused rather than silently ignored.
fn check_new_learner(id: NodeId, member: &Member, status: &ClusterStatus) -> Result<(), ApiError> {
    match status.member(id) {
        None => Ok(()),
        Some(m) if m.voter => Err(ApiError::Conflict(format!("node {id} is already a voter"))),
        Some(m)
            if m.raft_addr == member.raft_addr
                && m.mqtt_addr == member.mqtt_addr
                && m.admin_addr == member.admin_addr =>
        {
            Ok(())
        }
        Some(m) => Err(ApiError::Conflict(format!(
            "node {id} is already a learner with other addresses (raft {}, mqtt {}, admin {}): \
             remove it first",
            m.raft_addr, m.mqtt_addr, m.admin_addr
        ))),
    }
}

fn plan_voters(
    change: VotersChange,
    status: &ClusterStatus,
    lag_threshold: u64,
) -> Result<Planned, ApiError> {
    let current: BTreeSet<NodeId> = status.voters().collect();
    let ids = match &change {
        VotersChange::Add(ids) | VotersChange::Remove(ids) | VotersChange::Set(ids) => ids,
    };
    if ids.is_empty() {
        return Err(ApiError::BadRequest("the list of node ids is empty".into()));
    }
    for id in ids {
        if id.0 == 0 {
            return Err(ApiError::BadRequest("node ids are numbers from 1".into()));
        }
        if status.member(*id).is_none() {
            return Err(ApiError::NotFound(format!(
                "node {id} is not a member: add it as a learner first (POST /cluster/learners)"
            )));
        }
    }
    let target: BTreeSet<NodeId> = match &change {
        VotersChange::Add(ids) => current.union(ids).copied().collect(),
        VotersChange::Remove(ids) => current.difference(ids).copied().collect(),
        VotersChange::Set(ids) => ids.clone(),
    };
    if target.is_empty() {
        return Err(ApiError::BadRequest(
            "the change would leave the cluster without voters".into(),
        ));
    }
    if target == current {
        return Ok(Planned::Nothing(format!(
            "nothing to change: the voters are {}",
            list(&target)
        )));
    }
    for id in target.difference(&current) {
        let m = status.member(*id);
        let lag = m.and_then(|m| m.lag);
        let caught_up = m.and_then(|m| m.replicating) == Some(true)
            && lag.is_some_and(|lag| lag <= lag_threshold);
        if !caught_up {
            return Err(ApiError::Conflict(format!(
                "node {id} has not caught up with the log (behind by {} entries): as a voter \
                 now it could stall every write until it does; promote it once GET \
                 /cluster/status shows it replicating",
                lag.map_or_else(|| "an unknown number of".into(), |l| l.to_string())
            )));
        }
    }
    check_majority(&target, status)?;
    let message = format!("the voters are now {}", list(&target));
    let change = match change {
        VotersChange::Add(ids) => ChangeMembers::AddVoterIds(ids),
        VotersChange::Remove(ids) => ChangeMembers::RemoveVoters(ids),
        VotersChange::Set(ids) => ChangeMembers::ReplaceAllVoters(ids),
    };
    Ok(Planned::Change {
        change,
        retain: true,
        message,
    })
}

fn plan_remove(id: NodeId, force: bool, status: &ClusterStatus) -> Result<Planned, ApiError> {
    let Some(m) = status.member(id) else {
        return Err(ApiError::NotFound(format!("node {id} is not a member")));
    };
    if !force && m.replicating == Some(false) {
        return Err(ApiError::Conflict(format!(
            "node {id} does not replicate (behind by {} entries, no progress for {} ms): it \
             looks down; to evict a dead node, repeat with force=true (raftmq ctl remove {id} \
             --force)",
            m.lag.unwrap_or(0),
            m.stalled_ms.unwrap_or(0)
        )));
    }
    let (change, retain) = if m.voter {
        let target: BTreeSet<NodeId> = status.voters().filter(|v| *v != id).collect();
        if target.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "node {id} is the last voter: removing it would leave the cluster without voters"
            )));
        }
        if !force {
            check_majority(&target, status)?;
        }
        (ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
    } else {
        (ChangeMembers::RemoveNodes(BTreeSet::from([id])), true)
    };
    let message = if id == status.node_id {
        format!(
            "node {id} (this node, the leader) was removed: it steps down and the remaining \
             voters elect a new leader; stop its process"
        )
    } else {
        format!("node {id} was removed from the cluster; stop its process")
    };
    Ok(Planned::Change {
        change,
        retain,
        message,
    })
}

/// Refuse a voter set without a replicating majority: the joint configuration needs a
/// majority of the new voters too, so the change (and every write after it) would wait.
fn check_majority(target: &BTreeSet<NodeId>, status: &ClusterStatus) -> Result<(), ApiError> {
    let replicating = target
        .iter()
        .filter(|id| status.member(**id).and_then(|m| m.replicating) == Some(true))
        .count();
    if replicating * 2 > target.len() {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "the voters would be {}, of which {replicating} replicate: without a majority the \
         change could not commit and every write would stall",
        list(target)
    )))
}

fn list<T: Display>(ids: impl IntoIterator<Item = T>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", ids.join(", "))
}

fn changed(message: String, resp: &ClientWriteResponse<TypeConfig>) -> Changed {
    let membership = match &resp.membership {
        Some(m) => view(Some(resp.log_id.index), m),
        None => MembershipView {
            log_index: Some(resp.log_id.index),
            voters: Vec::new(),
            learners: Vec::new(),
            joint: false,
            members: Vec::new(),
        },
    };
    Changed {
        message,
        membership,
    }
}

fn view(log_index: Option<u64>, m: &Membership<NodeId, Member>) -> MembershipView {
    let voters: Vec<NodeId> = m.voter_ids().collect();
    MembershipView {
        log_index,
        learners: m.learner_ids().collect(),
        joint: m.get_joint_config().len() > 1,
        members: m
            .nodes()
            .map(|(id, n)| MemberView {
                id: *id,
                voter: voters.contains(id),
                raft_addr: n.raft_addr.clone(),
                mqtt_addr: n.mqtt_addr.clone(),
                admin_addr: n.admin_addr.clone(),
            })
            .collect(),
        voters,
    }
}

fn view_of_status(s: &ClusterStatus) -> MembershipView {
    MembershipView {
        log_index: s.membership_index,
        voters: s.voters().collect(),
        learners: s
            .members
            .iter()
            .filter(|m| !m.voter)
            .map(|m| m.id)
            .collect(),
        joint: s.joint,
        members: s
            .members
            .iter()
            .map(|m| MemberView {
                id: m.id,
                voter: m.voter,
                raft_addr: m.raft_addr.clone(),
                mqtt_addr: m.mqtt_addr.clone(),
                admin_addr: m.admin_addr.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
