//! Side-by-side benchmark: raftmq and Mosquitto (Debian's package), started by this program
//! on loopback in the same run, driven by the same load generator (raw MQTT 3.1.1 over TCP,
//! using raftmq's codec). Prints each figure and the ratio: QoS 1 throughput and PUBACK
//! latency, end-to-end latency at a fixed rate, QoS 0 fan-in and fan-out, connect rate, RSS
//! per idle connection, and raftmq's replicated QoS 1 on a local 3-node cluster.
//!
//! `cargo bench --bench broker` (add `-- --quick` for a shorter run, `-- --idle N` for the
//! number of idle connections; default 19000, under the 20,000 open files a process may
//! have here). See BENCHMARKS.md.

#[path = "load/clients.rs"]
mod clients;
#[path = "../tests/common/mod.rs"]
mod common;
mod load;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use load::server::{free_port, wait_serving, Process};
use load::{publish, qos1, Conn, PAYLOAD};
use raftmq_raft::QoS;
use tokio::io::AsyncWriteExt;

struct Server {
    name: &'static str,
    child: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

fn start_raftmq() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftmq"))
        .args([
            "serve",
            "--mqtt-listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn,raftmq::cluster=info")
        .env("RAFTMQ_SYS_INTERVAL_SECS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start raftmq");
    wait_serving(&mut child);
    Server {
        name: "raftmq",
        child: Process(child),
        port,
        _dir: dir,
    }
}

fn start_mosquitto() -> Option<Server> {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    let mut f = std::fs::File::create(&conf).expect("conf");
    writeln!(
        f,
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type none"
    )
    .expect("write conf");
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Server {
        name: "mosquitto",
        child: Process(child),
        port,
        _dir: dir,
    })
}

/// QoS 0: `pubs` publishers to `subs` subscribers; returns messages received per second
/// over all subscribers.
async fn qos0(port: u16, pubs: usize, subs: usize, per_pub: usize) -> f64 {
    let mut readers = Vec::new();
    let expected = pubs * per_pub;
    for s in 0..subs {
        let mut c = Conn::open(port, &format!("bench-sub-{s}")).await;
        c.subscribe("bench/q0/#", QoS::AtMostOnce).await;
        readers.push(tokio::spawn(async move {
            let mut n = 0usize;
            let mut first = None;
            let mut last = Instant::now();
            loop {
                match tokio::time::timeout(Duration::from_secs(2), c.recv()).await {
                    Ok(Some(f)) if f.kind == 3 => {
                        n += 1;
                        last = Instant::now();
                        first.get_or_insert(last);
                        if n == expected {
                            break;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            (n, first.map(|f| last.duration_since(f)).unwrap_or_default())
        }));
    }
    let payload = Bytes::from(vec![b'x'; PAYLOAD]);
    let mut writers = Vec::new();
    for p in 0..pubs {
        let mut c = Conn::open(port, &format!("bench-pub-{p}")).await;
        let payload = payload.clone();
        writers.push(tokio::spawn(async move {
            let mut out = BytesMut::new();
            let topic = format!("bench/q0/{p}");
            for _ in 0..per_pub {
                c.codec
                    .encode(&publish(&topic, QoS::AtMostOnce, 0, &payload), &mut out)
                    .expect("encode");
                if out.len() > 16 * 1024 {
                    c.stream.write_all(&out).await.expect("write");
                    out.clear();
                }
            }
            c.stream.write_all(&out).await.expect("write");
            c
        }));
    }
    let mut keep = Vec::new();
    for w in writers {
        keep.push(w.await.expect("publisher"));
    }
    let mut total = 0usize;
    let mut longest = Duration::ZERO;
    for r in readers {
        let (n, d) = r.await.expect("subscriber");
        total += n;
        longest = longest.max(d);
    }
    drop(keep);
    total as f64 / longest.as_secs_f64().max(1e-3)
}

struct Figures {
    e2e_p50: f64,
    e2e_p99: f64,
    connects: f64,
    idle_bytes: f64,
    q1_wide_rate: f64,
    q1_wide_p50: f64,
    q1_wide_p99: f64,
    q1_rate: f64,
    q1_p50: f64,
    q1_p99: f64,
    fixed_p50: f64,
    fixed_p99: f64,
    fan_in: f64,
    fan_out: f64,
}

async fn measure(s: &Server, quick: bool, idle: usize) -> Figures {
    let n = if quick { 20_000 } else { 100_000 };
    eprintln!("[{}] QoS 1 throughput, {n} messages, window 100", s.name);
    let q1 = qos1(s.port, n, 100, None).await;
    eprintln!("[{}] QoS 1 throughput, {n} messages, window 1000", s.name);
    let wide = qos1(s.port, n, 1000, None).await;
    let secs = if quick { 2 } else { 5 };
    eprintln!("[{}] QoS 1 at 5000 msg/s for {secs} s", s.name);
    let fixed = qos1(s.port, 5000 * secs, 1000, Some(5000)).await;
    eprintln!("[{}] QoS 0 fan-in 4 -> 1", s.name);
    let fan_in = qos0(s.port, 4, 1, n / 4).await;
    eprintln!("[{}] QoS 0 fan-out 1 -> 4", s.name);
    let fan_out = qos0(s.port, 1, 4, n / 4).await;
    eprintln!("[{}] end to end, QoS 1 at 2000 msg/s for {secs} s", s.name);
    let e2e = clients::end_to_end(s.port, 2000, 2000 * secs).await;
    let total = if quick { 2_000 } else { 10_000 };
    eprintln!(
        "[{}] connect rate, {total} connections, 50 at a time",
        s.name
    );
    let connects = clients::connect_rate(s.port, total, 50).await;
    eprintln!("[{}] RSS of {idle} idle connections", s.name);
    let (pid, port) = (s.child.0.id(), s.port);
    let idle_bytes =
        tokio::task::spawn_blocking(move || clients::idle_rss_per_connection(pid, port, idle, 2))
            .await
            .expect("idle measurement");
    Figures {
        e2e_p50: e2e.p50_ms,
        e2e_p99: e2e.p99_ms,
        connects,
        idle_bytes,
        q1_wide_rate: wide.rate,
        q1_wide_p50: wide.p50_ms,
        q1_wide_p99: wide.p99_ms,
        q1_rate: q1.rate,
        q1_p50: q1.p50_ms,
        q1_p99: q1.p99_ms,
        fixed_p50: fixed.p50_ms,
        fixed_p99: fixed.p99_ms,
        fan_in,
        fan_out,
    }
}

/// raftmq's replicated QoS 1 on a local 3-node cluster: (window 100, window 1000).
async fn replicated(n: usize) -> (load::Qos1Result, load::Qos1Result) {
    let cluster = common::cluster::Cluster::builder("bench-broker-3").start();
    let leader = cluster.leader().await;
    let port = cluster.mqtt_port(leader);
    eprintln!("[raftmq x3] QoS 1 throughput, {n} messages, window 100");
    let narrow = qos1(port, n, 100, None).await;
    eprintln!("[raftmq x3] QoS 1 throughput, {n} messages, window 1000");
    let wide = qos1(port, n, 1000, None).await;
    (narrow, wide)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(clients::IDLE_CHILD) {
        clients::idle_child(&args[2..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let idle = args
        .iter()
        .position(|a| a == "--idle")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(19_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let raftmq = start_raftmq();
    let ours = rt.block_on(measure(&raftmq, quick, idle));
    drop(raftmq);
    let theirs = start_mosquitto().map(|m| rt.block_on(measure(&m, quick, idle)));
    let (r3, r3_wide) = rt.block_on(replicated(if quick { 20_000 } else { 100_000 }));
    if theirs.is_none() {
        eprintln!("mosquitto not found (apt-get install mosquitto): raftmq figures only");
    }
    println!();
    println!("| figure | raftmq (fsynced, Raft) | mosquitto (persistence off) | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |name: &str, a: f64, b: Option<f64>, unit: &str| match b {
        Some(b) => println!("| {name} | {a:.1} {unit} | {b:.1} {unit} | {:.2}x |", a / b),
        None => println!("| {name} | {a:.1} {unit} | - | - |"),
    };
    let t = theirs.as_ref();
    row(
        "QoS 1 throughput, 1 publisher, window 100",
        ours.q1_rate,
        t.map(|f| f.q1_rate),
        "msg/s",
    );
    row(
        "QoS 1 PUBACK p50 (max throughput)",
        ours.q1_p50,
        t.map(|f| f.q1_p50),
        "ms",
    );
    row(
        "QoS 1 PUBACK p99 (max throughput)",
        ours.q1_p99,
        t.map(|f| f.q1_p99),
        "ms",
    );
    row(
        "QoS 1 throughput, 1 publisher, window 1000",
        ours.q1_wide_rate,
        t.map(|f| f.q1_wide_rate),
        "msg/s",
    );
    row(
        "QoS 1 PUBACK p50 (window 1000)",
        ours.q1_wide_p50,
        t.map(|f| f.q1_wide_p50),
        "ms",
    );
    row(
        "QoS 1 PUBACK p99 (window 1000)",
        ours.q1_wide_p99,
        t.map(|f| f.q1_wide_p99),
        "ms",
    );
    row(
        "QoS 1 PUBACK p50 at 5k msg/s",
        ours.fixed_p50,
        t.map(|f| f.fixed_p50),
        "ms",
    );
    row(
        "QoS 1 PUBACK p99 at 5k msg/s",
        ours.fixed_p99,
        t.map(|f| f.fixed_p99),
        "ms",
    );
    row(
        "QoS 0 fan-in 4 -> 1, received",
        ours.fan_in,
        t.map(|f| f.fan_in),
        "msg/s",
    );
    row(
        "QoS 0 fan-out 1 -> 4, received",
        ours.fan_out,
        t.map(|f| f.fan_out),
        "msg/s",
    );
    row(
        "end to end, QoS 1 at 2k msg/s, p50",
        ours.e2e_p50,
        t.map(|f| f.e2e_p50),
        "ms",
    );
    row(
        "end to end, QoS 1 at 2k msg/s, p99",
        ours.e2e_p99,
        t.map(|f| f.e2e_p99),
        "ms",
    );
    row(
        "connect rate (CONNECT + CONNACK)",
        ours.connects,
        t.map(|f| f.connects),
        "conn/s",
    );
    row(
        &format!("RSS per idle connection ({idle} connections)"),
        ours.idle_bytes,
        t.map(|f| f.idle_bytes),
        "B",
    );
    row(
        "QoS 1 throughput, 3 nodes replicated, window 100",
        r3.rate,
        t.map(|f| f.q1_rate),
        "msg/s",
    );
    row(
        "QoS 1 PUBACK p50 / p99, 3 nodes, window 100",
        r3.p50_ms,
        t.map(|f| f.q1_p50),
        "ms",
    );
    println!(
        "|   (p99) | {:.1} ms | {} | |",
        r3.p99_ms,
        t.map_or("-".to_owned(), |f| format!("{:.1} ms", f.q1_p99))
    );
    row(
        "QoS 1 throughput, 3 nodes replicated, window 1000",
        r3_wide.rate,
        t.map(|f| f.q1_wide_rate),
        "msg/s",
    );
    println!(
        "(3-node rows: raftmq replicated on three local processes vs the single Mosquitto; \
         3-node PUBACK window 1000 p50/p99: {:.1} / {:.1} ms)",
        r3_wide.p50_ms, r3_wide.p99_ms
    );
}
