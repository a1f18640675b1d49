//! The load generator both benchmarks share: raw MQTT 3.1.1 connections built with
//! raftmq's codec, a QoS 1 publisher with a window of messages in flight (optionally at a
//! fixed rate) that measures PUBACK latency, and a minimal reader of server packets;
//! `server`: the broker processes they measure.

// Each benchmark compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

pub mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use raftmq::codec::{Codec, Connect, Packet, Protocol, Publish, Subscribe};
use raftmq_raft::{PacketId, QoS, SubOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

pub const PAYLOAD: usize = 64;

/// A raw MQTT 3.1.1 connection.
pub struct Conn {
    pub stream: TcpStream,
    pub codec: Codec,
    pub rbuf: BytesMut,
}

impl Conn {
    pub async fn open(port: u16, id: &str) -> Conn {
        Conn::open_from(port, id, Ipv4Addr::LOCALHOST).await
    }

    /// Like `open`, from the loopback address `source` (any of 127.0.0.0/8), so that
    /// per-IP limits see a different client.
    pub async fn open_from(port: u16, id: &str, source: Ipv4Addr) -> Conn {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind the source address");
        let stream = socket
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
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

    pub async fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        self.codec.encode(p, &mut out).expect("encode");
        self.stream.write_all(&out).await.expect("write");
    }

    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = next_frame(&mut self.rbuf) {
                return Some(f);
            }
            if self.stream.read_buf(&mut self.rbuf).await.ok()? == 0 {
                return None;
            }
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
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
pub struct Frame {
    pub kind: u8,
    pub body: Bytes,
}

pub fn next_frame(buf: &mut BytesMut) -> Option<Frame> {
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

pub fn publish(topic: &str, qos: QoS, id: u16, payload: &Bytes) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        packet_id: (qos != QoS::AtMostOnce).then_some(PacketId(id)),
        payload: payload.clone(),
        ..Publish::default()
    })
}

pub struct Qos1Result {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One QoS 1 publisher with `window` messages in flight; optional fixed rate.
pub async fn qos1(port: u16, total: usize, window: usize, rate: Option<u64>) -> Qos1Result {
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
