//! A persistent-session subscriber: subscribes once (the broker keeps the subscription),
//! records every delivery and acknowledges it, handling QoS 2 as a receiver must: a packet
//! id awaiting PUBREL is remembered across reconnects, so a redelivered QoS 2 PUBLISH is
//! not delivered twice by the client and any duplicate left is the broker's.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use mqttbytes::v4::{
    Packet, PubAck, PubComp, PubRec, Subscribe, SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::watch;

use super::{backoff_sleep, parse_payload, stopped, Backoff, Liveness};
use crate::clock::Clock;
use crate::history::{Delivery, Recorder, SessionLoss};
use crate::mqtt::{Conn, QoS};

#[derive(Clone, Debug)]
pub struct SubscriberSpec {
    pub name: String,
    pub filters: Vec<(String, QoS)>,
    pub addr: SocketAddr,
}

pub async fn run(
    spec: SubscriberSpec,
    clock: Clock,
    rec: Recorder,
    mut stop: watch::Receiver<bool>,
) {
    let client_id = format!("chaos-{}", spec.name);
    rec.lock().subscribers.push(spec.name.clone());
    let mut awaiting_rel = BTreeSet::new();
    let mut had_session = false;
    let mut backoff = Backoff::new();
    while !stopped(&stop) {
        match Conn::connect(spec.addr, &client_id, false, Duration::from_secs(2)).await {
            Ok(c) => {
                backoff.reset();
                let mut conn = c.conn;
                if !c.session_present {
                    if had_session {
                        rec.lock().session_losses.push(SessionLoss {
                            client: client_id.clone(),
                            at: clock.now(),
                        });
                    }
                    awaiting_rel.clear();
                    let filters: Vec<SubscribeFilter> = spec
                        .filters
                        .iter()
                        .map(|(f, q)| SubscribeFilter::new(f.clone(), *q))
                        .collect();
                    let mut sub = Subscribe::new_many(filters);
                    sub.pkid = 1;
                    if conn.send(Packet::Subscribe(sub)).await.is_err() {
                        continue;
                    }
                }
                had_session = true;
                let served =
                    serve(&spec, &clock, &rec, &mut conn, &mut awaiting_rel, &mut stop).await;
                if served.is_ok() {
                    conn.close().await;
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

async fn serve(
    spec: &SubscriberSpec,
    clock: &Clock,
    rec: &Recorder,
    conn: &mut Conn,
    awaiting_rel: &mut BTreeSet<u16>,
    stop: &mut watch::Receiver<bool>,
) -> Result<()> {
    let mut alive = Liveness::new();
    loop {
        let packet = tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = alive.tick() => {
                alive.check()?;
                conn.send(Packet::PingReq).await?;
                continue;
            }
            packet = conn.recv() => packet?,
        };
        alive.heard();
        match packet {
            Packet::Publish(p) => {
                let fresh = match p.qos {
                    QoS::ExactlyOnce => awaiting_rel.insert(p.pkid),
                    _ => true,
                };
                if fresh {
                    match parse_payload(&p.payload) {
                        Some(key) => rec.lock().deliveries.push(Delivery {
                            subscriber: spec.name.clone(),
                            key,
                            qos: p.qos as u8,
                            dup: p.dup,
                            at: clock.now(),
                        }),
                        None => rec
                            .lock()
                            .notes
                            .push(format!("{}: unparsable payload on {}", spec.name, p.topic)),
                    }
                }
                match p.qos {
                    QoS::AtLeastOnce => conn.send(Packet::PubAck(PubAck::new(p.pkid))).await?,
                    QoS::ExactlyOnce => conn.send(Packet::PubRec(PubRec::new(p.pkid))).await?,
                    QoS::AtMostOnce => {}
                }
            }
            Packet::PubRel(r) => {
                awaiting_rel.remove(&r.pkid);
                conn.send(Packet::PubComp(PubComp::new(r.pkid))).await?;
            }
            Packet::SubAck(s) => {
                let mut h = rec.lock();
                if s.return_codes.contains(&SubscribeReasonCode::Failure) {
                    h.notes.push(format!("{}: subscription refused", spec.name));
                } else {
                    h.subscribed.push((spec.name.clone(), clock.now()));
                }
            }
            Packet::PingResp => {}
            other => rec
                .lock()
                .notes
                .push(format!("{}: unexpected {other:?}", spec.name)),
        }
    }
}
