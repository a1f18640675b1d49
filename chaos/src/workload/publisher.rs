//! A QoS 1 or QoS 2 publisher with a persistent session, a window of messages in flight,
//! per-publisher sequence numbers and reconnection with backoff. On reconnect it resends
//! what is unacknowledged exactly as MQTT asks: the same packet id with DUP for a PUBLISH,
//! PUBREL for a QoS 2 message whose PUBREC arrived. Every message sent and every
//! acknowledgement goes into the history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use mqttbytes::v4::{Packet, PubRel, Publish};
use tokio::sync::watch;

use super::{backoff_sleep, stopped, Backoff, Liveness};
use crate::clock::Clock;
use crate::history::{Ack, MsgKey, Recorder, SessionLoss};
use crate::mqtt::{Conn, QoS};

#[derive(Clone, Debug)]
pub struct PublisherSpec {
    /// Names the publisher in message keys and its client id (`chaos-<name>`).
    pub name: String,
    pub qos: QoS,
    pub retain: bool,
    /// Message `seq` goes to `topics[seq % topics.len()]`.
    pub topics: Vec<String>,
    pub rate_per_sec: f64,
    pub window: usize,
    pub addr: SocketAddr,
    /// Set when `addr` is one node's own address rather than the VIP.
    pub direct_node: Option<u8>,
}

struct Pending {
    seq: u64,
    topic: String,
    sent_at: f64,
    /// QoS 2: PUBREC received (the message is acknowledged), PUBCOMP still due.
    released: bool,
}

struct Publisher {
    spec: PublisherSpec,
    clock: Clock,
    rec: Recorder,
    inflight: BTreeMap<u16, Pending>,
    next_seq: u64,
    next_pkid: u16,
    had_session: bool,
}

pub async fn run(
    spec: PublisherSpec,
    clock: Clock,
    rec: Recorder,
    mut stop: watch::Receiver<bool>,
) {
    let mut p = Publisher {
        spec,
        clock,
        rec,
        inflight: BTreeMap::new(),
        next_seq: 1,
        next_pkid: 0,
        had_session: false,
    };
    let client_id = format!("chaos-{}", p.spec.name);
    let mut backoff = Backoff::new();
    while !stopped(&stop) {
        match Conn::connect(p.spec.addr, &client_id, false, Duration::from_secs(2)).await {
            Ok(c) => {
                backoff.reset();
                if p.had_session && !c.session_present {
                    p.rec.lock().session_losses.push(SessionLoss {
                        client: client_id.clone(),
                        at: p.clock.now(),
                    });
                }
                p.had_session = true;
                // The session is gone (or never was): nothing of it is in the broker to
                // complete, so in-flight QoS 2 releases start over as new sends.
                if !c.session_present {
                    for pending in p.inflight.values_mut() {
                        pending.released = false;
                    }
                }
                if p.serve(c.conn, &mut stop).await.is_ok() {
                    return;
                }
            }
            Err(_) => {
                if backoff_sleep(&mut backoff, &mut stop).await {
                    return;
                }
            }
        }
    }
}

impl Publisher {
    /// Resend what is unacknowledged, then publish at the configured rate until the
    /// connection fails (`Err`) or the run stops (`Ok`).
    async fn serve(&mut self, mut conn: Conn, stop: &mut watch::Receiver<bool>) -> Result<()> {
        for (&pkid, pending) in &self.inflight {
            if pending.released {
                conn.queue(Packet::PubRel(PubRel::new(pkid)))?;
            } else {
                conn.queue(Packet::Publish(self.publish(pkid, pending, true)))?;
            }
        }
        conn.flush().await?;
        let period = Duration::from_secs_f64(1.0 / self.spec.rate_per_sec.max(0.1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut alive = Liveness::new();
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    conn.close().await;
                    return Ok(());
                }
                _ = tick.tick(), if self.inflight.len() < self.spec.window => {
                    let pkid = self.alloc_pkid();
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let topic = self.spec.topics[(seq as usize) % self.spec.topics.len()].clone();
                    let pending = Pending { seq, topic: topic.clone(), sent_at: self.clock.now(), released: false };
                    self.rec.lock().sent.push((self.key(seq), topic));
                    conn.send(Packet::Publish(self.publish(pkid, &pending, false))).await?;
                    self.inflight.insert(pkid, pending);
                }
                _ = alive.tick() => {
                    alive.check()?;
                    conn.send(Packet::PingReq).await?;
                }
                packet = conn.recv() => {
                    alive.heard();
                    self.handle(&mut conn, packet?).await?;
                }
            }
        }
    }

    async fn handle(&mut self, conn: &mut Conn, packet: Packet) -> Result<()> {
        match packet {
            Packet::PubAck(a) if self.spec.qos == QoS::AtLeastOnce => {
                if let Some(p) = self.inflight.remove(&a.pkid) {
                    self.record_ack(p.seq, &p.topic, p.sent_at);
                }
            }
            Packet::PubRec(r) if self.spec.qos == QoS::ExactlyOnce => {
                let newly = match self.inflight.get_mut(&r.pkid) {
                    Some(p) if !p.released => {
                        p.released = true;
                        Some((p.seq, p.topic.clone(), p.sent_at))
                    }
                    _ => None,
                };
                if let Some((seq, topic, sent_at)) = newly {
                    self.record_ack(seq, &topic, sent_at);
                }
                conn.send(Packet::PubRel(PubRel::new(r.pkid))).await?;
            }
            Packet::PubComp(c) if self.spec.qos == QoS::ExactlyOnce => {
                self.inflight.remove(&c.pkid);
            }
            Packet::PingResp => {}
            other => {
                self.rec
                    .lock()
                    .notes
                    .push(format!("{}: unexpected {other:?}", self.spec.name));
            }
        }
        Ok(())
    }

    fn record_ack(&self, seq: u64, topic: &str, sent_at: f64) {
        self.rec.lock().acks.push(Ack {
            key: self.key(seq),
            qos: self.spec.qos as u8,
            topic: topic.to_string(),
            sent_at,
            acked_at: self.clock.now(),
            direct_node: self.spec.direct_node,
        });
    }

    fn key(&self, seq: u64) -> MsgKey {
        MsgKey {
            publisher: self.spec.name.clone(),
            seq,
        }
    }

    fn publish(&self, pkid: u16, p: &Pending, dup: bool) -> Publish {
        let mut publish = Publish::new(
            p.topic.as_str(),
            self.spec.qos,
            format!("{}:{}", self.spec.name, p.seq),
        );
        publish.pkid = pkid;
        publish.dup = dup;
        publish.retain = self.spec.retain;
        publish
    }

    /// The next packet id not in flight (1..=65535; 0 is not a packet id).
    fn alloc_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }
}
