//! Side-by-side benchmark: raftmq and Mosquitto (Debian's package), started by this program
//! on loopback in the same run, driven by the same load generator (raw MQTT 3.1.1 over TCP,
//! using raftmq's codec). Prints each figure and the ratio.
//!
//! `cargo bench --bench broker` (add `-- --quick` for a shorter run).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use raftmq::codec::{Codec, Connect, Packet, Protocol, Publish, Subscribe};
use raftmq_raft::{PacketId, QoS, SubOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const PAYLOAD: usize = 64;

struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
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
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("serving MQTT") => break,
            Some(Ok(_)) => {}
            _ => panic!("raftmq did not start"),
        }
        assert!(Instant::now() < deadline, "raftmq did not become active");
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        name: "raftmq",
        child,
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
        child,
        port,
        _dir: dir,
    })
}

/// A raw MQTT 3.1.1 connection.
struct Conn {
    stream: TcpStream,
    codec: Codec,
    rbuf: BytesMut,
}

impl Conn {
    async fn open(port: u16, id: &str) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.set_nodelay(true).ok();
        let mut codec = Codec::new(16 * 1024 * 1024);
        codec.set_protocol(Protocol::V4);
        let mut c = Conn {
            stream,
            codec,
            rbuf: BytesMut::with_capacity(64 * 1024),
        };
        c.send(&Packet::Connect(Box::new(Connect {
            protocol: Some(Protocol::V4),
            client_id: id.into(),
            clean_start: true,
            keep_alive: 60,
            ..Connect::default()
        })))
        .await;
        match c.recv().await {
            Some(f) if f.kind == 2 && f.body.get(1) == Some(&0) => c,
            other => panic!("bad CONNACK: {other:?}"),
        }
    }

    async fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        self.codec.encode(p, &mut out).expect("encode");
        self.stream.write_all(&out).await.expect("write");
    }

    async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = next_frame(&mut self.rbuf) {
                return Some(f);
            }
            if self.stream.read_buf(&mut self.rbuf).await.ok()? == 0 {
                return None;
            }
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: PacketId(1),
            filters: vec![(
                filter.into(),
                SubOptions {
                    qos,
                    ..SubOptions::default()
                },
            )],
            ..Subscribe::default()
        }))
        .await;
        match self.recv().await {
            Some(f) if f.kind == 9 => {}
            other => panic!("bad SUBACK: {other:?}"),
        }
    }
}

/// A server-to-client packet, read just far enough for the benchmark: the load generator
/// only needs packet types and PUBACK ids, so it does not depend on a full client codec.
#[derive(Debug)]
struct Frame {
    kind: u8,
    body: Bytes,
}

fn next_frame(buf: &mut BytesMut) -> Option<Frame> {
    let mut len = 0usize;
    let mut shift = 0;
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        len |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        assert!(shift <= 21, "bad remaining length from the server");
    }
    if buf.len() < i + len {
        return None;
    }
    let kind = buf[0] >> 4;
    let mut frame = buf.split_to(i + len);
    let body = frame.split_off(i).freeze();
    Some(Frame { kind, body })
}

fn publish(topic: &str, qos: QoS, id: u16, payload: &Bytes) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        packet_id: (qos != QoS::AtMostOnce).then_some(PacketId(id)),
        payload: payload.clone(),
        ..Publish::default()
    })
}

struct Qos1Result {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// One QoS 1 publisher with `window` messages in flight; optional fixed rate.
async fn qos1(port: u16, total: usize, window: usize, rate: Option<u64>) -> Qos1Result {
    let conn = Conn::open(port, "bench-q1").await;
    let Conn {
        stream, mut rbuf, ..
    } = conn;
    let (mut rd, mut wr) = stream.into_split();
    let slots = Arc::new(Semaphore::new(window));
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..65536).map(|_| AtomicU64::new(0)).collect());
    let origin = Instant::now();
    let payload = Bytes::from(vec![b'x'; PAYLOAD]);
    let writer = {
        let slots = slots.clone();
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut out = BytesMut::new();
            let mut enc = Codec::new(16 * 1024 * 1024);
            enc.set_protocol(Protocol::V4);
            let start = Instant::now();
            for i in 0..total {
                if let Some(r) = rate {
                    let due = start + Duration::from_secs_f64(i as f64 / r as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let Ok(permit) = slots.acquire().await else {
                    return;
                };
                permit.forget();
                let id = (i % 65535) as u16 + 1;
                sent_at[id as usize].store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
                enc.encode(
                    &publish("bench/q1", QoS::AtLeastOnce, id, &payload),
                    &mut out,
                )
                .expect("encode");
                if rate.is_some() || slots.available_permits() == 0 || out.len() > 32 * 1024 {
                    if wr.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
            let _ = wr.write_all(&out).await;
            // Keep the write half open until the reader is done.
            std::future::pending::<()>().await;
        })
    };
    let mut latencies = Vec::with_capacity(total);
    let started = Instant::now();
    while latencies.len() < total {
        if let Some(f) = next_frame(&mut rbuf) {
            if f.kind == 4 && f.body.len() >= 2 {
                let id = u16::from_be_bytes([f.body[0], f.body[1]]);
                let t = sent_at[id as usize].load(Ordering::Relaxed);
                latencies.push(origin.elapsed().as_micros() as u64 - t);
                slots.add_permits(1);
            }
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(30), rd.read_buf(&mut rbuf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => panic!("publisher stalled after {} acks", latencies.len()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    writer.abort();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] as f64 / 1000.0
    };
    Qos1Result {
        rate: total as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
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

async fn measure(s: &Server, quick: bool) -> Figures {
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
    Figures {
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

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let raftmq = start_raftmq();
    let ours = rt.block_on(measure(&raftmq, quick));
    drop(raftmq);
    let theirs = start_mosquitto().map(|m| rt.block_on(measure(&m, quick)));
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
}
