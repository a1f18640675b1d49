//! The incident of `shared/context/001`, reproduced on one node with its default limits:
//! 100 well-behaved sessions publish QoS 1 at a steady rate (each from its own loopback
//! address, as devices behind different IPs); after a baseline, a storm hits: a connection
//! flood from one address (tens of thousands of connects), a client id flapping in a tight
//! loop, and an auth hammer (wrong passwords for one user name). Prints the storm's answers
//! by kind, the broker's refusal counters from `/metrics`, and the well-behaved sessions'
//! PUBACK p50/p99 before and during the storm (target: p99 during within 2x of before).
//!
//! `cargo bench --bench storm` (about a minute).

mod load;

#[path = "storm/attack.rs"]
mod attack;

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use load::server::{free_port, wait_serving, Process};
use load::{next_frame, publish, Conn, PAYLOAD};
use parking_lot::Mutex;
use raftmq::codec::{Codec, Protocol};
use raftmq_raft::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep_until, Instant};

/// Well-behaved sessions, and how often each publishes.
const SESSIONS: usize = 100;
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
const WARMUP: Duration = Duration::from_secs(3);
const BASELINE: Duration = Duration::from_secs(12);
const STORM: Duration = Duration::from_secs(25);
/// The flood stops after this many connects even if the storm lasts longer.
const FLOOD_MAX: u64 = 40_000;

/// Where each party connects from.
const FLOOD_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 1);
const FLAPPER_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 2);
const HAMMER_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 3);

fn session_from(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, 1 + i as u8)
}

struct Server {
    /// Killed when the server is dropped.
    _process: Process,
    port: u16,
    admin_port: u16,
    _dir: tempfile::TempDir,
}

/// One node with every limit at its default, a password file holding `alice`, and
/// anonymous clients allowed (the well-behaved sessions and the flood have no user name).
fn start_raftmq() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwords = dir.path().join("passwd");
    let status = Command::new(env!("CARGO_BIN_EXE_raftmq"))
        .args(["passwd", "-c", "-b"])
        .arg(&passwords)
        .args(["alice", "the-right-one"])
        .status()
        .expect("run raftmq passwd");
    assert!(status.success(), "raftmq passwd failed");
    let port = free_port();
    let admin_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftmq"))
        .args([
            "serve",
            "--mqtt-listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin_port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("RAFTMQ_AUTH_PASSWORD_FILE", &passwords)
        .env("RAFTMQ_AUTH_ALLOW_ANONYMOUS", "true")
        .env("RUST_LOG", "warn,raftmq::cluster=info")
        .env("RAFTMQ_SYS_INTERVAL_SECS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start raftmq");
    wait_serving(&mut child);
    Server {
        _process: Process(child),
        port,
        admin_port,
        _dir: dir,
    }
}

/// PUBACK latencies (µs), by when the PUBLISH was sent (µs since the origin).
#[derive(Default)]
struct Samples {
    acks: Mutex<Vec<(u64, u64)>>,
    /// Sessions whose connection the broker closed.
    lost: AtomicU64,
}

impl Samples {
    /// p50 and p99 (ms) of the PUBLISHes sent within `[from, to)` µs.
    fn percentiles(&self, from: u64, to: u64) -> (usize, f64, f64) {
        let mut v: Vec<u64> = self
            .acks
            .lock()
            .iter()
            .filter(|(sent, _)| (from..to).contains(sent))
            .map(|(_, latency)| *latency)
            .collect();
        if v.is_empty() {
            return (0, f64::NAN, f64::NAN);
        }
        v.sort_unstable();
        let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0;
        (v.len(), pct(0.50), pct(0.99))
    }
}

/// One well-behaved session: a QoS 1 PUBLISH every `PUBLISH_EVERY` until `stop`, each
/// PUBACK's latency recorded.
async fn session(port: u16, i: usize, origin: Instant, stop: Arc<AtomicBool>, s: Arc<Samples>) {
    let conn = Conn::open_from(port, &format!("device-{i}"), session_from(i)).await;
    let Conn {
        stream, mut rbuf, ..
    } = conn;
    let (mut rd, mut wr) = stream.into_split();
    let sent_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..=u16::MAX).map(|_| AtomicU64::new(0)).collect());
    let writer = {
        let sent_at = sent_at.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut enc = Codec::new(1 << 20);
            enc.set_protocol(Protocol::V4);
            let payload = Bytes::from(vec![b'x'; PAYLOAD]);
            let topic = format!("devices/{i}/telemetry");
            // Spread the sessions over the period so the load is steady.
            let mut due = Instant::now() + PUBLISH_EVERY.mul_f64(i as f64 / SESSIONS as f64);
            let mut id: u16 = 0;
            while !stop.load(Ordering::Relaxed) {
                sleep_until(due).await;
                due += PUBLISH_EVERY;
                id = id.checked_add(1).unwrap_or(1);
                let mut out = BytesMut::new();
                enc.encode(&publish(&topic, QoS::AtLeastOnce, id, &payload), &mut out)
                    .expect("encode");
                sent_at[usize::from(id)]
                    .store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
                if wr.write_all(&out).await.is_err() {
                    return;
                }
            }
            // Keep the write half open until the reader is done.
            std::future::pending::<()>().await;
        })
    };
    while !stop.load(Ordering::Relaxed) {
        if let Some(f) = next_frame(&mut rbuf) {
            if f.kind == 4 && f.body.len() >= 2 {
                let id = u16::from_be_bytes([f.body[0], f.body[1]]);
                let sent = sent_at[usize::from(id)].load(Ordering::Relaxed);
                let now = origin.elapsed().as_micros() as u64;
                s.acks.lock().push((sent, now.saturating_sub(sent)));
            }
            continue;
        }
        let read = tokio::time::timeout(Duration::from_millis(500), rd.read_buf(&mut rbuf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            s.lost.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
    writer.abort();
}

/// The refusal and connection counters of the broker's `/metrics`.
async fn door_metrics(admin_port: u16) -> Vec<String> {
    let url = format!("http://127.0.0.1:{admin_port}/metrics");
    let text = match reqwest::get(&url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => return vec![format!("/metrics unavailable: {e}")],
    };
    let wanted = [
        "refused",
        "rate",
        "ban",
        "flap",
        "auth",
        "connections",
        "clients",
    ];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| wanted.iter().any(|w| l.contains(w)))
        .map(str::to_owned)
        .collect()
}

fn main() {
    let server = start_raftmq();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(measure(&server));
}

async fn measure(server: &Server) {
    let port = server.port;
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Samples::default());
    let mut sessions = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        sessions.push(tokio::spawn(session(
            port,
            i,
            origin,
            stop.clone(),
            samples.clone(),
        )));
    }
    println!(
        "{SESSIONS} sessions publishing QoS 1 every {} ms each; baseline {} s, storm {} s",
        PUBLISH_EVERY.as_millis(),
        BASELINE.as_secs(),
        STORM.as_secs()
    );
    let baseline_from = origin + WARMUP;
    let storm_from = baseline_from + BASELINE;
    let storm_until = storm_from + STORM;
    sleep_until(storm_from).await;
    println!(
        "storm: flood from {FLOOD_FROM}, flapper from {FLAPPER_FROM}, hammer from {HAMMER_FROM}"
    );
    // The attackers get their own thread and runtime, so their work does not delay the
    // well-behaved sessions' reads in this process: what is measured is the broker.
    let storm = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("attackers' runtime");
        rt.block_on(async {
            tokio::join!(
                attack::flood(port, FLOOD_FROM, storm_until, FLOOD_MAX),
                attack::flapper(port, FLAPPER_FROM, storm_until),
                attack::hammer(port, HAMMER_FROM, storm_until),
            )
        })
    });
    let (flood, flapper, hammer) = match tokio::task::spawn_blocking(move || storm.join()).await {
        Ok(Ok(t)) => t,
        _ => panic!("the attackers failed"),
    };
    let storm_ended = Instant::now();
    stop.store(true, Ordering::Relaxed);
    for s in sessions {
        let _ = s.await;
    }

    println!("storm answers (as the attackers saw them):");
    flood.print("connection flood");
    flapper.print("flapping client id");
    hammer.print("auth hammer (wrong passwords for alice)");
    println!("broker /metrics:");
    for line in door_metrics(server.admin_port).await {
        println!("  {line}");
    }

    let us = |t: Instant| t.duration_since(origin).as_micros() as u64;
    let (n0, p50_0, p99_0) = samples.percentiles(us(baseline_from), us(storm_from));
    let (n1, p50_1, p99_1) = samples.percentiles(us(storm_from), us(storm_ended));
    let lost = samples.lost.load(Ordering::Relaxed);
    println!("well-behaved sessions' PUBACK latency:");
    println!("  before the storm: {n0:>6} acks  p50 {p50_0:>7.2} ms  p99 {p99_0:>7.2} ms");
    println!("  during the storm: {n1:>6} acks  p50 {p50_1:>7.2} ms  p99 {p99_1:>7.2} ms");
    let ratio = p99_1 / p99_0;
    let verdict = if ratio <= 2.0 { "within" } else { "OVER" };
    println!("  p99 during / before: {ratio:.2} ({verdict} the 2x target)");
    println!("  sessions that lost their connection: {lost} of {SESSIONS}");
}
