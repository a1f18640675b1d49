//! Failover benchmark on a local 3-node cluster (three `raftmq` release processes on
//! 127.0.0.1).
//!
//! 1. Replicated QoS 1 throughput and PUBACK latency, one publisher, window 100 and 1000,
//!    next to the same figures on a single node measured in the same run (the method of
//!    `cargo bench --bench broker`: raw 3.1.1 over TCP, raftmq's codec, 64-byte payloads).
//! 2. kill -9 of the leader, at least 10 times, under a continuous QoS 1 load: a publisher
//!    with a persistent session that reconnects through every node's address (as a client
//!    given all of them would) and resends unacknowledged messages with DUP, and a
//!    persistent subscriber that follows the leader the same way. Per kill: the time from
//!    the kill to the first PUBACK from the new leader; then p50 and max. The killed node is
//!    restarted each time and waited for until it provably caught up. At the end the
//!    subscriber drains everything: acknowledged messages it never got are counted (must
//!    be 0).
//!
//! `cargo bench --bench failover [-- --quick] [-- --kills N] [-- --rate MSG_PER_S]`.
//! Raft timing comes from the broker's configuration, so it can be varied through the
//! environment: `RAFTMQ_RAFT_HEARTBEAT_MS`, `RAFTMQ_RAFT_ELECTION_TIMEOUT_MIN_MS`,
//! `RAFTMQ_RAFT_ELECTION_TIMEOUT_MAX_MS`, `RAFTMQ_RAFT_LEASE_MS` (every node inherits it).

#[path = "../tests/common/mod.rs"]
mod common;
mod load;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{connect_any, connect_packet, Cluster, Link, ELECTION};
use common::Broker;
use load::{qos1, Qos1Result};
use rumqttc::v5::mqttbytes::v5::{Filter, Packet as P5, PubAck, Publish as Publish5, Subscribe};
use rumqttc::v5::mqttbytes::QoS as Q5;

const TOPIC: &str = "fo/stream";

// ---- throughput (the method of benches/broker.rs) --------------------------------------

async fn throughput(port: u16, n: usize) -> (Qos1Result, Qos1Result) {
    let narrow = qos1(port, n, 100, None).await;
    let wide = qos1(port, n, 1000, None).await;
    (narrow, wide)
}

// ---- failover under load ----------------------------------------------------------------

/// A connection the publisher made, and when its first PUBACK came.
#[derive(Clone, Debug)]
struct Session {
    port: u16,
    at: Instant,
    first_ack: Option<Instant>,
}

#[derive(Default)]
struct PubState {
    /// Numbers acknowledged (PUBACK).
    acked: BTreeSet<u32>,
    /// The next number to be sent.
    next: u32,
    sessions: Vec<Session>,
    stop: bool,
    /// The publisher gave up (no node served for too long).
    failed: Option<String>,
    finished: bool,
}

type Shared<T> = Arc<Mutex<T>>;

fn publish5(seq: u32, pkid: u16, dup: bool) -> P5 {
    let mut p = Publish5::new(TOPIC, Q5::AtLeastOnce, seq.to_string().into_bytes(), None);
    p.pkid = pkid;
    p.dup = dup;
    P5::Publish(p)
}

/// The continuous QoS 1 publisher: `rate` messages per second, at most `window` in flight,
/// a persistent session resumed on whichever node serves (unacknowledged messages resent
/// with DUP and the same packet id). Stops sending new messages when told, then waits for
/// the outstanding ones.
async fn publisher(ports: Vec<u16>, rate: u32, window: usize, state: Shared<PubState>) {
    let mut inflight: Vec<(u16, u32)> = Vec::new();
    let mut free: Vec<u16> = (1..=window as u16).rev().collect();
    let mut next = 0u32;
    let mut connects = 0usize;
    let start = Instant::now();
    'session: loop {
        let Some((mut link, ack)) = connect_any(
            &ports,
            &connect_packet("fo-pub", connects == 0, Some(3600)),
            None,
            Duration::from_secs(30),
        )
        .await
        else {
            state.lock().unwrap().failed = Some("no node served the publisher for 30 s".into());
            return;
        };
        if connects > 0 && !ack.session_present {
            state.lock().unwrap().failed = Some("publisher session lost".into());
            return;
        }
        connects += 1;
        state.lock().unwrap().sessions.push(Session {
            port: link.port,
            at: Instant::now(),
            first_ack: None,
        });
        for &(pkid, seq) in &inflight {
            if !link.send(publish5(seq, pkid, true)).await {
                continue 'session;
            }
        }
        let mut last_heard = Instant::now();
        loop {
            let stop = state.lock().unwrap().stop;
            if stop && inflight.is_empty() {
                link.disconnect().await;
                state.lock().unwrap().finished = true;
                return;
            }
            // Send what is due.
            let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u32;
            while !stop && next < due && !free.is_empty() {
                let pkid = free.pop().unwrap();
                inflight.push((pkid, next));
                next += 1;
                state.lock().unwrap().next = next;
                if !link.send(publish5(next - 1, pkid, false)).await {
                    continue 'session;
                }
            }
            let wait = Duration::from_millis(2);
            match link.read(wait).await {
                Ok(P5::PubAck(a)) => {
                    last_heard = Instant::now();
                    if let Some(i) = inflight.iter().position(|e| e.0 == a.pkid) {
                        let (pkid, seq) = inflight.remove(i);
                        free.push(pkid);
                        let mut s = state.lock().unwrap();
                        s.acked.insert(seq);
                        if let Some(sess) = s.sessions.last_mut() {
                            sess.first_ack.get_or_insert(last_heard);
                        }
                    }
                }
                Ok(_) => last_heard = Instant::now(),
                Err(common::cluster::NoPacket::Closed) => continue 'session,
                Err(common::cluster::NoPacket::Silent) => {
                    if !inflight.is_empty() && last_heard.elapsed() > Duration::from_secs(5) {
                        continue 'session;
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct SubState {
    seen: BTreeSet<u32>,
    deliveries: u64,
    connects: usize,
    failed: Option<String>,
}

/// The persistent subscriber: follows the leader, acknowledges everything, records numbers.
async fn subscriber(ports: Vec<u16>, mut link: Link, state: Shared<SubState>, quit: Shared<bool>) {
    loop {
        match link.read(Duration::from_millis(200)).await {
            Ok(P5::Publish(p)) => {
                let _ = link.send(P5::PubAck(PubAck::new(p.pkid, None))).await;
                let seq: u32 = std::str::from_utf8(&p.payload)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("a sequence number");
                let mut s = state.lock().unwrap();
                s.seen.insert(seq);
                s.deliveries += 1;
            }
            Ok(_) => {}
            Err(common::cluster::NoPacket::Silent) => {}
            Err(common::cluster::NoPacket::Closed) => {
                let Some((l, ack)) = connect_any(
                    &ports,
                    &connect_packet("fo-sub", false, Some(3600)),
                    None,
                    Duration::from_secs(30),
                )
                .await
                else {
                    state.lock().unwrap().failed = Some("no node served the subscriber".into());
                    return;
                };
                if !ack.session_present {
                    state.lock().unwrap().failed = Some("subscriber session lost".into());
                    return;
                }
                link = l;
                state.lock().unwrap().connects += 1;
            }
        }
        if *quit.lock().unwrap() {
            return;
        }
    }
}

/// Wait until `cond` holds, polling every 5 ms; false after `timeout`.
async fn until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

struct Kill {
    old: u64,
    new: Option<u64>,
    ms: Option<f64>,
    /// From the kill to the new leader's `leader: serving MQTT` log line.
    serving_ms: Option<f64>,
}

/// Seconds since midnight UTC now.
fn utc_day_secs() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    (d.as_secs() % 86_400) as f64 + f64::from(d.subsec_micros()) / 1e6
}

/// Seconds since midnight UTC of a log line's timestamp (`2026-01-01T04:23:18.472344Z ...`).
fn line_day_secs(line: &str) -> Option<f64> {
    let t = line
        .split_whitespace()
        .next()?
        .split('T')
        .nth(1)?
        .trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn arg_value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let kills: usize = arg_value("--kills")
        .map(|v| v.parse().expect("--kills N"))
        .unwrap_or(10);
    let rate: u32 = arg_value("--rate")
        .map(|v| v.parse().expect("--rate MSG_PER_S"))
        .unwrap_or(1000);
    let n = if quick { 20_000 } else { 100_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The figures printed are the ones in force: the environment's, or the broker's defaults.
    let defaults = raftmq::config::Config::default().raft;
    let timing = format!(
        "heartbeat {} ms, election timeout {}-{} ms, lease {} ms",
        env_or(
            "RAFTMQ_RAFT_HEARTBEAT_MS",
            &format!("{} (default)", defaults.heartbeat_ms)
        ),
        env_or(
            "RAFTMQ_RAFT_ELECTION_TIMEOUT_MIN_MS",
            &defaults.election_timeout_min_ms.to_string()
        ),
        env_or(
            "RAFTMQ_RAFT_ELECTION_TIMEOUT_MAX_MS",
            &format!("{} (default)", defaults.election_timeout_max_ms)
        ),
        env_or(
            "RAFTMQ_RAFT_LEASE_MS",
            &format!("{} (default)", defaults.lease_ms)
        ),
    );
    eprintln!("raft timing: {timing}");

    // Single node, same run, same method.
    let single = {
        let b = Broker::builder()
            .env("RAFTMQ_SYS_INTERVAL_SECS", "0")
            .start();
        eprintln!("[1 node] QoS 1 throughput, {n} messages, window 100 and 1000");
        let r = rt.block_on(throughput(b.port, n));
        drop(b);
        r
    };

    let mut c = Cluster::builder("failover-bench")
        .env("RAFTMQ_SYS_INTERVAL_SECS", "0")
        // The subscriber drains everything at the end: nothing may be dropped on the way.
        .env("RAFTMQ_LIMITS_MAX_QUEUED_MESSAGES", "10000000")
        .env("RAFTMQ_LIMITS_MAX_INFLIGHT", "100")
        .start();
    let replicated = rt.block_on(async {
        let leader = c.leader().await;
        eprintln!(
            "[3 nodes] QoS 1 throughput on leader node {leader}, {n} messages, window 100 and 1000"
        );
        throughput(c.mqtt_port(leader), n).await
    });

    let results = rt.block_on(failovers(&mut c, kills, rate));
    drop(c);

    println!();
    println!("## Replicated QoS 1 (one publisher, 64-byte payloads, {n} messages)");
    println!();
    println!("| figure | 1 node | 3 nodes | 3 / 1 |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!("| {name} | {a:.1} {unit} | {b:.1} {unit} | {:.2}x |", b / a)
    };
    let (s100, s1000) = single;
    let (r100, r1000) = replicated;
    row("throughput, window 100", s100.rate, r100.rate, "msg/s");
    row("PUBACK p50, window 100", s100.p50_ms, r100.p50_ms, "ms");
    row("PUBACK p99, window 100", s100.p99_ms, r100.p99_ms, "ms");
    row("throughput, window 1000", s1000.rate, r1000.rate, "msg/s");
    row("PUBACK p50, window 1000", s1000.p50_ms, r1000.p50_ms, "ms");
    row("PUBACK p99, window 1000", s1000.p99_ms, r1000.p99_ms, "ms");
    println!();

    let Failovers {
        kills: list,
        acked,
        lost,
        redelivered,
        pub_failed,
        sub_failed,
    } = results;
    println!("## Failover: kill -9 of the leader under QoS 1 load ({rate} msg/s; {timing})");
    println!();
    println!("| kill | old leader | new leader | kill -> new leader serves (its log) | kill -> first PUBACK from the new leader |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (i, k) in list.iter().enumerate() {
        let new = k.new.map_or("-".to_owned(), |n| n.to_string());
        let ms =
            k.ms.map_or("none within 30 s".to_owned(), |ms| format!("{ms:.0} ms"));
        let serving = k
            .serving_ms
            .map_or("-".to_owned(), |ms| format!("{ms:.0} ms"));
        println!("| {} | {} | {new} | {serving} | {ms} |", i + 1, k.old);
    }
    let mut times: Vec<f64> = list.iter().filter_map(|k| k.ms).collect();
    times.sort_by(f64::total_cmp);
    println!();
    if times.is_empty() {
        println!("no failover completed");
    } else {
        println!(
            "failover (kill -> first PUBACK): p50 {:.0} ms, max {:.0} ms over {} kills (target: p50 < 1500 ms)",
            percentile(&times, 0.5),
            times[times.len() - 1],
            times.len()
        );
    }
    println!(
        "acknowledged: {acked}; acknowledged but lost: {lost} (must be 0); delivered more than once (QoS 1, allowed): {redelivered}"
    );
    if let Some(e) = pub_failed {
        println!("publisher failed: {e}");
    }
    if let Some(e) = sub_failed {
        println!("subscriber failed: {e}");
    }
    let incomplete = times.len() < list.len();
    if lost > 0 || incomplete {
        std::process::exit(1);
    }
}

struct Failovers {
    kills: Vec<Kill>,
    acked: usize,
    lost: usize,
    redelivered: u64,
    pub_failed: Option<String>,
    sub_failed: Option<String>,
}

async fn failovers(c: &mut Cluster, kills: usize, rate: u32) -> Failovers {
    let ports = c.mqtt_ports();
    let leader = c.leader().await;
    let (mut sub, _) = Link::connect(
        c.mqtt_port(leader),
        connect_packet("fo-sub", true, Some(3600)),
        None,
    )
    .await
    .expect("subscriber connects");
    let sent = sub
        .send(P5::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![Filter::new("fo/#", Q5::AtLeastOnce)],
            properties: None,
        }))
        .await;
    assert!(sent, "subscriber connection lost");
    match sub.read(Duration::from_secs(10)).await {
        Ok(P5::SubAck(_)) => {}
        other => panic!("expected SUBACK, got {other:?}"),
    }
    let sub_state: Shared<SubState> = Arc::default();
    let quit: Shared<bool> = Arc::default();
    let sub_task = tokio::spawn(subscriber(
        ports.clone(),
        sub,
        sub_state.clone(),
        quit.clone(),
    ));
    let pub_state: Shared<PubState> = Arc::default();
    let pub_task = tokio::spawn(publisher(ports.clone(), rate, 100, pub_state.clone()));

    let mut list = Vec::new();
    for k in 0..kills {
        if pub_state.lock().unwrap().failed.is_some() {
            break;
        }
        // Steady state: the publisher acknowledged on the leader, 300 messages in a row.
        let leader = c.leader().await;
        let leader_port = c.mqtt_port(leader);
        let base = pub_state.lock().unwrap().acked.len();
        let steady = until(Duration::from_secs(30), || {
            let s = pub_state.lock().unwrap();
            s.sessions.last().is_some_and(|x| x.port == leader_port) && s.acked.len() >= base + 300
        })
        .await;
        if !steady {
            eprintln!(
                "kill {}: the publisher made no progress on node {leader}",
                k + 1
            );
            break;
        }
        let killed_at = Instant::now();
        let killed_day = utc_day_secs();
        c.kill9(leader);
        let mut first: Option<(u64, f64)> = None;
        until(Duration::from_secs(30), || {
            let s = pub_state.lock().unwrap();
            first = s
                .sessions
                .iter()
                .filter(|x| x.at > killed_at && x.port != leader_port)
                .find_map(|x| {
                    let t = x.first_ack?;
                    Some((
                        c.id_of_port(x.port),
                        t.duration_since(killed_at).as_secs_f64() * 1000.0,
                    ))
                });
            first.is_some()
        })
        .await;
        // When the new leader started serving, from its own log.
        let serving_ms = first.and_then(|(n, _)| {
            let log = c.log(n);
            let line = log
                .lines()
                .rev()
                .find(|l| l.contains("leader: serving MQTT") || l.contains("serving MQTT again"))?;
            Some((line_day_secs(line)? - killed_day) * 1000.0)
        });
        eprintln!(
            "kill {}: node {leader} -> {} (serving after {})",
            k + 1,
            first.map_or("no PUBACK within 30 s".to_owned(), |(n, ms)| format!(
                "node {n}, first PUBACK after {ms:.0} ms"
            )),
            serving_ms.map_or("?".to_owned(), |ms| format!("{ms:.0} ms"))
        );
        list.push(Kill {
            old: leader,
            new: first.map(|f| f.0),
            ms: first.map(|f| f.1),
            serving_ms,
        });
        let Some((new_leader, _)) = first else {
            break;
        };

        // Three again: restart the killed node and wait until it caught up.
        c.restart(leader);
        catch_up(c, leader, new_leader, &pub_state).await;
    }

    // Drain: stop publishing, wait for the outstanding acks, then for the subscriber to
    // have every acknowledged number (or for it to stop receiving).
    pub_state.lock().unwrap().stop = true;
    until(Duration::from_secs(30), || {
        let s = pub_state.lock().unwrap();
        s.finished || s.failed.is_some()
    })
    .await;
    let acked = pub_state.lock().unwrap().acked.clone();
    let mut last = (0usize, Instant::now());
    until(Duration::from_secs(120), || {
        let s = sub_state.lock().unwrap();
        if acked.iter().all(|a| s.seen.contains(a)) {
            return true;
        }
        if s.seen.len() != last.0 {
            last = (s.seen.len(), Instant::now());
        }
        // Stop after 15 s without anything new, or if the subscriber gave up.
        last.1.elapsed() > Duration::from_secs(15) || s.failed.is_some()
    })
    .await;
    *quit.lock().unwrap() = true;
    let _ = sub_task.await;
    pub_task.abort();
    let s = sub_state.lock().unwrap();
    let lost = acked.iter().filter(|a| !s.seen.contains(a)).count();
    let p = pub_state.lock().unwrap();
    Failovers {
        kills: list,
        acked: acked.len(),
        lost,
        redelivered: s.deliveries - s.seen.len() as u64,
        pub_failed: p.failed.clone(),
        sub_failed: s.failed.clone(),
    }
}

/// Wait until the restarted node `node` caught up with `leader`: it refers clients to the
/// leader (the leader's replication reaches it), and then a message sent while the other
/// follower is SIGSTOPped is acknowledged: that commit needed `node`, so its log holds
/// everything before it.
async fn catch_up(c: &mut Cluster, node: u64, leader: u64, pub_state: &Shared<PubState>) {
    c.wait_follower_of(node, leader, ELECTION).await;
    let other = c
        .others(leader)
        .into_iter()
        .find(|id| *id != node)
        .expect("a third node");
    let started = Instant::now();
    c.stop(other);
    let sent_from = pub_state.lock().unwrap().next;
    let ok = until(Duration::from_secs(10), || {
        let s = pub_state.lock().unwrap();
        s.acked.range(sent_from..).next().is_some()
    })
    .await;
    c.cont(other);
    if ok {
        eprintln!(
            "  node {node} caught up (a commit with node {other} stopped took {:.0} ms)",
            started.elapsed().as_secs_f64() * 1000.0
        );
    } else {
        eprintln!("  node {node} did not prove it caught up within 10 s");
    }
}
