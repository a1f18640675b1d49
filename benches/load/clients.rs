//! The figures of `benches/broker.rs` beyond one publisher: end-to-end latency at a fixed
//! rate, connect rate, and the memory of idle connections (clients spread over child
//! processes of the benchmark itself, since one process may hold only so many sockets).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use raftmq::codec::{Codec, Protocol};
use raftmq_raft::QoS;
use tokio::io::AsyncWriteExt;

use crate::load::{publish, Conn};

/// The argument a child process of the idle-connection figure is started with.
pub const IDLE_CHILD: &str = "--idle-child";

pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// One QoS 1 publisher at `rate` msg/s for `total` messages, one QoS 1 subscriber that
/// acknowledges each delivery: publish-to-receive latency (the send time travels in the
/// payload).
pub async fn end_to_end(port: u16, rate: u64, total: usize) -> Latency {
    let mut sub = Conn::open(port, "bench-e2e-sub").await;
    sub.subscribe("bench/e2e", QoS::AtLeastOnce).await;
    let origin = Instant::now();
    let publisher = tokio::spawn(async move {
        let mut p = Conn::open(port, "bench-e2e-pub").await;
        let start = Instant::now();
        let mut enc = Codec::new(1 << 20);
        enc.set_protocol(Protocol::V4);
        let mut out = BytesMut::new();
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let stamp = origin.elapsed().as_micros() as u64;
            let mut payload = stamp.to_be_bytes().to_vec();
            payload.resize(crate::load::PAYLOAD, b'x');
            let id = (i % 65535) as u16 + 1;
            enc.encode(
                &publish("bench/e2e", QoS::AtLeastOnce, id, &Bytes::from(payload)),
                &mut out,
            )
            .expect("encode");
            p.stream.write_all(&out).await.expect("write");
            out.clear();
        }
        // Its PUBACKs (4 bytes each) wait in the socket buffer, unread.
        p
    });
    let mut latencies = Vec::with_capacity(total);
    while latencies.len() < total {
        let frame = match tokio::time::timeout(Duration::from_secs(30), sub.recv()).await {
            Ok(Some(f)) => f,
            _ => panic!("subscriber stalled after {} messages", latencies.len()),
        };
        if frame.kind != 3 {
            continue;
        }
        // 3.1.1 PUBLISH body: topic length, topic, packet id, payload.
        let b = &frame.body;
        let tlen = usize::from(u16::from_be_bytes([b[0], b[1]]));
        let id = [b[2 + tlen], b[3 + tlen]];
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&b[4 + tlen..12 + tlen]);
        latencies.push(origin.elapsed().as_micros() as u64 - u64::from_be_bytes(stamp));
        sub.stream
            .write_all(&[0x40, 0x02, id[0], id[1]])
            .await
            .expect("PUBACK");
    }
    drop(publisher.await);
    latencies.sort_unstable();
    Latency {
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    }
}

/// CONNECT + CONNACK (then DISCONNECT) per second, `concurrency` clients at a time.
pub async fn connect_rate(port: u16, total: usize, concurrency: usize) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total as u64 {
                    return;
                }
                let mut c = Conn::open(port, &format!("bench-conn-{i}")).await;
                let _ = c.stream.write_all(&[0xE0, 0x00]).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("connect task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Resident memory of a process, in bytes.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Open `total` idle connections to `port` from `children` child processes, and return the
/// broker's RSS growth per connection once all are connected and idle.
pub fn idle_rss_per_connection(pid: u32, port: u16, total: usize, children: usize) -> f64 {
    std::thread::sleep(Duration::from_millis(500));
    let before = rss(pid);
    let exe = std::env::current_exe().expect("own path");
    let per_child = total.div_ceil(children);
    let mut kids = Vec::new();
    for k in 0..children {
        let n = per_child.min(total - k * per_child);
        let mut child = Command::new(&exe)
            .args([
                IDLE_CHILD,
                &port.to_string(),
                &n.to_string(),
                &k.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a client process");
        let out = child.stdout.take().expect("stdout");
        kids.push((child, BufReader::new(out)));
    }
    for (_, out) in &mut kids {
        let mut line = String::new();
        out.read_line(&mut line).expect("child output");
        assert!(line.starts_with("ready"), "client process failed: {line}");
    }
    // Let the broker settle (CONNACKs written, proposals done) before measuring.
    std::thread::sleep(Duration::from_secs(2));
    let after = rss(pid);
    for (mut child, mut out) in kids {
        drop(child.stdin.take());
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        let _ = child.wait();
    }
    (after.saturating_sub(before)) as f64 / total as f64
}

/// The child side: open `n` connections (client ids prefixed by `tag`), print `ready`,
/// then hold them until standard input closes.
pub fn idle_child(args: &[String]) {
    let port: u16 = args[0].parse().expect("port");
    let n: usize = args[1].parse().expect("count");
    let tag = &args[2];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conns = rt.block_on(async {
        let mut conns = Vec::with_capacity(n);
        let mut pending = tokio::task::JoinSet::new();
        for i in 0..n {
            let id = format!("idle-{tag}-{i}");
            pending.spawn(async move { Conn::open(port, &id).await.stream });
            if pending.len() >= 256 {
                conns.push(pending.join_next().await.expect("task").expect("connect"));
            }
        }
        while let Some(c) = pending.join_next().await {
            conns.push(c.expect("connect"));
        }
        conns
    });
    println!("ready {}", conns.len());
    let mut sink = String::new();
    let _ = std::io::stdin().read_to_string(&mut sink);
    drop(conns);
}
