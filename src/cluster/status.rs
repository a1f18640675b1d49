//! This node's view of the cluster, for `GET /cluster/status` and `raftmq ctl status`.
//!
//! Most of it is openraft's metrics at the moment of the request. Three things the metrics
//! forget are kept by a small task (`StatusTracker`) that watches every metrics report:
//! - when the leader last changed (metrics only say who leads now);
//! - when a quorum last acknowledged this leader: `millis_since_quorum_ack` is computed when
//!   a report is published, and a cut-off leader publishes nothing new, so the report would
//!   go on showing a fresh ack while the lease runs out (the same reason `leadership`
//!   reconstructs it);
//! - since when each follower has been behind the leader's log without progress, which tells
//!   a dead follower from a busy one. On an idle log a dead follower is still level with
//!   the leader and looks healthy; the housekeeping tick appends an entry every
//!   `raft.tick_ms`, so that lasts at most a tick plus `STALLED_AFTER`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use openraft::{RaftMetrics, ServerState};
use parking_lot::Mutex;
use raftmq_raft::{Member, NodeId};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Cluster;

/// A follower behind the leader's log that made no progress for this long is reported as
/// not replicating (unreachable, stopped or stuck).
pub const STALLED_AFTER: Duration = Duration::from_secs(3);

/// Leader changes remembered for the status page.
pub const RECENT_LEADER_CHANGES: usize = 10;

type Metrics = RaftMetrics<NodeId, Member>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub role: Role,
    pub term: u64,
    /// The leader this node knows of, if any.
    pub leader: Option<NodeId>,
    /// Whether this node serves MQTT now (leader, lease held, previous leader's connections
    /// reset).
    pub active: bool,
    pub lease: LeaseStatus,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Last index included in this node's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Log index of the membership in force (`members`).
    pub membership_index: Option<u64>,
    /// A membership change is half done (joint consensus): another one is refused meanwhile.
    pub joint: bool,
    pub members: Vec<MemberStatus>,
    pub last_leader_change: Option<LeaderChange>,
    /// Leader changes this node has seen since it started, the first leader it learned of
    /// included.
    #[serde(default)]
    pub leader_changes: u64,
    /// The latest leader changes (at most `RECENT_LEADER_CHANGES`), oldest first.
    #[serde(default)]
    pub recent_leader_changes: Vec<LeaderChange>,
    /// The node holding the virtual IP, as far as this node knows; `None` without a VIP.
    pub vip_holder: Option<NodeId>,
    pub mqtt: MqttStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

impl From<ServerState> for Role {
    fn from(s: ServerState) -> Role {
        match s {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseStatus {
    /// This node is the leader and a quorum acknowledged it within `lease_ms` (a one-voter
    /// cluster is its own quorum).
    pub held: bool,
    pub lease_ms: u64,
    /// On the leader: ms since a quorum last acknowledged it; `None` elsewhere or before the
    /// first acknowledgement.
    pub millis_since_quorum_ack: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    /// Voter or learner.
    pub voter: bool,
    pub raft_addr: String,
    pub mqtt_addr: String,
    pub admin_addr: String,
    /// Leader only: the last log index this member is known to hold.
    pub matched_index: Option<u64>,
    /// Leader only: entries this member is behind the leader's log.
    pub lag: Option<u64>,
    /// Leader only: ms this member has been behind without progress (`None` when level).
    pub stalled_ms: Option<u64>,
    /// Leader only: has acknowledged entries and is level with the log, or behind but
    /// progressing within `STALLED_AFTER`.
    pub replicating: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderChange {
    /// Wall-clock time this node saw the change, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// How long ago, by this node's monotonic clock (immune to the caller's clock skew).
    pub millis_ago: u64,
    pub term: u64,
    pub leader: NodeId,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MqttStatus {
    /// Sessions in the replicated state, online or not.
    pub sessions: u64,
    /// Sessions with a live connection (on the active node).
    pub sessions_online: u64,
    /// MQTT connections open on this node.
    pub connections: u64,
}

/// What the tracker task remembers between metrics reports. Only ever locked briefly, never
/// across an `.await`.
#[derive(Debug, Default)]
struct Tracked {
    /// (when, wall-clock ms, term, leader) of the latest leader changes seen, oldest first.
    leader_changes: VecDeque<(Instant, u64, u64, NodeId)>,
    /// Every leader change seen since start.
    leader_changes_seen: u64,
    last_quorum_ack: Option<Instant>,
    /// Per member: last matched index seen and since when it is behind without progress.
    progress: BTreeMap<NodeId, (Option<u64>, Option<Instant>)>,
}

impl Tracked {
    fn observe(&mut self, m: &Metrics, now: Instant, now_ms: u64) {
        if let Some(leader) = m.current_leader {
            let changed = self
                .leader_changes
                .back()
                .is_none_or(|(_, _, term, l)| *term != m.current_term || *l != leader);
            if changed {
                if self.leader_changes.len() == RECENT_LEADER_CHANGES {
                    self.leader_changes.pop_front();
                }
                self.leader_changes
                    .push_back((now, now_ms, m.current_term, leader));
                self.leader_changes_seen += 1;
            }
        }
        if m.state != ServerState::Leader {
            self.last_quorum_ack = None;
            self.progress.clear();
            return;
        }
        if let Some(ms) = m.millis_since_quorum_ack {
            let at = now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
            self.last_quorum_ack = Some(self.last_quorum_ack.map_or(at, |prev| prev.max(at)));
        }
        let Some(replication) = &m.replication else {
            return;
        };
        self.progress.retain(|id, _| replication.contains_key(id));
        for (id, matched) in replication {
            let matched = matched.map(|l| l.index);
            let level = matched >= m.last_log_index;
            let entry = self.progress.entry(*id).or_insert((matched, None));
            let progressed = matched > entry.0;
            entry.0 = matched;
            entry.1 = match entry.1 {
                _ if level => None,
                Some(since) if !progressed => Some(since),
                _ => Some(now),
            };
        }
    }
}

/// Watches Raft metrics for what a status needs beyond the current report. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct StatusTracker {
    tracked: Arc<Mutex<Tracked>>,
}

impl StatusTracker {
    /// Start watching on the current runtime; the task ends when Raft shuts down.
    pub fn spawn(cluster: &Cluster) -> StatusTracker {
        let tracker = StatusTracker::default();
        let tracked = tracker.tracked.clone();
        let mut metrics = cluster.raft().metrics();
        tokio::spawn(async move {
            loop {
                {
                    let m = metrics.borrow_and_update();
                    tracked
                        .lock()
                        .observe(&m, Instant::now(), crate::clock::now_ms());
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        tracker
    }

    /// The status now. `lease` is `raft.lease_ms`; `mqtt` the counts to report (the caller
    /// decides whether walking every session for them is worth it).
    pub fn status(&self, cluster: &Cluster, lease: Duration, mqtt: MqttStatus) -> ClusterStatus {
        // Clone and release at once: holding a metrics borrow blocks openraft's next report.
        let metrics = cluster.raft().metrics().borrow().clone();
        let tracked = self.tracked.lock();
        build(
            &metrics,
            &tracked,
            Instant::now(),
            lease,
            cluster.is_active(),
            mqtt,
        )
    }
}

fn change(
    &(at, at_unix_ms, term, leader): &(Instant, u64, u64, NodeId),
    now: Instant,
) -> LeaderChange {
    LeaderChange {
        at_unix_ms,
        millis_ago: now.saturating_duration_since(at).as_millis() as u64,
        term,
        leader,
    }
}

fn build(
    m: &Metrics,
    t: &Tracked,
    now: Instant,
    lease: Duration,
    active: bool,
    mqtt: MqttStatus,
) -> ClusterStatus {
    let membership = m.membership_config.membership();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let is_leader = m.state == ServerState::Leader;
    let since_ack = t
        .last_quorum_ack
        .filter(|_| is_leader)
        .map(|at| now.saturating_duration_since(at));
    let single_voter = voters.len() == 1 && voters.contains(&m.id);
    let held = is_leader && (single_voter || since_ack.is_some_and(|d| d < lease));
    let members = membership
        .nodes()
        .map(|(id, node)| {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(id))
                .map(|l| l.as_ref().map(|l| l.index));
            let stalled = t
                .progress
                .get(id)
                .and_then(|(_, since)| *since)
                .map(|since| now.saturating_duration_since(since));
            MemberStatus {
                id: *id,
                voter: voters.contains(id),
                raft_addr: node.raft_addr.clone(),
                mqtt_addr: node.mqtt_addr.clone(),
                admin_addr: node.admin_addr.clone(),
                matched_index: matched.flatten(),
                lag: matched.map(|mi| {
                    m.last_log_index
                        .unwrap_or(0)
                        .saturating_sub(mi.unwrap_or(0))
                }),
                stalled_ms: stalled.map(|d| d.as_millis() as u64),
                // A member that never acknowledged an entry (just added, unreachable, or
                // still receiving its first snapshot) does not replicate yet.
                replicating: matched.map(|mi| {
                    *id == m.id || (mi.is_some() && stalled.is_none_or(|d| d < STALLED_AFTER))
                }),
            }
        })
        .collect();
    ClusterStatus {
        node_id: m.id,
        role: m.state.into(),
        term: m.current_term,
        leader: m.current_leader,
        active,
        lease: LeaseStatus {
            held,
            lease_ms: lease.as_millis() as u64,
            millis_since_quorum_ack: since_ack.map(|d| d.as_millis() as u64),
        },
        last_log_index: m.last_log_index,
        applied_index: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        membership_index: m.membership_config.log_id().map(|l| l.index),
        joint: membership.get_joint_config().len() > 1,
        members,
        last_leader_change: t.leader_changes.back().map(|c| change(c, now)),
        leader_changes: t.leader_changes_seen,
        recent_leader_changes: t.leader_changes.iter().map(|c| change(c, now)).collect(),
        vip_holder: None,
        mqtt,
    }
}

impl ClusterStatus {
    /// Voters and learners that replicate (the leader itself included); leader only.
    pub fn members_alive(&self) -> Option<u64> {
        (self.role == Role::Leader).then(|| {
            self.members
                .iter()
                .filter(|m| m.replicating == Some(true))
                .count() as u64
        })
    }

    pub fn member(&self, id: NodeId) -> Option<&MemberStatus> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().filter(|m| m.voter).map(|m| m.id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};

    use super::*;

    fn log_id(index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(1, NodeId(1)), index)
    }

    fn member(n: u64) -> Member {
        Member {
            raft_addr: format!("10.0.0.{n}:7946"),
            mqtt_addr: format!("10.0.0.{n}:1883"),
            admin_addr: format!("10.0.0.{n}:8081"),
        }
    }

    /// Leader 1 of voters {1,2,3} and learner 4, with `matched` per member and `last` as
    /// the log's last index.
    fn leader_metrics(last: u64, matched: &[(u64, Option<u64>)]) -> Metrics {
        let voters = BTreeSet::from([NodeId(1), NodeId(2), NodeId(3)]);
        let nodes: BTreeMap<NodeId, Member> = (1..=4).map(|n| (NodeId(n), member(n))).collect();
        let membership = Membership::new(vec![voters], nodes);
        let mut m = Metrics::new_initial(NodeId(1));
        m.state = ServerState::Leader;
        m.current_term = 7;
        m.current_leader = Some(NodeId(1));
        m.last_log_index = Some(last);
        m.last_applied = Some(log_id(last));
        m.millis_since_quorum_ack = Some(10);
        m.membership_config = Arc::new(StoredMembership::new(Some(log_id(1)), membership));
        m.replication = Some(
            matched
                .iter()
                .map(|(id, i)| (NodeId(*id), i.map(log_id)))
                .collect(),
        );
        m
    }

    #[test]
    fn reports_roles_lag_and_the_leader_change() {
        let mut t = Tracked::default();
        let start = Instant::now();
        let m = leader_metrics(
            100,
            &[(1, Some(100)), (2, Some(100)), (3, Some(40)), (4, None)],
        );
        t.observe(&m, start, 1_000);
        let s = build(
            &m,
            &t,
            start + Duration::from_millis(50),
            Duration::from_millis(400),
            true,
            MqttStatus::default(),
        );
        assert_eq!(
            (s.role, s.term, s.leader),
            (Role::Leader, 7, Some(NodeId(1)))
        );
        assert!(s.lease.held, "{:?}", s.lease);
        assert_eq!(
            s.voters().collect::<Vec<_>>(),
            [NodeId(1), NodeId(2), NodeId(3)]
        );
        let m3 = s.member(NodeId(3)).unwrap();
        assert_eq!(
            (m3.matched_index, m3.lag, m3.replicating),
            (Some(40), Some(60), Some(true))
        );
        let m4 = s.member(NodeId(4)).unwrap();
        assert!(!m4.voter);
        // A learner that never acknowledged anything does not replicate, even at once.
        assert_eq!(
            (m4.matched_index, m4.lag, m4.replicating),
            (None, Some(100), Some(false))
        );
        let change = s.last_leader_change.unwrap();
        assert_eq!(
            (
                change.term,
                change.leader,
                change.at_unix_ms,
                change.millis_ago
            ),
            (7, NodeId(1), 1_000, 50)
        );
    }

    #[test]
    fn a_follower_behind_without_progress_stops_replicating() {
        let mut t = Tracked::default();
        let start = Instant::now();
        t.observe(
            &leader_metrics(100, &[(1, Some(100)), (2, Some(100)), (3, Some(100))]),
            start,
            0,
        );
        // The log grows; 2 keeps up, 3 never acknowledges again.
        let later = start + STALLED_AFTER + Duration::from_secs(1);
        for (i, at) in [(101, start + Duration::from_secs(1)), (102, later)] {
            t.observe(
                &leader_metrics(i, &[(1, Some(i)), (2, Some(i)), (3, Some(100))]),
                at,
                0,
            );
        }
        let m = leader_metrics(102, &[(1, Some(102)), (2, Some(102)), (3, Some(100))]);
        let s = build(
            &m,
            &t,
            later,
            Duration::from_millis(400),
            true,
            MqttStatus::default(),
        );
        assert_eq!(s.member(NodeId(2)).unwrap().replicating, Some(true));
        let m3 = s.member(NodeId(3)).unwrap();
        assert_eq!(m3.replicating, Some(false), "{m3:?}");
        // Behind since the log first grew past it, a second after the start.
        assert_eq!(m3.stalled_ms, Some(STALLED_AFTER.as_millis() as u64));
    }

    #[test]
    fn a_leader_without_a_recent_quorum_ack_has_no_lease() {
        let mut t = Tracked::default();
        let start = Instant::now();
        let m = leader_metrics(5, &[(1, Some(5)), (2, Some(5)), (3, Some(5))]);
        t.observe(&m, start, 0);
        // The same report, read a second later: a cut-off leader publishes nothing new.
        let s = build(
            &m,
            &t,
            start + Duration::from_secs(1),
            Duration::from_millis(400),
            false,
            MqttStatus::default(),
        );
        assert!(!s.lease.held);
        assert!(s.lease.millis_since_quorum_ack >= Some(1000));
    }

    #[test]
    fn a_follower_knows_no_replication() {
        let mut m = leader_metrics(5, &[]);
        m.state = ServerState::Follower;
        m.current_leader = Some(NodeId(2));
        m.replication = None;
        let mut t = Tracked::default();
        t.observe(&m, Instant::now(), 0);
        let s = build(
            &m,
            &t,
            Instant::now(),
            Duration::from_millis(400),
            false,
            MqttStatus::default(),
        );
        assert_eq!(
            (s.role, s.leader, s.lease.held),
            (Role::Follower, Some(NodeId(2)), false)
        );
        assert!(s
            .members
            .iter()
            .all(|m| m.lag.is_none() && m.replicating.is_none()));
    }
}
