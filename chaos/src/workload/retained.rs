//! Retained-message readers: a fresh clean session subscribes to the retained topics and
//! records what the broker hands it. A read that started after a write was acknowledged
//! must see that write or a later one (the checker holds every read to that).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use mqttbytes::v4::{Packet, PubAck, Subscribe};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{parse_payload, Rounds};
use crate::clock::Clock;
use crate::history::{Recorder, RetainedMissing, RetainedRead};
use crate::mqtt::{Conn, QoS};

pub const FILTER: &str = "chaos/retained/#";

/// The retained topics the writer cycles through.
pub fn topics(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("chaos/retained/{i}")).collect()
}

/// Read every `period` until stopped. Reads cut short by a failover are discarded: only a
/// read that got its SUBACK and then waited its full time is evidence.
pub async fn run_reader(
    addr: SocketAddr,
    topics: Vec<String>,
    period: Duration,
    clock: Clock,
    rec: Recorder,
    mut stop: watch::Receiver<bool>,
) {
    let mut rounds = Rounds::new(period);
    while let Some(round) = rounds.next(&mut stop).await {
        // A fresh client id per read, so flapping detection does not ban the reader.
        let id = format!("chaos-retained-reader-{round}");
        let _ = read_once(addr, &topics, &id, false, &clock, &rec).await;
    }
}

/// One read: connect, subscribe, wait until every topic arrived or `settle` passed.
pub async fn read_once(
    addr: SocketAddr,
    topics: &[String],
    client_id: &str,
    final_read: bool,
    clock: &Clock,
    rec: &Recorder,
) -> Result<()> {
    let started_at = clock.now();
    let mut conn = Conn::connect(addr, client_id, true, Duration::from_secs(2))
        .await?
        .conn;
    let mut sub = Subscribe::new(FILTER, QoS::AtLeastOnce);
    sub.pkid = 1;
    conn.send(Packet::Subscribe(sub)).await?;
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut subacked = false;
    let settle = Duration::from_secs(2);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut settle_deadline = deadline;
    while seen.len() < topics.len() {
        let until = settle_deadline.min(deadline);
        let packet = match tokio::time::timeout_at(until, conn.recv()).await {
            Ok(p) => p?,
            Err(_) => break,
        };
        match packet {
            Packet::SubAck(_) => {
                subacked = true;
                settle_deadline = Instant::now() + settle;
            }
            Packet::Publish(p) => {
                if p.qos == QoS::AtLeastOnce {
                    conn.send(Packet::PubAck(PubAck::new(p.pkid))).await?;
                }
                if p.retain {
                    if let Some(key) = parse_payload(&p.payload) {
                        seen.insert(p.topic.clone(), key.seq);
                    }
                }
            }
            _ => {}
        }
    }
    conn.close().await;
    if !subacked && seen.len() < topics.len() {
        anyhow::bail!("read cut short");
    }
    let mut h = rec.lock();
    for topic in topics {
        match seen.get(topic) {
            Some(&seq) => h.retained_reads.push(RetainedRead {
                topic: topic.clone(),
                seq,
                started_at,
                final_read,
            }),
            None => h.retained_missing.push(RetainedMissing {
                topic: topic.clone(),
                started_at,
                final_read,
            }),
        }
    }
    Ok(())
}
