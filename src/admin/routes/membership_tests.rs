//! The checks that run before Raft is asked, on hand-made leader views.

use super::*;
use crate::cluster::{LeaseStatus, MemberStatus, MqttStatus};

/// `(id, voter, replicating, lag)` per member; node 1 is this node, the leader.
fn leader(members: &[(u64, bool, bool, u64)]) -> ClusterStatus {
    ClusterStatus {
        node_id: NodeId(1),
        role: Role::Leader,
        term: 2,
        leader: Some(NodeId(1)),
        active: true,
        lease: LeaseStatus {
            held: true,
            lease_ms: 400,
            millis_since_quorum_ack: Some(5),
        },
        last_log_index: Some(100),
        applied_index: Some(100),
        snapshot_index: None,
        membership_index: Some(1),
        joint: false,
        members: members
            .iter()
            .map(|&(id, voter, replicating, lag)| MemberStatus {
                id: NodeId(id),
                voter,
                raft_addr: format!("h{id}:7946"),
                mqtt_addr: format!("h{id}:1883"),
                admin_addr: format!("h{id}:8081"),
                matched_index: Some(100 - lag),
                lag: Some(lag),
                stalled_ms: (!replicating).then_some(9000),
                replicating: Some(replicating),
            })
            .collect(),
        last_leader_change: None,
        leader_changes: 0,
        recent_leader_changes: Vec::new(),
        vip_holder: None,
        mqtt: MqttStatus::default(),
    }
}

fn three_and_learner(learner_ok: bool) -> ClusterStatus {
    let lag = if learner_ok { 0 } else { 90 };
    leader(&[
        (1, true, true, 0),
        (2, true, true, 0),
        (3, true, true, 0),
        (4, false, learner_ok, lag),
    ])
}

fn ids(list: &[u64]) -> BTreeSet<NodeId> {
    list.iter().copied().map(NodeId).collect()
}

fn status_of(r: Result<Planned, ApiError>) -> u16 {
    match r {
        Ok(Planned::Change { .. }) => 200,
        Ok(Planned::Nothing(_)) => 204,
        Err(e) => e.status().as_u16(),
    }
}

#[test]
fn learner_requests_name_the_bad_field() {
    let ok = AddLearner {
        id: NodeId(4),
        raft_addr: "10.0.0.4:7946".into(),
        mqtt_addr: "broker4.example:1883".into(),
        admin_addr: "10.0.0.4:8081".into(),
    };
    assert_eq!(
        validate_learner(&ok).unwrap().mqtt_addr,
        "broker4.example:1883"
    );
    let zero = AddLearner {
        id: NodeId(0),
        ..clone(&ok)
    };
    assert!(validate_learner(&zero)
        .unwrap_err()
        .to_string()
        .contains("`id`"));
    for (field, bad) in [
        ("raft_addr", ""),
        ("mqtt_addr", "nohost"),
        ("admin_addr", "h:0"),
    ] {
        let mut req = clone(&ok);
        match field {
            "raft_addr" => req.raft_addr = bad.into(),
            "mqtt_addr" => req.mqtt_addr = bad.into(),
            _ => req.admin_addr = bad.into(),
        }
        let e = validate_learner(&req).unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.to_string().contains(field), "{e}");
    }
}

fn clone(r: &AddLearner) -> AddLearner {
    AddLearner {
        id: r.id,
        raft_addr: r.raft_addr.clone(),
        mqtt_addr: r.mqtt_addr.clone(),
        admin_addr: r.admin_addr.clone(),
    }
}

#[test]
fn adding_a_learner_is_idempotent_but_never_rewrites_a_member() {
    let s = three_and_learner(true);
    let same = Member {
        raft_addr: "h4:7946".into(),
        mqtt_addr: "h4:1883".into(),
        admin_addr: "h4:8081".into(),
    };
    assert!(check_new_learner(NodeId(5), &same, &s).is_ok());
    assert!(check_new_learner(NodeId(4), &same, &s).is_ok());
    let moved = Member {
        raft_addr: "elsewhere:7946".into(),
        ..same.clone()
    };
    assert_eq!(
        check_new_learner(NodeId(4), &moved, &s)
            .unwrap_err()
            .status()
            .as_u16(),
        409
    );
    assert_eq!(
        check_new_learner(NodeId(2), &same, &s)
            .unwrap_err()
            .status()
            .as_u16(),
        409
    );
}

#[test]
fn promotion_needs_a_caught_up_learner() {
    let add = |list: &[u64], s: &ClusterStatus| {
        status_of(plan_voters(VotersChange::Add(ids(list)), s, 50))
    };
    assert_eq!(add(&[4], &three_and_learner(true)), 200);
    assert_eq!(add(&[4], &three_and_learner(false)), 409);
    assert_eq!(add(&[9], &three_and_learner(true)), 404);
    assert_eq!(add(&[2], &three_and_learner(true)), 204);
    assert_eq!(add(&[], &three_and_learner(true)), 400);
    assert_eq!(add(&[0], &three_and_learner(true)), 400);
    // Replicating but further behind than openraft's "caught up" threshold.
    let mut s = three_and_learner(true);
    s.members[3].lag = Some(51);
    assert_eq!(add(&[4], &s), 409);
}

#[test]
fn demotion_and_replacement_keep_a_replicating_majority() {
    let s = leader(&[(1, true, true, 0), (2, true, true, 0), (3, true, false, 80)]);
    let remove = |list: &[u64]| status_of(plan_voters(VotersChange::Remove(ids(list)), &s, 50));
    assert_eq!(remove(&[3]), 200);
    // {1, 3}: one of two replicates.
    assert_eq!(remove(&[2]), 409);
    assert_eq!(remove(&[1, 2, 3]), 400);
    assert_eq!(remove(&[7]), 404);
    let set = |list: &[u64]| status_of(plan_voters(VotersChange::Set(ids(list)), &s, 50));
    assert_eq!(set(&[1, 2]), 200);
    assert_eq!(set(&[1, 2, 3]), 204);
    assert_eq!(set(&[1, 3]), 409);
    match plan_voters(VotersChange::Set(ids(&[1, 2])), &s, 50) {
        Ok(Planned::Change { change, retain, .. }) => {
            assert_eq!(change, ChangeMembers::ReplaceAllVoters(ids(&[1, 2])));
            assert!(retain, "voters left out stay learners");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn removing_a_dead_node_takes_force() {
    let s = leader(&[(1, true, true, 0), (2, true, true, 0), (3, true, false, 80)]);
    let e = plan_remove(NodeId(3), false, &s).unwrap_err();
    assert_eq!(e.status().as_u16(), 409);
    assert!(e.to_string().contains("force=true"), "{e}");
    match plan_remove(NodeId(3), true, &s) {
        Ok(Planned::Change { change, retain, .. }) => {
            assert_eq!(change, ChangeMembers::RemoveVoters(ids(&[3])));
            assert!(!retain, "a removed voter does not stay a learner");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status_of(plan_remove(NodeId(9), true, &s)), 404);
}

#[test]
fn removing_a_healthy_voter_must_leave_a_replicating_majority() {
    let s = leader(&[(1, true, true, 0), (2, true, true, 0), (3, true, false, 80)]);
    // Voters {1, 3} with 3 down: refused unless forced.
    assert_eq!(status_of(plan_remove(NodeId(2), false, &s)), 409);
    assert_eq!(status_of(plan_remove(NodeId(2), true, &s)), 200);
    let healthy = three_and_learner(true);
    assert_eq!(status_of(plan_remove(NodeId(2), false, &healthy)), 200);
    match plan_remove(NodeId(4), false, &healthy) {
        Ok(Planned::Change { change, .. }) => {
            assert_eq!(change, ChangeMembers::RemoveNodes(ids(&[4])));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_leader_may_remove_itself_and_says_it_steps_down() {
    let s = three_and_learner(true);
    match plan_remove(NodeId(1), false, &s) {
        Ok(Planned::Change { message, .. }) => assert!(message.contains("steps down"), "{message}"),
        other => panic!("{other:?}"),
    }
    let alone = leader(&[(1, true, true, 0)]);
    assert_eq!(status_of(plan_remove(NodeId(1), true, &alone)), 400);
}

#[test]
fn voter_changes_parse_from_one_documented_form() {
    let parse = |json: &str| serde_json::from_str::<VotersChange>(json);
    assert!(matches!(parse(r#"{"add":[4]}"#), Ok(VotersChange::Add(s)) if s == ids(&[4])));
    assert!(matches!(
        parse(r#"{"remove":[2]}"#),
        Ok(VotersChange::Remove(_))
    ));
    assert!(matches!(
        parse(r#"{"set":[1,2,4]}"#),
        Ok(VotersChange::Set(_))
    ));
    for bad in [
        r#"{"ids":[1]}"#,
        r#"{"add":[4],"remove":[2]}"#,
        r#"{"add":"4"}"#,
        "[4]",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn timeouts_are_bounded() {
    assert_eq!(timeout(None).unwrap(), DEFAULT_TIMEOUT);
    assert_eq!(timeout(Some(5)).unwrap(), Duration::from_secs(5));
    assert!(timeout(Some(0)).is_err());
    assert!(timeout(Some(MAX_TIMEOUT_SECS + 1)).is_err());
}
