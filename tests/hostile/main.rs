//! Hostile input on raw sockets: malformed, truncated, oversized and out-of-order packets,
//! slow and abrupt clients, random garbage. Every attack must close its own connection only
//! — a 5.0 one with a DISCONNECT carrying the right reason code first, a bad CONNECT with
//! the right CONNACK — while a well-behaved rumqttc session on the same broker keeps
//! receiving what is published after it (DESIGN.md, promise 5). The packets are built by
//! hand (`common::raw`), never with the broker's codec.
//!
//! # Layout
//! - `main.rs`: the bystander session, and `attack`, which runs a table of cases.
//! - `connect`: anything before a CONNECT, and bad CONNECTs.
//! - `packets`: bad packets after CONNECT: types, flags, sizes, topics, filters.
//! - `session`: topic aliases, the receive maximum, clean and unclean ends and the will.
//! - `abuse`: truncated packets, slowloris, a connection storm, random garbage.
//! - `corpus`: the `corpus/*.hex` files, one attack and its expected answer each.

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod connect;
mod corpus;
mod packets;
mod session;

use std::time::Duration;

use common::client::{connect_v4, drive, wait_for};
use common::raw::{kind, Raw, WITHIN};
use common::Broker;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

/// Brokers here wait this long for a CONNECT, far beyond `WITHIN`: a socket closed within
/// `WITHIN` was closed because of what it sent, not by the connect timeout.
const SLOW_CONNECT_TIMEOUT: &str = "60";

/// How long a will that must not fire is given to show up anyway. A will fires as soon as
/// the end of the connection is committed (no will delay here), well within this.
const NO_WILL_GRACE: Duration = Duration::from_secs(1);

fn broker() -> Broker {
    Broker::builder()
        .env("RAFTMQ_MQTT_CONNECT_TIMEOUT_SECS", SLOW_CONNECT_TIMEOUT)
        .start()
}

/// A well-behaved session: a rumqttc subscriber on `bystander/#` and `will/#`, and a
/// rumqttc publisher. It is connected before the attacks and never reconnects: if the
/// broker dropped it, the next wait panics.
struct Bystander {
    /// Kept so the subscriber's event loop keeps its request channel.
    _sub: AsyncClient,
    ev: EventLoop,
    publisher: AsyncClient,
    driver: JoinHandle<()>,
    seq: u32,
    /// Every `will/...` message seen so far, whatever was being waited for.
    wills: Vec<String>,
}

impl Bystander {
    async fn join(port: u16) -> Bystander {
        let (sub, mut ev, _) = connect_v4(port, "bystander", true).await;
        for filter in ["bystander/#", "will/#"] {
            sub.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
            wait_for(&mut ev, "SUBACK", |p| {
                matches!(p, Packet::SubAck(_)).then_some(())
            })
            .await;
        }
        let (publisher, pev, _) = connect_v4(port, "bystander-pub", true).await;
        Bystander {
            _sub: sub,
            ev,
            publisher,
            driver: drive(pev),
            seq: 0,
            wills: Vec::new(),
        }
    }

    /// Waits (bounded) for a message on `topic` with `payload`.
    async fn expect(&mut self, topic: &str, payload: &[u8], what: &str) {
        let wills = &mut self.wills;
        wait_for(&mut self.ev, what, |p| match p {
            Packet::Publish(m) => {
                if m.topic.starts_with("will/") {
                    wills.push(m.topic.clone());
                }
                (m.topic == topic && m.payload == payload).then_some(())
            }
            _ => None,
        })
        .await;
    }

    /// A message published now reaches the subscriber: the broker and this session came
    /// through `after` unharmed.
    async fn check(&mut self, after: &str) {
        self.seq += 1;
        let payload = format!("after {after} #{}", self.seq);
        self.publisher
            .publish("bystander/check", QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
        let what = format!("the bystander's message after {after}");
        self.expect("bystander/check", payload.as_bytes(), &what)
            .await;
    }

    /// Polls for `grace` and asserts no will arrived on any of `topics` (nor before).
    async fn expect_no_wills(&mut self, topics: &[&str], grace: Duration) {
        let deadline = Instant::now() + grace;
        loop {
            match timeout_at(deadline, self.ev.poll()).await {
                Err(_) => break,
                Ok(Ok(Event::Incoming(Packet::Publish(m)))) if m.topic.starts_with("will/") => {
                    self.wills.push(m.topic.clone())
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("the bystander lost its connection: {e}"),
            }
        }
        for t in topics {
            assert!(
                !self.wills.iter().any(|w| w == t),
                "a will fired on {t} after a clean DISCONNECT (wills seen: {:?})",
                self.wills
            );
        }
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The end of every test: the broker is alive, serves old and new sessions, never panicked.
async fn still_serving(broker: &Broker, bystander: &mut Bystander) {
    bystander.check("the whole test").await;
    let (mut raw, _) = Raw::connect_v5(broker.port, "late-comer").await;
    raw.send(&[0xC0, 0x00]).await;
    assert_eq!(raw.frame(WITHIN).await.kind(), kind::PINGRESP);
    assert!(
        !broker.log().contains("panicked"),
        "the broker panicked:\n{}",
        broker.log()
    );
}

/// How an attack starts.
#[derive(Clone, Copy, Debug)]
enum Conn {
    /// A new socket: the attack is the first thing sent.
    Fresh,
    /// After a successful 3.1.1 CONNECT.
    V4,
    /// After a successful 5.0 CONNECT.
    V5,
}

/// How the broker must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Nothing, then the close (3.1.1 has no DISCONNECT; before a CONNECT the version is
    /// unknown).
    Silent,
    /// A 5.0 DISCONNECT with this reason code, then the close.
    Disconnect(u8),
    /// A refusing 3.1.1 CONNACK with this return code, then the close.
    ConnAck4(u8),
    /// A refusing 5.0 CONNACK with this reason code, then the close.
    ConnAck5(u8),
}

struct Case {
    name: String,
    conn: Conn,
    bytes: Vec<u8>,
    expect: Expect,
}

fn case(name: &str, conn: Conn, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name: name.to_owned(),
        conn,
        bytes,
        expect,
    }
}

/// After a 5.0 CONNECT: DISCONNECT `code`.
fn v5(name: &str, bytes: Vec<u8>, code: u8) -> Case {
    case(name, Conn::V5, bytes, Expect::Disconnect(code))
}

/// After a 3.1.1 CONNECT: closed without a word.
fn v4(name: &str, bytes: Vec<u8>) -> Case {
    case(name, Conn::V4, bytes, Expect::Silent)
}

/// First thing on the socket: closed without a word.
fn fresh(name: &str, bytes: Vec<u8>) -> Case {
    case(name, Conn::Fresh, bytes, Expect::Silent)
}

/// Runs each case on its own connection, then checks the bystander.
async fn attack(port: u16, bystander: &mut Bystander, cases: Vec<Case>) {
    for (i, c) in cases.into_iter().enumerate() {
        let id = format!("attacker-{i}");
        let mut raw = match c.conn {
            Conn::Fresh => Raw::dial(port).await,
            Conn::V4 => Raw::connect_v4(port, &id).await,
            Conn::V5 => Raw::connect_v5(port, &id).await.0,
        };
        // The broker may close before it has read everything: a failed write is fine,
        // what it answers is what is checked.
        raw.send_lossy(&c.bytes).await;
        let what = format!("{} ({:?}, {:02x?})", c.name, c.conn, c.bytes);
        match c.expect {
            Expect::Silent => raw.expect_silent_close(WITHIN, &what).await,
            Expect::Disconnect(code) => {
                let before = raw.expect_disconnect(code, WITHIN, &what).await;
                assert!(before.is_empty(), "{what}: unexpected {before:02x?}");
            }
            Expect::ConnAck4(code) | Expect::ConnAck5(code) => {
                let frames = raw.until_closed(WITHIN).await;
                assert_eq!(
                    frames.len(),
                    1,
                    "{what}: expected one CONNACK: {frames:02x?}"
                );
                let ack = &frames[0];
                assert_eq!(ack.connack(), Some((false, code)), "{what}: {ack:02x?}");
                let v5 = ack.body.len() > 2;
                assert_eq!(
                    v5,
                    matches!(c.expect, Expect::ConnAck5(_)),
                    "{what}: CONNACK in the wrong version: {ack:02x?}"
                );
            }
        }
        bystander.check(&c.name).await;
    }
}
