//! The replicated state's totals (the same `stats()` `$SYS` reads) and this node's Raft
//! view (the same `ClusterStatus` `/cluster/status` answers), read at scrape time.

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use raftmq_raft::state::Stats;

use super::{counter, gauge, labelled, Sources};
use crate::cluster::{Cluster, ClusterStatus, MqttStatus, Role, StatusTracker};
use crate::vip::VipHandle;

/// Reads one total of the replicated state.
type Total = fn(&Stats) -> u64;

/// Gauges of the replicated state: (name, help, unit, value). One more total of
/// `raftmq_raft::state::Stats` is one more line here.
const STATE: &[(&str, &str, Option<Unit>, Total)] = &[
    (
        "sessions",
        "sessions in the replicated state, online or not",
        None,
        |s| s.sessions,
    ),
    (
        "sessions_online",
        "sessions with a live connection",
        None,
        |s| s.sessions_online,
    ),
    (
        "subscriptions",
        "subscriptions of all sessions",
        None,
        |s| s.subscriptions,
    ),
    (
        "subscriptions_memory",
        "estimated memory of the subscriptions (filters, client ids, index entries)",
        Some(Unit::Bytes),
        |s| s.subscription_bytes,
    ),
    ("retained_messages", "retained messages", None, |s| {
        s.retained
    }),
    (
        "stored_messages",
        "messages stored once for queues and retained",
        None,
        |s| s.stored_messages,
    ),
    (
        "queued_messages",
        "messages queued for sessions beyond their in-flight windows",
        None,
        |s| s.queued_messages,
    ),
    (
        "queued",
        "topic and payload bytes of the queued messages",
        Some(Unit::Bytes),
        |s| s.queued_bytes,
    ),
    (
        "inflight_messages",
        "QoS 1/2 deliveries awaiting acknowledgement",
        None,
        |s| s.inflight_messages,
    ),
    ("bans", "bans in force (replicated)", None, |s| s.bans),
];

/// Counters of the replicated state (since the log began): (name without `_total`, help,
/// value).
const STATE_COUNTERS: &[(&str, &str, Total)] = &[
    (
        "queue_full_dropped_messages",
        "messages dropped by full session queues",
        |s| s.dropped_queue_full,
    ),
    (
        "expired_messages",
        "messages expired before delivery",
        |s| s.expired_messages,
    ),
    (
        "too_large_dropped_messages",
        "deliveries dropped above a client's maximum packet size",
        |s| s.dropped_too_large,
    ),
];

pub(super) struct ClusterCollector {
    cluster: Cluster,
    tracker: StatusTracker,
    vip: VipHandle,
    lease: Duration,
}

impl fmt::Debug for ClusterCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCollector")
            .field("node_id", &self.cluster.node_id())
            .finish_non_exhaustive()
    }
}

impl ClusterCollector {
    pub(super) fn new(s: Sources) -> ClusterCollector {
        ClusterCollector {
            cluster: s.cluster,
            tracker: s.tracker,
            vip: s.vip,
            lease: s.lease,
        }
    }
}

impl Collector for ClusterCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let stats = self.cluster.state().read().stats();
        for (name, help, unit, value) in STATE {
            gauge(&mut e, name, help, unit.as_ref(), value(&stats))?;
        }
        for (name, help, value) in STATE_COUNTERS {
            counter(&mut e, name, help, value(&stats))?;
        }
        let status = self
            .tracker
            .status(&self.cluster, self.lease, MqttStatus::default());
        raft(&mut e, &status)?;
        gauge(
            &mut e,
            "vip_held",
            "1 while this node holds the virtual IP",
            None,
            u64::from(self.vip.held()),
        )?;
        Ok(())
    }
}

fn raft(e: &mut DescriptorEncoder, s: &ClusterStatus) -> fmt::Result {
    let leader = s.role == Role::Leader;
    let gauges: [(&str, &str, u64); 10] = [
        ("raft_term", "current Raft term", s.term),
        (
            "raft_leader_id",
            "node id of the leader this node knows of (0: none)",
            s.leader.map_or(0, |l| l.0),
        ),
        ("raft_is_leader", "1 on the Raft leader", u64::from(leader)),
        (
            "raft_lease_held",
            "1 while the leader holds its quorum lease",
            u64::from(s.lease.held),
        ),
        (
            "active",
            "1 while this node serves MQTT",
            u64::from(s.active),
        ),
        (
            "raft_last_log_index",
            "last log index on this node",
            s.last_log_index.unwrap_or(0),
        ),
        (
            "raft_applied_index",
            "last log index applied to the state machine",
            s.applied_index.unwrap_or(0),
        ),
        (
            "raft_snapshot_index",
            "last log index in the latest snapshot",
            s.snapshot_index.unwrap_or(0),
        ),
        (
            "cluster_nodes",
            "members of the cluster (voters and learners)",
            s.members.len() as u64,
        ),
        (
            "cluster_voters",
            "voters of the cluster",
            s.voters().count() as u64,
        ),
    ];
    for (name, help, value) in gauges {
        gauge(e, name, help, None, value)?;
    }
    counter(
        e,
        "raft_leader_changes",
        "leader changes this node has seen since it started (failovers; the first leader \
         it learned of included)",
        s.leader_changes,
    )?;
    if !leader {
        return Ok(());
    }
    if let Some(ms) = s.lease.millis_since_quorum_ack {
        gauge(
            e,
            "raft_quorum_ack_age",
            "time since a quorum last acknowledged this leader (leader only)",
            Some(&Unit::Seconds),
            ms as f64 / 1000.0,
        )?;
    }
    if let Some(alive) = s.members_alive() {
        gauge(
            e,
            "cluster_nodes_alive",
            "members replicating from this leader, itself included (leader only)",
            None,
            alive,
        )?;
    }
    if let Some(commit) = commit_index(s) {
        gauge(
            e,
            "raft_commit_index",
            "last log index held by a quorum of voters (leader only)",
            None,
            commit,
        )?;
    }
    labelled(
        e,
        (
            "raft_follower_lag",
            "log entries a follower or learner is behind the leader (leader only)",
            Some(&Unit::Other("entries".into())),
            MetricType::Gauge,
        ),
        "follower",
        s.members
            .iter()
            .filter(|m| m.id != s.node_id)
            .filter_map(|m| Some((m.id.to_string(), m.lag?))),
    )
}

/// The highest index a majority of voters holds: the commit index as the leader sees it.
fn commit_index(s: &ClusterStatus) -> Option<u64> {
    let mut matched: Vec<u64> = s
        .members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.matched_index.unwrap_or(0))
        .collect();
    if matched.is_empty() {
        return None;
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched.get(matched.len() / 2).copied()
}
