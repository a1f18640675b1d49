//! The workload every scenario runs through the VIP while faults are injected: QoS 1 and
//! QoS 2 publishers, persistent-session subscribers, a retained-message writer and reader,
//! and a prober on every node's own address. Everything it sees goes into the `History`.
//!
//! # Layout
//! - `publisher`: QoS 1/2 publisher with sequence numbers, window, resend on reconnect.
//! - `subscriber`: persistent-session subscriber, QoS 2 receiver rules.
//! - `retained`: retained-message readers (the writer is a `publisher` with retain set).
//! - `prober`: which nodes accept a CONNECT, and when.

pub mod prober;
pub mod publisher;
pub mod retained;
pub mod subscriber;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::history::{MsgKey, Recorder};
use crate::mqtt::QoS;
use publisher::PublisherSpec;
use subscriber::SubscriberSpec;

/// The shape of the load: enough traffic that every fault lands on messages in flight, little
/// enough that two cores also run three brokers and the fault tooling.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub qos1_publishers: usize,
    pub qos2_publishers: usize,
    pub rate_per_publisher: f64,
    pub window: usize,
    pub subscribers: usize,
    pub retained_topics: usize,
    pub retained_rate: f64,
    pub reader_period: Duration,
    pub probe_period: Duration,
}

impl Default for WorkloadSpec {
    fn default() -> WorkloadSpec {
        WorkloadSpec {
            qos1_publishers: 2,
            qos2_publishers: 2,
            rate_per_publisher: 50.0,
            window: 8,
            subscribers: 2,
            retained_topics: 4,
            retained_rate: 10.0,
            reader_period: Duration::from_secs(2),
            probe_period: Duration::from_millis(100),
        }
    }
}

pub struct Workload {
    vip: SocketAddr,
    clock: Clock,
    rec: Recorder,
    retained_topics: Vec<String>,
    pub_stop: watch::Sender<bool>,
    sub_stop: watch::Sender<bool>,
    pubs: Vec<JoinHandle<()>>,
    subs: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Start the subscribers, wait until each has its subscription acknowledged (a message
    /// published before that is not theirs to receive), then everything else.
    pub async fn start(
        spec: &WorkloadSpec,
        vip: SocketAddr,
        nodes: &[(u8, SocketAddr)],
        clock: Clock,
        rec: Recorder,
    ) -> anyhow::Result<Workload> {
        let (pub_stop, _) = watch::channel(false);
        let (sub_stop, _) = watch::channel(false);
        let mut w = Workload {
            vip,
            clock,
            rec,
            retained_topics: retained::topics(spec.retained_topics),
            pub_stop,
            sub_stop,
            pubs: Vec::new(),
            subs: Vec::new(),
        };
        for i in 0..spec.subscribers {
            let s = SubscriberSpec {
                name: format!("sub-{i}"),
                filters: vec![
                    ("chaos/q1/#".into(), QoS::AtLeastOnce),
                    ("chaos/q2/#".into(), QoS::ExactlyOnce),
                ],
                addr: vip,
            };
            let stop = w.sub_stop.subscribe();
            w.subs
                .push(tokio::spawn(subscriber::run(s, clock, w.rec.clone(), stop)));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while w.rec.lock().subscribed.len() < spec.subscribers {
            if Instant::now() >= deadline {
                anyhow::bail!("subscribers not subscribed through the VIP within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let qos = std::iter::repeat_n(QoS::AtLeastOnce, spec.qos1_publishers)
            .chain(std::iter::repeat_n(QoS::ExactlyOnce, spec.qos2_publishers));
        for (i, qos) in qos.enumerate() {
            let level = qos as u8;
            let name = format!("q{level}-{i}");
            w.spawn_publisher(PublisherSpec {
                topics: vec![format!("chaos/q{level}/{name}")],
                name,
                qos,
                retain: false,
                rate_per_sec: spec.rate_per_publisher,
                window: spec.window,
                addr: vip,
                direct_node: None,
            });
        }
        w.spawn_publisher(PublisherSpec {
            name: "retain".into(),
            qos: QoS::AtLeastOnce,
            retain: true,
            topics: w.retained_topics.clone(),
            rate_per_sec: spec.retained_rate,
            // One at a time, so each topic's retained value only ever grows.
            window: 1,
            addr: vip,
            direct_node: None,
        });
        let stop = w.pub_stop.subscribe();
        w.pubs.push(tokio::spawn(retained::run_reader(
            vip,
            w.retained_topics.clone(),
            spec.reader_period,
            clock,
            w.rec.clone(),
            stop,
        )));
        for &(node, addr) in nodes {
            let stop = w.pub_stop.subscribe();
            w.pubs.push(tokio::spawn(prober::run(
                node,
                addr,
                spec.probe_period,
                clock,
                w.rec.clone(),
                stop,
            )));
        }
        Ok(w)
    }

    pub fn spawn_publisher(&mut self, spec: PublisherSpec) {
        let stop = self.pub_stop.subscribe();
        self.pubs.push(tokio::spawn(publisher::run(
            spec,
            self.clock,
            self.rec.clone(),
            stop,
        )));
    }

    /// Stop publishing, reading and probing; subscribers go on receiving.
    pub async fn stop_publishers(&mut self) {
        let _ = self.pub_stop.send(true);
        for h in self.pubs.drain(..) {
            let _ = h.await;
        }
    }

    /// Wait until every subscriber has every acknowledged message, or `timeout`.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.undelivered() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn undelivered(&self) -> usize {
        let h = self.rec.lock();
        let acked = h.acked_for_subscribers();
        h.subscribers
            .iter()
            .map(|s| {
                let got: BTreeSet<&MsgKey> = h
                    .deliveries
                    .iter()
                    .filter(|d| &d.subscriber == s)
                    .map(|d| &d.key)
                    .collect();
                acked.difference(&got).count()
            })
            .sum()
    }

    /// The read after the heal: retained state must hold every acknowledged write.
    pub async fn final_retained_read(&self) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..5 {
            match retained::read_once(
                self.vip,
                &self.retained_topics,
                "chaos-retained-final",
                true,
                &self.clock,
                &self.rec,
            )
            .await
            {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("final retained read failed")))
    }

    pub async fn stop_subscribers(&mut self) {
        let _ = self.sub_stop.send(true);
        for h in self.subs.drain(..) {
            let _ = h.await;
        }
    }
}

/// Keepalive as a careful device does it: a PINGREQ every 500 ms, so a connection whose
/// VIP moved to another host is reset at once (the new holder answers with RST), and the
/// connection is given up when the broker has said nothing for 3 s (a frozen node).
pub struct Liveness {
    ping: tokio::time::Interval,
    last_heard: Instant,
}

impl Liveness {
    const PING: Duration = Duration::from_millis(500);
    const SILENCE: Duration = Duration::from_secs(3);

    pub fn new() -> Liveness {
        Liveness {
            ping: tokio::time::interval_at(Instant::now() + Self::PING, Self::PING),
            last_heard: Instant::now(),
        }
    }

    pub async fn tick(&mut self) {
        self.ping.tick().await;
    }

    pub fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if self.last_heard.elapsed() > Self::SILENCE {
            anyhow::bail!("broker silent for {:?}", Self::SILENCE);
        }
        Ok(())
    }
}

/// Numbered rounds every `period` until the run stops: the probes' and readers' clock.
pub struct Rounds {
    tick: tokio::time::Interval,
    round: u64,
}

impl Rounds {
    pub fn new(period: Duration) -> Rounds {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Rounds { tick, round: 0 }
    }

    /// The next round's number (from 1), or `None` once stopped.
    pub async fn next(&mut self, stop: &mut watch::Receiver<bool>) -> Option<u64> {
        tokio::select! {
            _ = stop.changed() => return None,
            _ = self.tick.tick() => {}
        }
        if stopped(stop) {
            return None;
        }
        self.round += 1;
        Some(self.round)
    }
}

/// Whether the run asked this task to stop.
pub fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Reconnect backoff: 50 ms doubling to 1 s, like a well-behaved device.
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            next: Duration::from_millis(50),
        }
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_millis(50);
    }
}

/// Sleep the backoff (doubling it); `true` when the run stopped meanwhile.
pub async fn backoff_sleep(b: &mut Backoff, stop: &mut watch::Receiver<bool>) -> bool {
    let wait = b.next;
    b.next = (b.next * 2).min(Duration::from_secs(1));
    tokio::select! {
        _ = stop.changed() => true,
        _ = tokio::time::sleep(wait) => stopped(stop),
    }
}

/// Payloads are `<publisher>:<seq>`.
pub fn parse_payload(payload: &[u8]) -> Option<MsgKey> {
    let text = std::str::from_utf8(payload).ok()?;
    let (publisher, seq) = text.rsplit_once(':')?;
    Some(MsgKey {
        publisher: publisher.to_string(),
        seq: seq.parse().ok()?,
    })
}
