//! The admin HTTP API and `raftmq ctl` against the real binary: every route, authorization,
//! malformed requests, unknown node ids, health and readiness, writes sent to a follower,
//! and membership changes on a three-node cluster (removing a healthy node, force-evicting
//! a dead one).

mod common;

use std::time::Duration;

use common::admin::{
    admin_port, bearer, ctl, eventually_async, start_broker, stderr, stdout, Admin, TOKEN,
};
use common::cluster::{Cluster, ELECTION};
use common::Broker;
use reqwest::Method;
use serde_json::Value;

/// A learner address nothing listens on (port 1 on loopback refuses at once).
const NOWHERE: &str =
    r#""raft_addr": "127.0.0.1:1", "mqtt_addr": "127.0.0.1:2", "admin_addr": "127.0.0.1:3""#;

#[tokio::test]
async fn health_readiness_and_metrics_are_open() {
    let broker = start_broker();
    let admin = Admin::new(admin_port(&broker));
    let r = admin.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("ok")),
        "{}",
        r.text
    );
    // The harness returns once the node logged that it serves MQTT.
    let r = admin.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    let kind = r.headers["content-type"].to_str().unwrap();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    for line in [
        "raftmq_raft_is_leader 1",
        "raftmq_active 1",
        "raftmq_cluster_voters 1",
    ] {
        assert!(
            r.text.lines().any(|l| l == line),
            "no {line:?} in\n{}",
            r.text
        );
    }
}

#[tokio::test]
async fn status_needs_the_token() {
    let broker = start_broker();
    let admin = Admin::new(admin_port(&broker));
    let r = admin.call(Method::GET, "/cluster/status", None, None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(r.error().contains("Authorization: Bearer"), "{}", r.text);
    let r = admin
        .call(Method::GET, "/cluster/status", Some("Basic dDp0"), None)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    for wrong in ["Bearer wrong", "Bearer test-admin-toke"] {
        let r = admin
            .call(Method::GET, "/cluster/status", Some(wrong), None)
            .await;
        assert_eq!((r.status, r.error()), (403, "invalid admin token"));
    }
    // Writes are authorized before their body is even read.
    let r = admin
        .call(Method::POST, "/cluster/voters", None, Some("{not json"))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = admin
        .call(Method::DELETE, "/cluster/nodes/1", Some("Bearer x"), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

#[tokio::test]
async fn status_describes_the_single_node() {
    let broker = start_broker();
    let admin = Admin::new(admin_port(&broker));
    let (client, ev, _) = common::client::connect_v4(broker.port, "admin-status", false).await;
    let _drive = common::client::drive(ev);
    let admin = &admin;
    let s = eventually_async(
        "the session in the status",
        Duration::from_secs(10),
        || async move {
            let s = admin.status().await;
            (s["mqtt"]["sessions"] == 1 && s["mqtt"]["connections"] == 1).then_some(s)
        },
    )
    .await;
    assert_eq!(s["node_id"], 1);
    assert_eq!(s["role"], "leader");
    assert_eq!(s["leader"], 1);
    assert_eq!(s["active"], true);
    assert_eq!(s["lease"]["held"], true);
    assert_eq!(s["joint"], false);
    assert!(s["vip_holder"].is_null());
    assert!(s["applied_index"].as_u64() > Some(0), "{s:#}");
    assert!(s["term"].as_u64() >= Some(1));
    assert_eq!(s["last_leader_change"]["leader"], 1);
    let members = s["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{s:#}");
    let me = &members[0];
    assert_eq!(
        (me["id"].as_u64(), me["voter"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(me["lag"], 0);
    assert_eq!(me["replicating"], true);
    // The membership records the configured address (the harness listens on port 0).
    assert_eq!(me["admin_addr"], "127.0.0.1:0");
    client.disconnect().await.ok();
}

#[tokio::test]
async fn without_a_token_cluster_routes_are_disabled() {
    let broker = Broker::start();
    let admin = Admin::new(admin_port(&broker));
    for (method, path, body) in [
        (Method::GET, "/cluster/status", None),
        (Method::POST, "/cluster/voters", Some(r#"{"set":[1]}"#)),
        (Method::DELETE, "/cluster/nodes/1", None),
    ] {
        let r = admin.call(method, path, Some("Bearer "), body).await;
        assert_eq!(r.status, 503, "{path}: {}", r.text);
        assert!(r.error().contains("admin.token is not set"), "{}", r.text);
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = admin.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn malformed_requests_are_400_naming_the_problem() {
    let broker = start_broker();
    let admin = Admin::new(admin_port(&broker));
    let r = admin.post("/cluster/learners", r#"{"id": 4"#).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.error().contains("EOF while parsing"), "{}", r.text);
    let r = admin.post("/cluster/learners", r#"{"id": 4}"#).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.error().contains("missing field `raft_addr`"),
        "{}",
        r.text
    );
    let r = admin
        .post(
            "/cluster/learners",
            &format!(r#"{{"id": 4, {NOWHERE}, "extra": 1}}"#),
        )
        .await;
    assert!(
        r.status == 400 && r.error().contains("unknown field `extra`"),
        "{}",
        r.text
    );
    let body = r#"{"id": 4, "raft_addr": "nohost", "mqtt_addr": "h:1883", "admin_addr": "h:8081"}"#;
    let r = admin.post("/cluster/learners", body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.error().contains("`raft_addr`"), "{}", r.text);
    let r = admin
        .post("/cluster/learners", &format!(r#"{{"id": 0, {NOWHERE}}}"#))
        .await;
    assert!(r.status == 400 && r.error().contains("`id`"), "{}", r.text);
    let r = admin
        .call(Method::POST, "/cluster/learners", Some(&bearer()), None)
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    for bad in [
        r#"{"bogus": [1]}"#,
        r#"{"add": [4], "remove": [1]}"#,
        r#"{"add": []}"#,
    ] {
        let r = admin.post("/cluster/voters", bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    let r = admin.delete("/cluster/nodes/abc").await;
    assert!(
        r.status == 400 && r.error().contains("\"abc\""),
        "{}",
        r.text
    );
    let r = admin.delete("/cluster/nodes/1?force=yes").await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = admin
        .post("/cluster/voters?timeout_secs=0", r#"{"set": [1]}"#)
        .await;
    assert!(
        r.status == 400 && r.error().contains("timeout_secs"),
        "{}",
        r.text
    );
    let r = admin.get("/cluster/nowhere").await;
    assert_eq!((r.status, r.error()), (404, "no such route"));
    let r = admin.get("/cluster/voters").await;
    assert_eq!(r.status, 405, "{}", r.text);
}

#[tokio::test]
async fn learners_voters_and_removal_on_one_node() {
    let broker = start_broker();
    let admin = Admin::new(admin_port(&broker));
    // Unknown node ids.
    let r = admin.post("/cluster/voters", r#"{"add": [9]}"#).await;
    assert!(
        r.status == 404 && r.error().contains("node 9 is not a member"),
        "{}",
        r.text
    );
    let r = admin.delete("/cluster/nodes/9").await;
    assert_eq!(r.status, 404, "{}", r.text);
    // Nothing to do, or nothing left.
    let r = admin.post("/cluster/voters", r#"{"set": [1]}"#).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["membership"]["voters"], serde_json::json!([1]));
    let r = admin.post("/cluster/voters", r#"{"remove": [1]}"#).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = admin.delete("/cluster/nodes/1?force=true").await;
    assert!(
        r.status == 400 && r.error().contains("last voter"),
        "{}",
        r.text
    );
    let r = admin
        .post("/cluster/learners", &format!(r#"{{"id": 1, {NOWHERE}}}"#))
        .await;
    assert!(
        r.status == 409 && r.error().contains("already a voter"),
        "{}",
        r.text
    );

    // A learner nobody runs is added but never catches up.
    let body = format!(r#"{{"id": 4, {NOWHERE}}}"#);
    let r = admin.post("/cluster/learners?timeout_secs=1", &body).await;
    assert_eq!(r.status, 504, "{}", r.text);
    assert!(r.error().contains("has not caught up"), "{}", r.text);
    let s = admin.status().await;
    let learner = &s["members"][1];
    assert_eq!(
        (learner["id"].as_u64(), learner["voter"].as_bool()),
        (Some(4), Some(false))
    );
    assert_eq!(learner["replicating"], false, "{s:#}");
    // Promoting it would stall every write: refused.
    let r = admin.post("/cluster/voters", r#"{"add": [4]}"#).await;
    assert!(
        r.status == 409 && r.error().contains("has not caught up"),
        "{}",
        r.text
    );
    let r = admin.post("/cluster/voters", r#"{"set": [1, 4]}"#).await;
    assert_eq!(r.status, 409, "{}", r.text);
    // Same id, other addresses: refused rather than silently kept.
    let other = r#"{"id": 4, "raft_addr": "127.0.0.1:9", "mqtt_addr": "127.0.0.1:2", "admin_addr": "127.0.0.1:3"}"#;
    let r = admin.post("/cluster/learners?timeout_secs=1", other).await;
    assert_eq!(r.status, 409, "{}", r.text);
    // It looks dead: removing it takes force.
    let r = admin.delete("/cluster/nodes/4").await;
    assert!(
        r.status == 409 && r.error().contains("force=true"),
        "{}",
        r.text
    );
    let r = admin.delete("/cluster/nodes/4?force=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["membership"]["learners"], serde_json::json!([]));
    let s = admin.status().await;
    assert_eq!(s["members"].as_array().unwrap().len(), 1, "{s:#}");
    // The node went on serving throughout.
    let r = admin.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn ctl_status_prints_a_table_or_json() {
    let broker = start_broker();
    let port = admin_port(&broker);
    let out = ctl(port, Some(TOKEN), &["status"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(text.starts_with("node 1 (leader, term "), "{text}");
    assert!(text.contains("lease:        held"), "{text}");
    assert!(text.contains("ID  ROLE"), "{text}");
    assert!(text.contains("1   voter, leader (this)"), "{text}");
    let out = ctl(port, Some(TOKEN), &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("ctl status --json prints JSON");
    assert_eq!(
        (json["role"].as_str(), json["node_id"].as_u64()),
        (Some("leader"), Some(1))
    );
    // The token may also come as a flag.
    let out = ctl(port, None, &["--token", TOKEN, "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn ctl_prints_the_servers_refusals_and_fails() {
    let broker = start_broker();
    let port = admin_port(&broker);
    let out = ctl(port, Some("wrong"), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid admin token"),
        "{}",
        stderr(&out)
    );
    let out = ctl(port, None, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("RAFTMQ_ADMIN_TOKEN"),
        "{}",
        stderr(&out)
    );
    let out = ctl(port, Some(TOKEN), &["remove", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("node 9 is not a member"),
        "{}",
        stderr(&out)
    );
    // Usage errors exit 2.
    for args in [
        &["frobnicate"][..],
        &["promote"],
        &["--timeout-secs", "0", "promote", "4"],
    ] {
        let out = ctl(port, Some(TOKEN), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raftmq"))
        .args(["ctl", "--admin", "https://127.0.0.1:1", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Nothing listening: exit 1 with the cause.
    let out = ctl(1, Some(TOKEN), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach the admin API"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn ctl_membership_commands() {
    let broker = start_broker();
    let port = admin_port(&broker);
    let run = |args: &[&str]| ctl(port, Some(TOKEN), args);
    let out = run(&[
        "--timeout-secs",
        "1",
        "add-learner",
        "4",
        "--raft",
        "127.0.0.1:1",
        "--mqtt",
        "127.0.0.1:2",
        "--admin",
        "127.0.0.1:3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has not caught up"),
        "{}",
        stderr(&out)
    );
    let out = run(&["promote", "4"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has not caught up"),
        "{}",
        stderr(&out)
    );
    let out = run(&["demote", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = run(&["remove", "4"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = run(&["remove", "4", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "node 4 was removed from the cluster; stop its process\nvoters [1], learners []\n"
    );
}

/// Poll every node's status until one is the active leader; returns its id.
async fn admin_leader(cluster: &Cluster) -> u64 {
    eventually_async("an active leader", ELECTION, || async move {
        for node in &cluster.nodes {
            let s = Admin::new(node.admin_port).status().await;
            if s["active"] == true {
                return Some(node.id);
            }
        }
        None
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_send_writes_to_the_leader() {
    let cluster = Cluster::builder("admin_followers")
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .start();
    let leader = admin_leader(&cluster).await;
    let follower = cluster.others(leader)[0];
    let at = Admin::new(cluster.node(follower).admin_port);
    let leader_admin = format!("127.0.0.1:{}", cluster.node(leader).admin_port);
    // Followers hear from the leader shortly after it serves.
    let at = &at;
    let s = eventually_async("the follower knows the leader", ELECTION, || async move {
        let s = at.status().await;
        (s["leader"] == leader).then_some(s)
    })
    .await;
    assert_eq!(s["role"], "follower", "{s:#}");
    assert_eq!(s["active"], false);
    // `ctl ready`, the container health check: 0 on the leader only, the reason otherwise.
    let out = ctl(cluster.node(leader).admin_port, None, &["ready"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ctl(cluster.node(follower).admin_port, None, &["ready"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("HTTP 503"), "{}", stderr(&out));
    assert!(s["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["lag"].is_null()));

    let writes = [
        (
            Method::POST,
            "/cluster/voters",
            Some(r#"{"set": [1, 2, 3]}"#),
        ),
        (
            Method::POST,
            "/cluster/learners",
            Some(
                r#"{"id": 4, "raft_addr": "127.0.0.1:1", "mqtt_addr": "127.0.0.1:2", "admin_addr": "127.0.0.1:3"}"#,
            ),
        ),
        (Method::DELETE, "/cluster/nodes/3", None),
    ];
    for (method, path, body) in writes {
        let r = at.call(method, path, Some(&bearer()), body).await;
        assert_eq!(r.status, 421, "{path}: {}", r.text);
        assert!(r.error().starts_with("not the leader"), "{}", r.text);
        assert_eq!(r.json["leader"]["id"], leader, "{}", r.text);
        assert_eq!(
            r.json["leader"]["admin_addr"],
            leader_admin.as_str(),
            "{}",
            r.text
        );
    }
    let r = at.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.error().starts_with("follower: node"), "{}", r.text);
    assert_eq!(r.json["leader"]["id"], leader);

    // ctl sent to a follower follows the hint once, and says so.
    let out = ctl(
        cluster.node(follower).admin_port,
        Some(TOKEN),
        &["remove", "9"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("sending to node {leader}")), "{err}");
    assert!(err.contains("node 9 is not a member"), "{err}");
    let out = ctl(cluster.node(follower).admin_port, Some(TOKEN), &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("replication lag is known to the leader only"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_a_dead_node_then_remove_a_healthy_one() {
    let mut cluster = Cluster::builder("admin_membership")
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .start();
    let leader = admin_leader(&cluster).await;
    let admin = &Admin::new(cluster.node(leader).admin_port);
    let (dead, healthy) = {
        let others = cluster.others(leader);
        (others[0], others[1])
    };
    eventually_async("every member replicating", ELECTION, || async move {
        let s = admin.status().await;
        let members = s["members"].as_array()?.clone();
        (members.len() == 3 && members.iter().all(|m| m["replicating"] == true)).then_some(())
    })
    .await;

    cluster.kill9(dead);
    // The housekeeping tick grows the log; the dead node falls behind and stalls.
    eventually_async(
        "the dead node stalled",
        Duration::from_secs(20),
        || async move {
            let s = admin.status().await;
            let m = s["members"]
                .as_array()?
                .iter()
                .find(|m| m["id"] == dead)?
                .clone();
            (m["replicating"] == false).then_some(())
        },
    )
    .await;
    let r = admin.delete(&format!("/cluster/nodes/{dead}")).await;
    assert!(
        r.status == 409 && r.error().contains("force=true"),
        "{}",
        r.text
    );
    let r = admin
        .delete(&format!("/cluster/nodes/{dead}?force=true"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let voters = r.json["membership"]["voters"].as_array().unwrap().clone();
    assert_eq!(voters.len(), 2, "{}", r.text);
    assert!(!voters.contains(&Value::from(dead)));

    // A healthy voter leaves; the leader alone is a quorum and keeps serving.
    let r = admin.delete(&format!("/cluster/nodes/{healthy}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["membership"]["voters"], serde_json::json!([leader]));
    cluster.kill9(healthy);
    let s = admin.status().await;
    assert_eq!(s["members"].as_array().unwrap().len(), 1, "{s:#}");
    eventually_async("the leader serving alone", ELECTION, || async move {
        let r = admin.call(Method::GET, "/readyz", None, None).await;
        (r.status == 200).then_some(())
    })
    .await;
}
