//! Backup and restore of a whole cluster: load a 3-node cluster (persistent sessions with
//! subscriptions, queued QoS 1 and QoS 2 messages and an unacknowledged in-flight one,
//! retained messages), take `raftmq ctl backup`, kill and delete the cluster, restore the
//! file into three new data directories (`raftmq restore`), start a cluster with other node
//! ids and ports on them, and check every session, message and retained message.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::admin::{ctl, stderr, stdout, Admin, TOKEN};
use common::cluster::{probe, reserve_ports, Cluster, Probe, ELECTION, SECRET};
use common::raw_v5::Raw;
use common::Broker;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use tokio::time::Instant;

const SUBSCRIBERS: usize = 4;
const RETAINED: usize = 3;
/// No session expires during the test.
const EXPIRY: u32 = 3600;

fn restore(file: &Path, dir: &Path, force: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftmq"));
    cmd.arg("restore").arg(file).arg("--data-dir").arg(dir);
    if force {
        cmd.arg("--force");
    }
    cmd.output().expect("run raftmq restore")
}

/// What each subscriber must find after the restore, as (topic, payload, qos) sets.
fn expected(i: usize) -> BTreeSet<(String, String, u8)> {
    let mut want = BTreeSet::from([
        (format!("data/{i}/a"), format!("q1-{i}-a"), 1),
        (format!("data/{i}/b"), format!("q1-{i}-b"), 1),
        ("all/x".to_owned(), "q2-all".to_owned(), 2),
    ]);
    if i == 0 {
        want.insert(("data/0/f".to_owned(), "inflight".to_owned(), 1));
    }
    want
}

/// Load the old cluster through its leader.
async fn load(port: u16) {
    for i in 0..SUBSCRIBERS {
        let (mut s, ack) = Raw::session(port, &format!("sub-{i}"), true, Some(EXPIRY)).await;
        assert!(!ack.session_present);
        s.sub(&format!("data/{i}/#"), QoS::AtLeastOnce).await;
        s.sub("all/+", QoS::ExactlyOnce).await;
        if i == 0 {
            // Left in flight: delivered, never acknowledged, the connection dropped.
            let (mut p, _) = Raw::session(port, "loader-f", true, None).await;
            p.publish_acked("data/0/f", 1, b"inflight").await;
            p.bye().await;
            let m = s.expect_publish().await;
            assert_eq!(&m.payload[..], b"inflight");
            drop(s);
        } else {
            s.bye().await;
        }
    }
    let (mut p, _) = Raw::session(port, "loader", true, None).await;
    let mut pkid = 1;
    for i in 0..SUBSCRIBERS {
        for leaf in ["a", "b"] {
            let payload = format!("q1-{i}-{leaf}");
            p.publish_acked(&format!("data/{i}/{leaf}"), pkid, payload.as_bytes())
                .await;
            pkid += 1;
        }
    }
    p.publish_exactly_once("all/x", pkid, b"q2-all").await;
    for k in 0..RETAINED {
        pkid += 1;
        let mut m = Publish::new(
            format!("retained/{k}"),
            QoS::AtLeastOnce,
            format!("kept-{k}"),
            None,
        );
        m.retain = true;
        m.pkid = pkid;
        p.send(Packet::Publish(m)).await;
        p.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
    }
    p.bye().await;
}

/// Resume each session on the new cluster and check it whole, then its subscriptions and
/// the retained messages.
async fn check(port: u16) {
    for i in 0..SUBSCRIBERS {
        let (mut s, ack) = Raw::session(port, &format!("sub-{i}"), false, Some(EXPIRY)).await;
        assert!(ack.session_present, "sub-{i}: session not present");
        let mut got = BTreeSet::new();
        for _ in 0..expected(i).len() {
            let m = s.expect_publish().await;
            let topic = String::from_utf8_lossy(&m.topic).into_owned();
            let payload = String::from_utf8_lossy(&m.payload).into_owned();
            if payload == "inflight" {
                assert!(m.dup, "the in-flight message is redelivered with DUP");
            }
            match m.qos {
                QoS::AtLeastOnce => s.puback(m.pkid).await,
                QoS::ExactlyOnce => {
                    s.pubrec(m.pkid).await;
                    s.expect("PUBREL", |p| matches!(p, Packet::PubRel(_)).then_some(()))
                        .await;
                    s.pubcomp(m.pkid).await;
                }
                QoS::AtMostOnce => panic!("sub-{i}: QoS 0 delivery of {payload}"),
            }
            got.insert((topic, payload, m.qos as u8));
        }
        assert_eq!(got, expected(i), "sub-{i}: queued messages");
        s.quiet(Duration::from_millis(300), "nothing more was queued")
            .await;
        // The subscriptions came back too.
        let (mut p, _) = Raw::session(port, &format!("new-pub-{i}"), true, None).await;
        p.publish_acked(&format!("data/{i}/new"), 1, b"fresh").await;
        p.bye().await;
        let m = s.expect_publish().await;
        assert_eq!(&m.payload[..], b"fresh");
        s.puback(m.pkid).await;
        s.bye().await;
    }
    let (mut r, _) = Raw::session(port, "retained-reader", true, None).await;
    r.sub("retained/#", QoS::AtLeastOnce).await;
    let mut kept = BTreeSet::new();
    for _ in 0..RETAINED {
        let m = r.expect_publish().await;
        assert!(m.retain);
        kept.insert(String::from_utf8_lossy(&m.payload).into_owned());
        r.puback(m.pkid).await;
    }
    let want: BTreeSet<String> = (0..RETAINED).map(|k| format!("kept-{k}")).collect();
    assert_eq!(kept, want);
    r.bye().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_destroy_restore_into_a_new_cluster() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cluster.backup");

    let mut old = Cluster::builder("backup_old")
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .start();
    let leader = old.leader().await;
    load(old.mqtt_port(leader)).await;
    // Asked of a follower: the 421 leader hint is followed.
    let follower = old.others(leader)[0];
    let out = ctl(
        old.node(follower).admin_port,
        Some(TOKEN),
        &["backup", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "ctl backup: {}", stderr(&out));
    assert!(stderr(&out).contains("not the leader"), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains(&format!("{} sessions", SUBSCRIBERS)),
        "{said}"
    );
    assert!(said.contains(&format!("{RETAINED} retained")), "{said}");
    for id in old.ids() {
        old.kill9(id);
    }
    drop(old);

    // A damaged file is refused before anything is written.
    let bytes = std::fs::read(&file).unwrap();
    let scratch = work.path().join("scratch");
    let cut = work.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let out = restore(&cut, &scratch, false);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    std::fs::write(&cut, &flipped).unwrap();
    let out = restore(&cut, &scratch, false);
    assert!(stderr(&out).contains("checksum"), "{}", stderr(&out));
    assert!(!scratch.exists(), "nothing is written for a bad file");

    // New ids, new ports, every member restored from the same file.
    let ids = [11u64, 12, 13];
    let ports = reserve_ports("backup_new", 9);
    let peers = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            format!(
                "{id}=127.0.0.1:{}/127.0.0.1:{}/127.0.0.1:{}",
                ports[3 * n],
                ports[3 * n + 1],
                ports[3 * n + 2]
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Broker> = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let dir = work.path().join(format!("new{id}"));
        let out = restore(&file, &dir, false);
        assert!(out.status.success(), "restore: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("{SUBSCRIBERS} sessions")),
            "{}",
            stdout(&out)
        );
        if n == 0 {
            let again = restore(&file, &dir, false);
            assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
            let forced = restore(&file, &dir, true);
            assert!(forced.status.success(), "{}", stderr(&forced));
        }
        let node = Broker::builder()
            .name(&format!("restored node {id}"))
            .standby()
            .dir(&dir)
            .mqtt_listen(&format!("127.0.0.1:{}", ports[3 * n + 1]))
            .arg("--node-id")
            .arg(&id.to_string())
            .arg("--raft-listen")
            .arg(&format!("127.0.0.1:{}", ports[3 * n]))
            .arg("--admin-listen")
            .arg(&format!("127.0.0.1:{}", ports[3 * n + 2]))
            .arg("--peers")
            .arg(&peers)
            .env("RAFTMQ_RAFT_SECRET", SECRET)
            .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
            .start();
        nodes.push(node);
    }
    let deadline = Instant::now() + ELECTION;
    let serving = loop {
        let mut found = None;
        for n in 0..ids.len() {
            if probe(ports[3 * n + 1]).await == Probe::Serving {
                found = Some(n);
                break;
            }
        }
        if let Some(n) = found {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the restored cluster elected no leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    check(ports[3 * serving + 1]).await;

    // The new cluster's membership is its own: nothing of the old one came along.
    let status = Admin::new(ports[3 * serving + 2]).status().await;
    let members: BTreeSet<u64> = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert_eq!(members, BTreeSet::from(ids));
    drop(nodes);
}
