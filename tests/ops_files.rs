//! The monitoring a user runs against a live broker: `/metrics` shows every metric of the
//! issue with live values, the alert rules (`ops/prometheus/raftmq-rules.yml`) and the
//! Grafana dashboard (`ops/grafana/raftmq-dashboard.json`) use only names it exposes, the
//! rules pass `promtool check rules` (when promtool is installed: Debian's `prometheus`), and
//! the connection lifecycle shows in the log with client id, address and reason.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::admin::{admin_port, eventually_async, start_broker, Admin};
use common::client::{connect_v4, drive, wait_for};
use common::cluster::{connect_packet, Link, LinkError};
use common::Broker;
use reqwest::Method;
use rumqttc::{Packet, QoS};
use serde_json::Value;

const RULES: &str = "ops/prometheus/raftmq-rules.yml";
const DASHBOARD: &str = "ops/grafana/raftmq-dashboard.json";

/// Every metric the issue asks for, by its exposed sample name.
const REQUIRED: &[&str] = &[
    "raftmq_connections",
    "raftmq_connections_max",
    "raftmq_connections_peak",
    "raftmq_connects_total",
    "raftmq_connects_refused_total",
    "raftmq_disconnects_total",
    "raftmq_messages_received_total",
    "raftmq_messages_sent_total",
    "raftmq_payload_received_bytes_total",
    "raftmq_payload_sent_bytes_total",
    "raftmq_queued_messages",
    "raftmq_queued_bytes",
    "raftmq_inflight_messages",
    "raftmq_retained_messages",
    "raftmq_subscriptions",
    "raftmq_subscriptions_memory_bytes",
    "raftmq_sessions",
    "raftmq_raft_term",
    "raftmq_raft_leader_id",
    "raftmq_raft_commit_index",
    "raftmq_raft_applied_index",
    "raftmq_raft_follower_lag_entries",
    "raftmq_log_fsync_latency_seconds_bucket",
    "raftmq_commit_latency_seconds_bucket",
    "raftmq_puback_latency_seconds_bucket",
    "raftmq_cluster_nodes_alive",
    "raftmq_raft_lease_held",
    "raftmq_vip_held",
    "raftmq_raft_leader_changes_total",
];

/// The names a scrape exposes: each family's name from its `# TYPE` line plus the sample
/// names the type implies (`_total`, `_bucket`/`_sum`/`_count`).
fn exposed_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[],
        };
        for s in suffixes {
            names.insert(format!("{name}{s}"));
        }
    }
    names
}

/// Every `raftmq_...` metric name in `text`.
fn referenced_names(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("raftmq_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        found.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    found
}

/// The value of the sample `series` (name and labels exactly as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(admin: &Admin) -> String {
    let r = admin.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.text
}

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// A CONNECT with a client id above `limits.max_client_id_len`: refused.
async fn refuse_long_client_id(port: u16) -> String {
    let long = "y".repeat(300);
    let refused = Link::connect(port, connect_packet(&long, true, None), None).await;
    assert!(
        matches!(refused, Err(LinkError::Refused(_))),
        "{:?}",
        refused.err()
    );
    long
}

#[tokio::test]
async fn metrics_rules_and_dashboard_agree_with_a_live_broker() {
    let broker = start_broker();
    let admin = Admin::new(admin_port(&broker));

    // Traffic for live values: a subscriber, QoS 1 publishes, a retained message, and a
    // CONNECT refused for a bad client id.
    let (sub, ev, _) = connect_v4(broker.port, "ops-sub", true).await;
    let _driver = drive(ev);
    sub.subscribe("ops/#", QoS::AtLeastOnce).await.unwrap();
    let (publisher, ev, _) = connect_v4(broker.port, "ops-pub", true).await;
    let _pub_driver = drive(ev);
    for i in 0..5 {
        publisher
            .publish("ops/t", QoS::AtLeastOnce, i == 0, vec![b'x'; 10])
            .await
            .unwrap();
    }
    refuse_long_client_id(broker.port).await;

    let text = eventually_async(
        "live values in /metrics",
        Duration::from_secs(10),
        || async {
            let text = scrape(&admin).await;
            let live = [
                ("raftmq_connections", 2.0),
                ("raftmq_messages_received_total{qos=\"1\"}", 5.0),
                ("raftmq_messages_sent_total{qos=\"1\"}", 5.0),
                ("raftmq_payload_received_bytes_total{qos=\"1\"}", 50.0),
                ("raftmq_puback_latency_seconds_count", 5.0),
                ("raftmq_retained_messages", 1.0),
                ("raftmq_subscriptions", 1.0),
                (
                    "raftmq_connects_refused_total{reason=\"client_identifier_not_valid\"}",
                    1.0,
                ),
            ];
            live.iter()
                .all(|(series, min)| sample(&text, series).is_some_and(|v| v >= *min))
                .then_some(text)
        },
    )
    .await;
    for (series, min) in [
        ("raftmq_raft_is_leader", 1.0),
        ("raftmq_raft_lease_held", 1.0),
        ("raftmq_cluster_nodes_alive", 1.0),
        ("raftmq_raft_leader_id", 1.0),
        ("raftmq_raft_leader_changes_total", 1.0),
        ("raftmq_log_fsync_latency_seconds_count", 1.0),
        ("raftmq_commit_latency_seconds_count", 1.0),
        ("raftmq_subscriptions_memory_bytes", 1.0),
        ("raftmq_connections_max", 1.0),
    ] {
        let v = sample(&text, series);
        assert!(v.is_some_and(|v| v >= min), "{series} = {v:?}\n{text}");
    }
    assert!(
        sample(&text, "raftmq_raft_commit_index") >= sample(&text, "raftmq_raft_applied_index"),
        "{text}"
    );

    let exposed = exposed_names(&text);
    for name in REQUIRED {
        assert!(exposed.contains(*name), "{name} not exposed:\n{text}");
    }
    let rules = repo_file(RULES);
    let in_rules = referenced_names(&rules);
    assert!(in_rules.len() >= 10, "{in_rules:?}");
    for name in &in_rules {
        assert!(exposed.contains(name), "{RULES} uses {name}, not exposed");
    }
    let dashboard: Value = serde_json::from_str(&repo_file(DASHBOARD)).expect("dashboard JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(exprs.len() >= 20, "{exprs:?}");
    for expr in &exprs {
        let names = referenced_names(expr);
        assert!(
            !names.is_empty(),
            "a target without a raftmq metric: {expr}"
        );
        for name in names {
            assert!(exposed.contains(&name), "{DASHBOARD}: {expr} uses {name}");
        }
    }
    // Every alert the seed and the issue ask for.
    for alert in [
        "ConnectionSaturation",
        "QueueBacklog",
        "ClusterNodeDown",
        "SubscriptionMemory",
        "LeaseLost",
        "FollowerLag",
        "FsyncSlow",
    ] {
        assert!(rules.contains(&format!("alert: Raftmq{alert}")), "{alert}");
    }
}

#[test]
fn promtool_accepts_the_rules() {
    let has_promtool = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_promtool {
        eprintln!("promtool not installed (Debian package `prometheus`): checked by names only");
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(RULES);
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_log_tells_each_connection_lifecycle_event() {
    let broker = start_broker();
    let port = broker.port;
    // Connected, then a clean DISCONNECT.
    let (mut link, _) = Link::connect(port, connect_packet("log-clean", true, None), None)
        .await
        .expect("connect");
    link.disconnect().await;
    // Refused.
    let long = refuse_long_client_id(port).await;
    // Taken over: a second connection with the same id.
    let (_first, _) = Link::connect(port, connect_packet("log-twice", true, None), None)
        .await
        .expect("connect");
    let (_second, _) = Link::connect(port, connect_packet("log-twice", true, None), None)
        .await
        .expect("connect again");
    // Keepalive: 1 s and silence closes it after 1.5 s.
    let mut quiet = connect_packet("log-quiet", true, None);
    quiet.keep_alive = 1;
    let (_quiet, _) = Link::connect(port, quiet, None).await.expect("connect");

    let timeout = broker.wait_log("reason=\"keepalive_timeout\"", Duration::from_secs(10));
    assert!(timeout.contains("client=log-quiet"), "{timeout}");
    let taken = broker.wait_log("reason=\"taken_over\"", Duration::from_secs(10));
    assert!(taken.contains("client=log-twice"), "{taken}");
    let clean = broker.wait_log("reason=\"client_disconnect\"", Duration::from_secs(10));
    assert!(clean.contains("client=log-clean"), "{clean}");
    for line in [&timeout, &taken, &clean] {
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        assert!(line.contains("client disconnected"), "{line}");
    }
    let accepted = broker.wait_log("connection accepted", Duration::from_secs(10));
    assert!(accepted.contains("peer=127.0.0.1:"), "{accepted}");
    let connected = broker.wait_log("client connected client=log-clean", Duration::from_secs(10));
    assert!(connected.contains("peer=127.0.0.1:"), "{connected}");
    let refused = broker.wait_log("CONNECT refused", Duration::from_secs(10));
    assert!(
        refused.contains(&format!("client={long}"))
            && refused.contains("reason=\"client_identifier_not_valid\"")
            && refused.contains("peer=127.0.0.1:"),
        "{refused}"
    );
}

#[tokio::test]
async fn sys_topics_agree_with_the_metrics() {
    let broker = Broker::builder()
        .env("RAFTMQ_ADMIN_TOKEN", common::admin::TOKEN)
        .env("RAFTMQ_SYS_INTERVAL_SECS", "1")
        .start();
    let admin = Admin::new(admin_port(&broker));
    let (publisher, ev, _) = connect_v4(broker.port, "sys-pub", true).await;
    let _driver = drive(ev);
    for _ in 0..3 {
        publisher
            .publish("sys/t", QoS::AtLeastOnce, false, vec![b'z'; 7])
            .await
            .unwrap();
    }
    let (sub, mut ev, _) = connect_v4(broker.port, "sys-sub", true).await;
    sub.subscribe("$SYS/broker/publish/#", QoS::AtMostOnce)
        .await
        .unwrap();
    let topic = "$SYS/broker/publish/messages/received/qos1";
    let value = wait_for(&mut ev, topic, |p| match p {
        Packet::Publish(p) if p.topic == topic && &p.payload[..] == b"3" => Some(3.0),
        _ => None,
    })
    .await;
    let text = scrape(&admin).await;
    assert_eq!(
        sample(&text, "raftmq_messages_received_total{qos=\"1\"}"),
        Some(value),
        "{text}"
    );
    let bytes = wait_for(&mut ev, "publish/bytes/received", |p| match p {
        Packet::Publish(p) if p.topic == "$SYS/broker/publish/bytes/received" => {
            std::str::from_utf8(&p.payload).ok()?.parse::<f64>().ok()
        }
        _ => None,
    })
    .await;
    let total: f64 = (0..3)
        .filter_map(|q| {
            sample(
                &text,
                &format!("raftmq_payload_received_bytes_total{{qos=\"{q}\"}}"),
            )
        })
        .sum();
    assert_eq!((bytes, total), (21.0, 21.0));
}
