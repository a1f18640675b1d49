//! Misbehaving sockets rather than bad packets: cut off, slow, many at once, garbage.

use std::time::Duration;

use rumqttc::{Event, Packet, QoS};
use tokio::time::{timeout_at, Instant};

use crate::common::client::connect_v4;
use crate::common::raw::{self, kind, Body, Next, Raw, WITHIN};
use crate::common::Broker;
use crate::{broker, still_serving, Bystander, Conn, SLOW_CONNECT_TIMEOUT};

#[tokio::test]
async fn truncated_packets_then_close() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let full = raw::publish_v5(1, 1, b"bystander/never", Body::new(), b"payload");
    let cuts: Vec<(&str, Conn, Vec<u8>)> = vec![
        ("first byte of CONNECT", Conn::Fresh, vec![0x10]),
        ("CONNECT cut in its length", Conn::Fresh, vec![0x10, 0xFF]),
        (
            "CONNECT cut in its body",
            Conn::Fresh,
            raw::connect_v5("cut")[..8].to_vec(),
        ),
        (
            "PUBLISH cut in its length",
            Conn::V5,
            vec![0x30, 0xFF, 0xFF],
        ),
        ("PUBLISH cut in its topic", Conn::V5, full[..6].to_vec()),
        (
            "PUBLISH cut in its payload",
            Conn::V5,
            full[..full.len() - 1].to_vec(),
        ),
        (
            "3.1.1 PUBLISH cut",
            Conn::V4,
            raw::publish_v4(1, 1, b"a", b"xyz")[..5].to_vec(),
        ),
        (
            "SUBSCRIBE cut",
            Conn::V5,
            raw::subscribe_v5(1, &[(b"a/b", 0)])[..7].to_vec(),
        ),
    ];
    for (i, (name, conn, bytes)) in cuts.into_iter().enumerate() {
        let id = format!("cut-{i}");
        // Half of them close politely (FIN, the broker reads EOF and answers nothing), the
        // other half vanish with a reset.
        for polite in [true, false] {
            let mut raw = match conn {
                Conn::Fresh => Raw::dial(broker.port).await,
                Conn::V4 => Raw::connect_v4(broker.port, &id).await,
                Conn::V5 => Raw::connect_v5(broker.port, &id).await.0,
            };
            raw.send(&bytes).await;
            if polite {
                raw.shutdown_write().await;
                raw.expect_silent_close(WITHIN, name).await;
            } else {
                raw.stream.set_zero_linger().unwrap();
                drop(raw);
            }
            by.check(name).await;
        }
    }

    // Cut off mid-packet is not a clean disconnect: the will fires.
    let connect = raw::connect_v5_will("cut-will", "will/cut", b"gone");
    let (mut raw, _) = Raw::connect_with(broker.port, &connect).await;
    raw.send(&full[..10]).await;
    raw.shutdown_write().await;
    raw.expect_silent_close(WITHIN, "cut with a will").await;
    by.expect(
        "will/cut",
        b"gone",
        "the will of a connection cut mid-packet",
    )
    .await;
    still_serving(&broker, &mut by).await;
}

#[tokio::test]
async fn slowloris_is_closed_by_the_connect_timeout() {
    let broker = Broker::builder()
        .env("RAFTMQ_MQTT_CONNECT_TIMEOUT_SECS", "1")
        .start();
    let mut by = Bystander::join(broker.port).await;
    // A CONNECT that takes 20 s to dribble in at one byte per 200 ms.
    let connect = raw::connect_v5(&"s".repeat(90));
    assert!(connect.len() >= 100);

    let mut slow = Vec::new();
    for i in 0..5 {
        let connect = connect.clone();
        let port = broker.port;
        slow.push(tokio::spawn(async move {
            let mut raw = Raw::dial(port).await;
            let start = Instant::now();
            let mut sent = 0;
            // Send one byte, then wait 200 ms for the broker to close (or answer).
            let closed_at = loop {
                if i == 4 {
                    // The idlest client of all sends nothing.
                } else if sent < connect.len() {
                    if !raw.send_ok(&connect[sent..sent + 1]).await {
                        break start.elapsed();
                    }
                    sent += 1;
                }
                match raw.next(Duration::from_millis(200)).await {
                    Next::Timeout => {}
                    Next::Closed => break start.elapsed(),
                    Next::Frame(f) => panic!("slow client {i} got {f:02x?}"),
                }
                assert!(
                    start.elapsed() < WITHIN,
                    "slow client {i} still open after {sent} bytes"
                );
            };
            (sent, closed_at)
        }));
    }
    for (i, task) in slow.into_iter().enumerate() {
        let (sent, closed_at) = task.await.unwrap();
        assert!(
            sent < connect.len(),
            "slow client {i} got its whole CONNECT in"
        );
        // Not before the timeout: it is the timeout that closed it, not the partial bytes.
        assert!(
            closed_at >= Duration::from_millis(900),
            "slow client {i} closed after {closed_at:?}, before the connect timeout"
        );
    }
    by.check("5 slow clients").await;
    still_serving(&broker, &mut by).await;
}

#[tokio::test]
async fn two_hundred_connections_dropped_at_once() {
    let broker = Broker::builder()
        .env("RAFTMQ_MQTT_CONNECT_TIMEOUT_SECS", SLOW_CONNECT_TIMEOUT)
        .env("RAFTMQ_SYS_INTERVAL_SECS", "1")
        .start();
    let mut by = Bystander::join(broker.port).await;
    let port = broker.port;
    let mut tasks = Vec::new();
    for i in 0..200 {
        tasks.push(tokio::spawn(async move {
            let mut raw = Raw::dial(port).await;
            let id = format!("storm-{i}");
            match i % 5 {
                0 => {}
                1 => raw.send_lossy(&raw::connect_v5(&id)[..7]).await,
                2 => raw.send_lossy(&raw::connect_v4(&id)).await,
                3 => {
                    raw.send_lossy(&raw::connect_v5_will(&id, "will/storm", b"x"))
                        .await
                }
                _ => {
                    raw.send_lossy(&raw::connect_v5(&id)).await;
                    raw.send_lossy(&raw::subscribe_v5(1, &[(b"storm/#", 1)]))
                        .await;
                    raw.send_lossy(&raw::publish_v5(1, 2, b"storm/x", Body::new(), b"x"))
                        .await;
                }
            }
            raw
        }));
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await.unwrap());
    }
    // All at once, with a reset rather than a FIN.
    for c in &conns {
        c.stream.set_zero_linger().unwrap();
    }
    drop(conns);
    by.check("200 connections dropped").await;

    // Every one of them is gone from the broker's books: only the bystander's two
    // sessions stay connected.
    let (watch, mut wev, _) = connect_v4(port, "sys-watch", true).await;
    watch
        .subscribe("$SYS/broker/clients/connected", QoS::AtMostOnce)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    loop {
        match timeout_at(deadline, wev.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                // The two bystander sessions and this watcher.
                if p.payload == "3" {
                    break;
                }
                last = Some(p.payload);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("$SYS watcher failed: {e}"),
            Err(_) => panic!("clients/connected never went back to 3 (last {last:?})"),
        }
    }
    still_serving(&broker, &mut by).await;
}

/// xorshift64: the same seed, the same garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test]
async fn random_garbage_on_fifty_connections() {
    const SEED: u64 = 0x5EED_0F6A_4BA6;
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let port = broker.port;
    let mut rng = Rng(SEED);
    // Client packet types with valid flags, for garbage that gets past the first byte.
    let firsts = [
        0x30, 0x32, 0x34, 0x3B, 0x40, 0x50, 0x62, 0x70, 0x82, 0xA2, 0xC0, 0xE0,
    ];
    let mut tasks = Vec::new();
    for i in 0..50 {
        let flavour = i % 4;
        let len = 1 + rng.below(300);
        let garbage = match flavour {
            // Framed: a plausible fixed header, a random body of the announced length.
            3 => raw::packet(firsts[rng.below(firsts.len())], &rng.bytes(len)),
            _ => rng.bytes(len),
        };
        tasks.push(tokio::spawn(async move {
            let id = format!("garbage-{i}");
            let (mut raw, v5) = match flavour {
                0 => (Raw::dial(port).await, false),
                1 => (Raw::connect_v4(port, &id).await, false),
                _ => (Raw::connect_v5(port, &id).await.0, true),
            };
            raw.send_lossy(&garbage).await;
            // If the garbage happens to be valid so far, EOF ends it.
            raw.shutdown_write().await;
            let what = format!("garbage {i} (seed {SEED:#x}): {garbage:02x?}");
            let frames = raw.until_closed(WITHIN).await;
            for (n, f) in frames.iter().enumerate() {
                match f.kind() {
                    // Before a CONNECT only a refusing CONNACK can come back.
                    kind::CONNACK => assert!(
                        flavour == 0 && n == 0 && f.connack().is_some_and(|(_, c)| c != 0),
                        "{what}: {frames:02x?}"
                    ),
                    kind::DISCONNECT => {
                        assert!(v5 && n + 1 == frames.len(), "{what}: {frames:02x?}");
                        let code = f.disconnect_reason().unwrap();
                        assert!(code >= 0x80, "{what}: DISCONNECT {code:#04x}");
                    }
                    kind::PUBLISH
                    | kind::PUBACK
                    | kind::PUBREC
                    | kind::PUBCOMP
                    | kind::SUBACK
                    | kind::UNSUBACK
                    | kind::PINGRESP => {
                        assert!(flavour != 0, "{what}: {frames:02x?}")
                    }
                    _ => panic!("{what}: the broker sent {f:02x?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    by.check("garbage on 50 connections").await;
    still_serving(&broker, &mut by).await;
}
