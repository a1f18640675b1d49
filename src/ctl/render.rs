//! The readable forms of `raftmq ctl` answers: the status table and a membership change.

use std::fmt::Write as _;

use serde_json::Value;

use crate::admin::LeaderHint;
use crate::cluster::{ClusterStatus, MemberStatus, Role};

/// The readable form of a status.
pub(super) fn render_status(s: &ClusterStatus) -> String {
    let mut out = String::new();
    let serving = if s.active {
        "active: serving MQTT"
    } else {
        "not serving MQTT"
    };
    let _ = writeln!(
        out,
        "node {} ({}, term {}): {serving}",
        s.node_id,
        s.role.as_str(),
        s.term
    );
    let leader = s
        .leader
        .map_or_else(|| "unknown (no leader)".into(), |l| format!("node {l}"));
    let _ = writeln!(out, "leader:       {leader}");
    if s.role == Role::Leader {
        let ack = s.lease.millis_since_quorum_ack.map_or_else(
            || "no quorum ack yet".into(),
            |ms| format!("quorum ack {} ago", human_ms(ms)),
        );
        let held = if s.lease.held { "held" } else { "NOT held" };
        let _ = writeln!(
            out,
            "lease:        {held} ({ack}, lease {} ms)",
            s.lease.lease_ms
        );
    }
    if let Some(c) = &s.last_leader_change {
        let _ = writeln!(
            out,
            "leader since: {} ago (node {}, term {})",
            human_ms(c.millis_ago),
            c.leader,
            c.term
        );
    }
    let idx = |i: Option<u64>| i.map_or_else(|| "-".into(), |i| i.to_string());
    let _ = writeln!(
        out,
        "log:          last {}, applied {}, snapshot {}",
        idx(s.last_log_index),
        idx(s.applied_index),
        idx(s.snapshot_index)
    );
    let vip = s
        .vip_holder
        .map_or_else(|| "none".into(), |n| format!("node {n}"));
    let _ = writeln!(out, "VIP holder:   {vip}");
    let _ = writeln!(
        out,
        "MQTT:         {} sessions ({} online), {} connections on this node",
        s.mqtt.sessions, s.mqtt.sessions_online, s.mqtt.connections
    );
    if s.joint {
        let _ = writeln!(
            out,
            "membership:   change in progress (joint configuration)"
        );
    }
    out.push('\n');
    out.push_str(&members_table(s));
    if s.role != Role::Leader {
        let hint = LeaderHint::from_status(s)
            .filter(|h| !h.admin_addr.is_empty())
            .map(|h| format!(": ask node {} (--admin http://{})", h.id, h.admin_addr))
            .unwrap_or_default();
        let _ = writeln!(out, "\nreplication lag is known to the leader only{hint}");
    }
    out
}

fn members_table(s: &ClusterStatus) -> String {
    let header = [
        "ID",
        "ROLE",
        "RAFT",
        "MQTT",
        "ADMIN",
        "MATCHED",
        "LAG",
        "REPLICATION",
    ];
    let mut rows: Vec<[String; 8]> = vec![header.map(str::to_owned)];
    for m in &s.members {
        rows.push(member_row(s, m));
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

fn member_row(s: &ClusterStatus, m: &MemberStatus) -> [String; 8] {
    let mut role = if m.voter { "voter" } else { "learner" }.to_owned();
    if s.leader == Some(m.id) {
        role.push_str(", leader");
    }
    if s.node_id == m.id {
        role.push_str(" (this)");
    }
    let opt = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
    let replication = match (m.replicating, m.stalled_ms) {
        (None, _) => "-".to_owned(),
        (Some(true), _) => "ok".to_owned(),
        (Some(false), Some(ms)) => format!("stalled {}", human_ms(ms)),
        (Some(false), None) => "stalled".to_owned(),
    };
    [
        m.id.to_string(),
        role,
        dash(&m.raft_addr),
        dash(&m.mqtt_addr),
        dash(&m.admin_addr),
        opt(m.matched_index),
        opt(m.lag),
        replication,
    ]
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

/// `850 ms`, `12.3 s`, `5 min 12 s`, `3 h 5 min`, `2 d 3 h`.
fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{}.{} s", s, (ms % 1000) / 100),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The answer to a membership change: its message and the membership it left.
pub(super) fn render_change(answer: &Value) -> String {
    let mut out = String::new();
    if let Some(m) = answer["message"].as_str() {
        let _ = writeln!(out, "{m}");
    }
    let ids = |key: &str| -> String {
        let list: Vec<String> = answer["membership"][key]
            .as_array()
            .map(|a| a.iter().map(|v| v.to_string()).collect())
            .unwrap_or_default();
        format!("[{}]", list.join(", "))
    };
    let _ = writeln!(
        out,
        "voters {}, learners {}",
        ids("voters"),
        ids("learners")
    );
    out
}

#[cfg(test)]
mod tests {
    use raftmq_raft::NodeId;

    use serde_json::json;

    use super::*;
    use crate::cluster::{LeaderChange, LeaseStatus, MqttStatus};

    fn member(id: u64, voter: bool, lag: Option<u64>, replicating: Option<bool>) -> MemberStatus {
        MemberStatus {
            id: NodeId(id),
            voter,
            raft_addr: format!("10.0.0.{id}:7946"),
            mqtt_addr: format!("10.0.0.{id}:1883"),
            admin_addr: format!("10.0.0.{id}:8081"),
            matched_index: lag.map(|l| 120 - l),
            lag,
            stalled_ms: (replicating == Some(false)).then_some(4200),
            replicating,
        }
    }

    fn status(role: Role) -> ClusterStatus {
        let leading = role == Role::Leader;
        let rep = |r: bool, lag: u64| {
            if leading {
                (Some(lag), Some(r))
            } else {
                (None, None)
            }
        };
        let (l1, r1) = rep(true, 0);
        let (l3, r3) = rep(false, 20);
        ClusterStatus {
            node_id: NodeId(1),
            role,
            term: 7,
            leader: Some(if leading { NodeId(1) } else { NodeId(2) }),
            active: leading,
            lease: LeaseStatus {
                held: leading,
                lease_ms: 400,
                millis_since_quorum_ack: leading.then_some(12),
            },
            last_log_index: Some(120),
            applied_index: Some(120),
            snapshot_index: None,
            membership_index: Some(3),
            joint: false,
            members: vec![
                member(1, true, l1, r1),
                member(2, true, l1, r1),
                member(3, true, l3, r3),
                member(4, false, l1, r1),
            ],
            last_leader_change: Some(LeaderChange {
                at_unix_ms: 0,
                millis_ago: 312_000,
                term: 7,
                leader: NodeId(1),
            }),
            leader_changes: 1,
            recent_leader_changes: Vec::new(),
            vip_holder: None,
            mqtt: MqttStatus {
                sessions: 12,
                sessions_online: 3,
                connections: 3,
            },
        }
    }

    #[test]
    fn the_table_shows_roles_lag_leader_and_lease() {
        let out = render_status(&status(Role::Leader));
        assert!(
            out.starts_with("node 1 (leader, term 7): active: serving MQTT\n"),
            "{out}"
        );
        assert!(
            out.contains("lease:        held (quorum ack 12 ms ago, lease 400 ms)"),
            "{out}"
        );
        assert!(
            out.contains("leader since: 5 min 12 s ago (node 1, term 7)"),
            "{out}"
        );
        assert!(
            out.contains("12 sessions (3 online), 3 connections"),
            "{out}"
        );
        let lines: Vec<&str> = out.lines().collect();
        let header = lines
            .iter()
            .position(|l| l.starts_with("ID  ROLE"))
            .unwrap();
        assert!(
            lines[header + 1].starts_with("1   voter, leader (this)  10.0.0.1:7946"),
            "{out}"
        );
        assert!(
            lines[header + 3].ends_with("100      20   stalled 4.2 s"),
            "{out}"
        );
        assert!(lines[header + 4].starts_with("4   learner"), "{out}");
    }

    #[test]
    fn a_follower_points_at_the_leader_for_lag() {
        let out = render_status(&status(Role::Follower));
        assert!(
            out.contains("node 1 (follower, term 7): not serving MQTT"),
            "{out}"
        );
        assert!(!out.contains("lease:"), "{out}");
        assert!(
            out.contains("ask node 2 (--admin http://10.0.0.2:8081)"),
            "{out}"
        );
    }

    #[test]
    fn durations_read_like_a_person_says_them() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(12_345), "12.3 s");
        assert_eq!(human_ms(312_000), "5 min 12 s");
        assert_eq!(human_ms(3_600_000 * 3 + 300_000), "3 h 5 min");
        assert_eq!(human_ms(86_400_000 * 2 + 3_600_000 * 3), "2 d 3 h");
    }

    #[test]
    fn a_change_prints_its_message_and_the_membership() {
        let answer = json!({
            "message": "the voters are now [1, 2, 4]",
            "membership": { "voters": [1, 2, 4], "learners": [3] }
        });
        assert_eq!(
            render_change(&answer),
            "the voters are now [1, 2, 4]\nvoters [1, 2, 4], learners [3]\n"
        );
    }
}
