//! Three-node clusters of the real binary on loopback: replication of every kind of state,
//! kill -9 of the leader under QoS 1 and QoS 2 streams, a leader cut off from both
//! followers, a full-cluster restart, wills after failover, follower refusals and a
//! restarted node catching up.
//!
//! Clients here are packet-level MQTT 5.0 links (`common::cluster::Link`): they see every
//! DUP flag and packet id, keep their own QoS 2 state across reconnects (which rumqttc
//! cannot), and reconnect to whichever node serves, trying every node's address.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use common::admin::{Admin, TOKEN};
use common::cluster::{
    connect_any, connect_packet, probe, will, Cluster, Link, NoPacket, Probe, ELECTION,
};
use common::raw::{self, kind};
use common::raw_v4;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, DisconnectReasonCode, Filter, Packet, PubAck, PubAckReason, PubComp, PubRec,
    PubRecReason, PubRel, Publish, Subscribe,
};
use rumqttc::v5::mqttbytes::QoS;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long an expected packet may take on a loaded machine.
const WAIT: Duration = Duration::from_secs(10);

// ---- packet helpers ---------------------------------------------------------------------

fn publish_packet(topic: &str, qos: QoS, pkid: u16, payload: &[u8], retain: bool) -> Packet {
    let mut p = Publish::new(topic, qos, Bytes::copy_from_slice(payload), None);
    p.pkid = pkid;
    p.retain = retain;
    Packet::Publish(p)
}

fn dup(packet: Packet) -> Packet {
    match packet {
        Packet::Publish(mut p) => {
            p.dup = true;
            Packet::Publish(p)
        }
        other => other,
    }
}

async fn send(link: &mut Link, packet: Packet) {
    assert!(
        link.send(packet).await,
        "the connection broke while sending"
    );
}

/// The next packet; panics if the connection closes or nothing comes within `WAIT`.
async fn recv(link: &mut Link, what: &str) -> Packet {
    match link.read(WAIT).await {
        Ok(p) => p,
        Err(e) => panic!("waiting for {what}: {e:?}"),
    }
}

/// Read until `pick` accepts a packet; others are skipped.
async fn wait_for<T>(link: &mut Link, what: &str, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
    loop {
        let p = recv(link, what).await;
        if let Some(v) = pick(&p) {
            return v;
        }
    }
}

async fn subscribe(link: &mut Link, pkid: u16, filters: &[(&str, QoS)]) {
    let filters = filters.iter().map(|(f, q)| Filter::new(*f, *q)).collect();
    send(
        link,
        Packet::Subscribe(Subscribe {
            pkid,
            filters,
            properties: None,
        }),
    )
    .await;
    wait_for(link, "SUBACK", |p| match p {
        Packet::SubAck(a) if a.pkid == pkid => Some(()),
        _ => None,
    })
    .await;
}

/// QoS 1 PUBLISH and its PUBACK.
async fn publish_acked(link: &mut Link, topic: &str, pkid: u16, payload: &[u8], retain: bool) {
    send(
        link,
        publish_packet(topic, QoS::AtLeastOnce, pkid, payload, retain),
    )
    .await;
    let reason = wait_for(link, "PUBACK", |p| match p {
        Packet::PubAck(a) if a.pkid == pkid => Some(a.reason),
        _ => None,
    })
    .await;
    assert!(accepted(reason), "PUBACK {reason:?} for {topic}");
}

fn accepted(reason: PubAckReason) -> bool {
    matches!(
        reason,
        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
    )
}

fn rec_accepted(reason: PubRecReason) -> bool {
    matches!(
        reason,
        PubRecReason::Success | PubRecReason::NoMatchingSubscribers
    )
}

async fn puback(link: &mut Link, pkid: u16) {
    send(link, Packet::PubAck(PubAck::new(pkid, None))).await;
}

async fn pubrec(link: &mut Link, pkid: u16) {
    send(link, Packet::PubRec(PubRec::new(pkid, None))).await;
}

async fn pubrel(link: &mut Link, pkid: u16) {
    send(link, Packet::PubRel(PubRel::new(pkid, None))).await;
}

async fn pubcomp(link: &mut Link, pkid: u16) {
    send(link, Packet::PubComp(PubComp::new(pkid, None))).await;
}

/// What a subscriber saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        pkid: u16,
        dup: bool,
        retain: bool,
    },
    PubRel(u16),
}

impl Seen {
    fn topic(&self) -> Option<&str> {
        match self {
            Seen::Publish { topic, .. } => Some(topic),
            Seen::PubRel(_) => None,
        }
    }
}

/// A subscriber that acknowledges everything (QoS 2 as a correct client: a PUBLISH whose
/// packet id awaits PUBREL is not a new message) and records what it saw, until `done`
/// says so or `within` passes.
async fn receive_until(
    link: &mut Link,
    within: Duration,
    mut done: impl FnMut(&[Seen]) -> bool,
) -> Vec<Seen> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut awaiting_rel = HashSet::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match link.read(left).await {
            Ok(Packet::Publish(p)) => {
                match p.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => puback(link, p.pkid).await,
                    QoS::ExactlyOnce => {
                        pubrec(link, p.pkid).await;
                        if !awaiting_rel.insert(p.pkid) {
                            continue;
                        }
                    }
                }
                seen.push(Seen::Publish {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload.to_vec(),
                    qos: p.qos,
                    pkid: p.pkid,
                    dup: p.dup,
                    retain: p.retain,
                });
            }
            Ok(Packet::PubRel(r)) => {
                awaiting_rel.remove(&r.pkid);
                pubcomp(link, r.pkid).await;
                seen.push(Seen::PubRel(r.pkid));
            }
            Ok(_) => {}
            Err(e) => panic!("subscriber: {e:?} before it was done; saw {seen:?}"),
        }
    }
    seen
}

/// Connect to the node that serves now (trying every node), persistent session.
async fn reconnect(c: &Cluster, id: &str, clean: bool) -> (Link, bool) {
    let (link, ack) = connect_any(
        &c.mqtt_ports(),
        &connect_packet(id, clean, Some(600)),
        None,
        ELECTION,
    )
    .await
    .unwrap_or_else(|| panic!("{id}: no node accepted the session within {ELECTION:?}"));
    (link, ack.session_present)
}

/// `count` retained messages `prefix/<i / 100>/i` = `i`, pipelined with `window` in flight.
/// (Grouped by hundreds: a subscriber gets at most `max_queued_messages` + `max_inflight`
/// retained messages per SUBSCRIBE, 1020 by default.)
async fn publish_retained_many(link: &mut Link, prefix: &str, count: u32, window: u32) {
    let mut next = 0u32;
    let mut acked = 0u32;
    let mut outstanding = 0u32;
    while acked < count {
        while outstanding < window && next < count {
            let pkid = (next % 60_000) as u16 + 1;
            let topic = format!("{prefix}/{}/{next}", next / 100);
            send(
                link,
                publish_packet(
                    &topic,
                    QoS::AtLeastOnce,
                    pkid,
                    next.to_string().as_bytes(),
                    true,
                ),
            )
            .await;
            next += 1;
            outstanding += 1;
        }
        match recv(link, "PUBACK").await {
            Packet::PubAck(a) => {
                assert!(accepted(a.reason), "PUBACK {a:?}");
                acked += 1;
                outstanding -= 1;
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

/// Subscribe a fresh client on `port` to `filter` and return the retained messages
/// (topic -> payload) once `expect` arrived or `WAIT` passed without a new one.
async fn retained_on(
    port: u16,
    client: &str,
    filter: &str,
    expect: usize,
) -> BTreeMap<String, Vec<u8>> {
    let (mut link, _) = Link::connect(port, connect_packet(client, true, None), None)
        .await
        .unwrap_or_else(|e| panic!("{client}: {e:?}"));
    send(
        &mut link,
        Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![Filter::new(filter, QoS::AtLeastOnce)],
            properties: None,
        }),
    )
    .await;
    let mut got = BTreeMap::new();
    while got.len() < expect {
        match link.read(WAIT).await {
            Ok(Packet::Publish(p)) => {
                assert!(p.retain, "a retained message without RETAIN: {p:?}");
                if p.qos != QoS::AtMostOnce {
                    puback(&mut link, p.pkid).await;
                }
                got.insert(
                    String::from_utf8_lossy(&p.topic).into_owned(),
                    p.payload.to_vec(),
                );
            }
            Ok(_) => {}
            Err(NoPacket::Silent) => break,
            Err(NoPacket::Closed) => panic!("{client}: connection closed"),
        }
    }
    link.disconnect().await;
    got
}

// ---- tests ------------------------------------------------------------------------------

/// Sessions, subscriptions, an in-flight QoS 1 delivery, an outbound QoS 2 flow waiting for
/// PUBCOMP, an offline queue, a retained message and an inbound QoS 2 packet id waiting for
/// PUBREL: all on the new leader after kill -9 of the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_state_survives_leader_kill9() {
    let mut c = Cluster::start("every_kind_of_state_survives_leader_kill9");
    let leader = c.leader().await;
    let port = c.mqtt_port(leader);

    let (mut keeper, ack) = Link::connect(port, connect_packet("keeper", true, Some(600)), None)
        .await
        .expect("keeper connects");
    assert!(!ack.session_present);
    subscribe(
        &mut keeper,
        1,
        &[("s/#", QoS::AtLeastOnce), ("q2/#", QoS::ExactlyOnce)],
    )
    .await;
    let (mut publ, _) = Link::connect(port, connect_packet("publisher", true, Some(600)), None)
        .await
        .expect("publisher connects");

    // An in-flight QoS 1 delivery the keeper never acknowledges.
    publish_acked(&mut publ, "s/inflight", 1, b"inflight", false).await;
    let inflight = wait_for(&mut keeper, "PUBLISH s/inflight", |p| match p {
        Packet::Publish(p) if &p.topic[..] == b"s/inflight" => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(inflight.qos, QoS::AtLeastOnce);

    // An outbound QoS 2 delivery at "PUBREC received": the broker sent PUBREL (so it has
    // committed the PUBREC), the keeper never completes it.
    send(
        &mut publ,
        publish_packet("q2/out", QoS::ExactlyOnce, 2, b"out", false),
    )
    .await;
    wait_for(&mut publ, "PUBREC 2", |p| {
        matches!(p, Packet::PubRec(r) if r.pkid == 2).then_some(())
    })
    .await;
    pubrel(&mut publ, 2).await;
    wait_for(&mut publ, "PUBCOMP 2", |p| {
        matches!(p, Packet::PubComp(r) if r.pkid == 2).then_some(())
    })
    .await;
    let out = wait_for(&mut keeper, "PUBLISH q2/out", |p| match p {
        Packet::Publish(p) if &p.topic[..] == b"q2/out" => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(out.qos, QoS::ExactlyOnce);
    pubrec(&mut keeper, out.pkid).await;
    wait_for(&mut keeper, "PUBREL", |p| {
        matches!(p, Packet::PubRel(r) if r.pkid == out.pkid).then_some(())
    })
    .await;
    // The keeper goes away without DISCONNECT; its session stays.
    drop(keeper);

    // Its offline queue.
    for i in 0..5u16 {
        let topic = format!("s/q/{i}");
        publish_acked(&mut publ, &topic, 10 + i, i.to_string().as_bytes(), false).await;
    }
    // A retained message.
    publish_acked(&mut publ, "r/kept", 3, b"kept", true).await;
    // An inbound QoS 2 message whose PUBREL has not come yet.
    send(
        &mut publ,
        publish_packet("q2/in", QoS::ExactlyOnce, 9, b"in", false),
    )
    .await;
    let rec = wait_for(&mut publ, "PUBREC 9", |p| match p {
        Packet::PubRec(r) if r.pkid == 9 => Some(r.reason),
        _ => None,
    })
    .await;
    assert!(rec_accepted(rec), "PUBREC {rec:?}");

    c.kill9(leader);
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    let port = c.mqtt_port(new_leader);

    // The publisher's session: its QoS 2 packet id 9 is remembered, so the resent PUBLISH
    // (DUP) is not a new message.
    let (mut publ, ack) = Link::connect(port, connect_packet("publisher", false, Some(600)), None)
        .await
        .expect("publisher reconnects to the new leader");
    assert!(ack.session_present, "publisher session on the new leader");
    send(
        &mut publ,
        dup(publish_packet("q2/in", QoS::ExactlyOnce, 9, b"in", false)),
    )
    .await;
    wait_for(&mut publ, "PUBREC 9 again", |p| {
        matches!(p, Packet::PubRec(r) if r.pkid == 9).then_some(())
    })
    .await;
    pubrel(&mut publ, 9).await;
    wait_for(&mut publ, "PUBCOMP 9", |p| {
        matches!(p, Packet::PubComp(r) if r.pkid == 9).then_some(())
    })
    .await;

    // The keeper's session: present, redelivery first, then the queue; its subscriptions
    // still route.
    let (mut keeper, ack) = Link::connect(port, connect_packet("keeper", false, Some(600)), None)
        .await
        .expect("keeper reconnects to the new leader");
    assert!(ack.session_present, "keeper session on the new leader");
    publish_acked(&mut publ, "s/live", 4, b"live", false).await;
    let seen = receive_until(&mut keeper, WAIT, |seen| {
        seen.iter().any(|s| s.topic() == Some("s/live"))
    })
    .await;

    let pos = |pred: &dyn Fn(&Seen) -> bool| seen.iter().position(pred);
    let first = seen.first().expect("something was redelivered");
    assert_eq!(
        *first,
        Seen::Publish {
            topic: "s/inflight".into(),
            payload: b"inflight".to_vec(),
            qos: QoS::AtLeastOnce,
            pkid: inflight.pkid,
            dup: true,
            retain: false,
        },
        "the unacknowledged QoS 1 delivery comes first, with DUP and its packet id; saw {seen:?}"
    );
    let rel = pos(&|s| *s == Seen::PubRel(out.pkid))
        .unwrap_or_else(|| panic!("PUBREL {} resent; saw {seen:?}", out.pkid));
    assert!(
        seen.iter().all(|s| s.topic() != Some("q2/out")),
        "the QoS 2 message whose PUBREC was committed came again: {seen:?}"
    );
    let queued: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.topic().is_some_and(|t| t.starts_with("s/q/")))
        .collect();
    let topics: Vec<&str> = queued.iter().filter_map(|s| s.topic()).collect();
    assert_eq!(
        topics,
        ["s/q/0", "s/q/1", "s/q/2", "s/q/3", "s/q/4"],
        "the offline queue, in order, once; saw {seen:?}"
    );
    let q0 = pos(&|s| s.topic() == Some("s/q/0")).unwrap();
    assert!(
        rel < q0,
        "the PUBREL resend precedes queued messages: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| s.topic() == Some("q2/in")).count(),
        1,
        "the inbound QoS 2 message exactly once despite its DUP resend: {seen:?}"
    );

    let retained = retained_on(port, "reader", "r/#", 1).await;
    assert_eq!(
        retained.get("r/kept").map(Vec::as_slice),
        Some(&b"kept"[..]),
        "retained message on the new leader: {retained:?}"
    );
}

/// Which packets count as the broker taking responsibility for a message.
fn stream_qos(qos: QoS) -> &'static str {
    match qos {
        QoS::AtLeastOnce => "qos1",
        _ => "qos2",
    }
}

/// A publisher streaming `0..=total` (the last one only once every earlier one is
/// acknowledged) with `window` in flight, over a persistent session it resumes on whichever
/// node serves: after a reconnect it resends unacknowledged PUBLISHes with DUP and the same
/// packet id, and PUBREL for those with PUBREC. Reports the port it is connected to once
/// `kill_at` messages are acknowledged. Returns the acknowledged (PUBACK / PUBREC) numbers.
async fn stream_publisher(
    ports: Vec<u16>,
    qos: QoS,
    total: u32,
    window: usize,
    kill_at: usize,
    kill: oneshot::Sender<u16>,
) -> (BTreeSet<u32>, usize, usize) {
    let mut kill = Some(kill);
    let mut resent = 0usize;
    let mut next = 0u32;
    // (packet id, number, PUBREC received), in send order.
    let mut inflight: VecDeque<(u16, u32, bool)> = VecDeque::new();
    let mut free: Vec<u16> = (1..=window as u16).rev().collect();
    let mut acked = BTreeSet::new();
    let mut done = 0u32;
    let mut connects = 0usize;
    let deadline = Instant::now() + Duration::from_secs(25);
    let packet = |seq: u32, pkid: u16| {
        publish_packet("st/stream", qos, pkid, seq.to_string().as_bytes(), false)
    };
    'session: while done <= total {
        let left = deadline.saturating_duration_since(Instant::now());
        let (mut link, ack) = connect_any(
            &ports,
            &connect_packet("stream-pub", connects == 0, Some(600)),
            None,
            left,
        )
        .await
        .unwrap_or_else(|| panic!("publisher: no node served; {done} of {} done", total + 1));
        if connects > 0 {
            assert!(
                ack.session_present,
                "publisher session lost across failover"
            );
        }
        connects += 1;
        for &(pkid, seq, rec) in &inflight {
            let p = if rec {
                Packet::PubRel(PubRel::new(pkid, None))
            } else {
                dup(packet(seq, pkid))
            };
            if !link.send(p).await {
                continue 'session;
            }
            resent += 1;
        }
        loop {
            while inflight.len() < window
                && (next < total || (next == total && inflight.is_empty()))
            {
                let pkid = free.pop().expect("a free packet id");
                if !link.send(packet(next, pkid)).await {
                    inflight.push_back((pkid, next, false));
                    next += 1;
                    continue 'session;
                }
                inflight.push_back((pkid, next, false));
                next += 1;
            }
            assert!(
                Instant::now() < deadline,
                "publisher: {done} of {} done in time",
                total + 1
            );
            let got = match link.read(Duration::from_secs(5)).await {
                Ok(p) => p,
                Err(_) => continue 'session,
            };
            let find = |inflight: &VecDeque<(u16, u32, bool)>, pkid: u16| {
                inflight.iter().position(|e| e.0 == pkid)
            };
            match got {
                Packet::PubAck(a) if qos == QoS::AtLeastOnce => {
                    assert!(accepted(a.reason), "PUBACK {a:?}");
                    if let Some(i) = find(&inflight, a.pkid) {
                        let (pkid, seq, _) = inflight.remove(i).unwrap();
                        acked.insert(seq);
                        free.push(pkid);
                        done += 1;
                    }
                }
                Packet::PubRec(r) if qos == QoS::ExactlyOnce => {
                    assert!(rec_accepted(r.reason), "PUBREC {r:?}");
                    if let Some(i) = find(&inflight, r.pkid) {
                        inflight[i].2 = true;
                        acked.insert(inflight[i].1);
                        if !link.send(Packet::PubRel(PubRel::new(r.pkid, None))).await {
                            continue 'session;
                        }
                    }
                }
                Packet::PubComp(r) if qos == QoS::ExactlyOnce => {
                    if let Some(i) = find(&inflight, r.pkid) {
                        let (pkid, _, rec) = inflight.remove(i).unwrap();
                        assert!(rec, "PUBCOMP before PUBREC for packet id {pkid}");
                        free.push(pkid);
                        done += 1;
                    }
                }
                _ => {}
            }
            if acked.len() >= kill_at {
                if let Some(k) = kill.take() {
                    let _ = k.send(link.port);
                }
            }
            if done > total {
                link.disconnect().await;
                break 'session;
            }
        }
    }
    (acked, connects, resent)
}

/// A persistent subscriber on `st/#` that follows the leader; returns how many times each
/// number was delivered to it, once it has them all.
async fn stream_subscriber(
    ports: Vec<u16>,
    mut link: Link,
    total: u32,
) -> (BTreeMap<u32, u32>, usize, usize) {
    let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
    let mut held_back = 0usize;
    let mut awaiting_rel: HashSet<u16> = HashSet::new();
    let mut connects = 1usize;
    let deadline = Instant::now() + Duration::from_secs(28);
    loop {
        match link.read(Duration::from_secs(5)).await {
            Ok(Packet::Publish(p)) => {
                let fresh = match p.qos {
                    QoS::ExactlyOnce => {
                        let fresh = awaiting_rel.insert(p.pkid);
                        let _ = link.send(Packet::PubRec(PubRec::new(p.pkid, None))).await;
                        fresh
                    }
                    _ => {
                        let _ = link.send(Packet::PubAck(PubAck::new(p.pkid, None))).await;
                        true
                    }
                };
                if !fresh {
                    held_back += 1;
                }
                if fresh {
                    let seq: u32 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
                    *counts.entry(seq).or_default() += 1;
                    if counts.len() as u32 == total + 1 {
                        return (counts, connects, held_back);
                    }
                }
            }
            Ok(Packet::PubRel(r)) => {
                awaiting_rel.remove(&r.pkid);
                let _ = link.send(Packet::PubComp(PubComp::new(r.pkid, None))).await;
            }
            Ok(_) => {}
            Err(_) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let Some((l, ack)) = connect_any(
                    &ports,
                    &connect_packet("stream-sub", false, Some(600)),
                    None,
                    left,
                )
                .await
                else {
                    return (counts, connects, held_back);
                };
                assert!(
                    ack.session_present,
                    "subscriber session lost across failover"
                );
                link = l;
                connects += 1;
            }
        }
        if Instant::now() >= deadline {
            return (counts, connects, held_back);
        }
    }
}

async fn stream_through_failover(name: &str, qos: QoS) {
    const TOTAL: u32 = 2000;
    const KILL_AT: usize = 300;
    let mut c = Cluster::start(name);
    let leader = c.leader().await;
    let ports = c.mqtt_ports();

    let (mut sub, _) = Link::connect(
        c.mqtt_port(leader),
        connect_packet("stream-sub", true, Some(600)),
        None,
    )
    .await
    .expect("subscriber connects");
    subscribe(&mut sub, 1, &[("st/#", qos)]).await;
    let subscriber = tokio::spawn(stream_subscriber(ports.clone(), sub, TOTAL));
    let (kill_tx, kill_rx) = oneshot::channel();
    let publisher = tokio::spawn(stream_publisher(ports, qos, TOTAL, 20, KILL_AT, kill_tx));

    let port = tokio::time::timeout(Duration::from_secs(20), kill_rx)
        .await
        .expect("the stream reached the kill point")
        .expect("publisher alive");
    let victim = c.id_of_port(port);
    assert_eq!(victim, leader, "the publisher is on the leader");
    c.kill9(victim);

    let (acked, pub_connects, resent) = publisher.await.expect("publisher");
    let (counts, sub_connects, held_back) = subscriber.await.expect("subscriber");
    assert!(
        pub_connects >= 2 && sub_connects >= 2,
        "both clients moved to the new leader (publisher {pub_connects}, subscriber {sub_connects} connections)"
    );
    assert_eq!(acked.len() as u32, TOTAL + 1, "every message acknowledged");
    let lost: Vec<u32> = acked
        .iter()
        .copied()
        .filter(|s| !counts.contains_key(s))
        .collect();
    assert!(
        lost.is_empty(),
        "{}: {} acknowledged messages lost (first: {:?})",
        stream_qos(qos),
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let redelivered: u32 = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "{}: {} acknowledged, all delivered; {redelivered} delivered again, {held_back} QoS 2 resends \
         held back by the subscriber; publisher resent {resent} after reconnecting; publisher \
         {pub_connects} and subscriber {sub_connects} connections",
        stream_qos(qos),
        acked.len()
    );
    if qos == QoS::ExactlyOnce {
        let twice: Vec<(u32, u32)> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, n)| (*s, *n))
            .collect();
        assert!(
            twice.is_empty(),
            "QoS 2 delivered {} messages more than once: {:?}",
            twice.len(),
            &twice[..twice.len().min(10)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_stream_survives_leader_kill9() {
    stream_through_failover("qos1_stream_survives_leader_kill9", QoS::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_stream_survives_leader_kill9_exactly_once() {
    stream_through_failover(
        "qos2_stream_survives_leader_kill9_exactly_once",
        QoS::ExactlyOnce,
    )
    .await;
}

/// The packet types in a 3.1.1 byte stream.
fn v4_kinds(mut bytes: &[u8]) -> Vec<u8> {
    let mut kinds = Vec::new();
    while let Some(&first) = bytes.first() {
        let mut len = 0usize;
        let mut i = 1;
        loop {
            let Some(&b) = bytes.get(i) else {
                return kinds;
            };
            len |= usize::from(b & 0x7F) << (7 * (i - 1));
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        kinds.push(first >> 4);
        bytes = &bytes[(i + len).min(bytes.len())..];
    }
    kinds
}

/// SIGSTOP both followers: to the leader that is a full partition. It must stop serving
/// within its lease, close its clients, and acknowledge nothing; after SIGCONT the cluster
/// serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_cut_off_from_both_followers_stops_serving_and_acks_nothing() {
    // Lease 400 ms (the default); the margin is for a loaded machine.
    const WITHIN: Duration = Duration::from_secs(5);
    let mut c = Cluster::start("leader_cut_off_from_both_followers");
    let leader = c.leader().await;
    let port = c.mqtt_port(leader);
    let followers = c.others(leader);

    let (mut v5, _) = Link::connect(port, connect_packet("cut-v5", true, None), None)
        .await
        .expect("5.0 client connects");
    let mut v4 = raw_v4::dial(port).await;
    raw_v4::send(&mut v4, &raw_v4::Connect::new("cut-v4").bytes()).await;
    assert_eq!(
        raw_v4::read_exact(&mut v4, 4, WAIT).await,
        raw_v4::connack(false, 0)
    );
    // Both work before the cut.
    publish_acked(&mut v5, "cut/before", 1, b"before", false).await;

    for &f in &followers {
        c.stop(f);
    }
    let cut = Instant::now();
    // QoS 1 publishes during the cut: no PUBACK may ever come for them.
    send(
        &mut v5,
        publish_packet("cut/during", QoS::AtLeastOnce, 2, b"v5", false),
    )
    .await;
    raw_v4::send(&mut v4, &raw::publish_v4(1, 7, b"cut/during", b"v4")).await;

    let line = c.wait_log(leader, "stopped serving MQTT", WITHIN);
    assert!(line.contains("lease_held=false"), "{line}");
    let stopped_after = cut.elapsed();

    // 5.0: DISCONNECT "use another server", then the close; no PUBACK before it.
    let mut got = Vec::new();
    let closed = loop {
        match v5.read(WITHIN.saturating_sub(cut.elapsed())).await {
            Ok(p) => got.push(p),
            Err(NoPacket::Closed) => break cut.elapsed(),
            Err(NoPacket::Silent) => panic!("5.0 client not closed within {WITHIN:?}: {got:?}"),
        }
    };
    assert!(
        !got.iter().any(|p| matches!(p, Packet::PubAck(_))),
        "a cut-off leader acknowledged a publish: {got:?}"
    );
    match got.last() {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(
                d.reason_code,
                DisconnectReasonCode::UseAnotherServer,
                "{got:?}"
            )
        }
        other => panic!("expected a DISCONNECT before the close, got {other:?} (all: {got:?})"),
    }
    // 3.1.1: EOF, no PUBACK.
    let bytes = raw_v4::read_until_closed(&mut v4, WITHIN).await;
    assert!(
        !v4_kinds(&bytes).contains(&kind::PUBACK),
        "a cut-off leader acknowledged a 3.1.1 publish: {bytes:02x?}"
    );
    // And it takes no new session meanwhile.
    assert_ne!(
        probe(port).await,
        Probe::Serving,
        "a cut-off leader accepted a session"
    );
    eprintln!("stopped serving {stopped_after:?} and closed clients {closed:?} after the cut");

    for &f in &followers {
        c.cont(f);
    }
    let now_leader = c.leader().await;
    let (mut sub, _) = Link::connect(
        c.mqtt_port(now_leader),
        connect_packet("after-sub", true, None),
        None,
    )
    .await
    .expect("subscriber after the heal");
    subscribe(&mut sub, 1, &[("cut/after", QoS::AtLeastOnce)]).await;
    let (mut p, _) = Link::connect(
        c.mqtt_port(now_leader),
        connect_packet("after-pub", true, None),
        None,
    )
    .await
    .expect("publisher after the heal");
    publish_acked(&mut p, "cut/after", 1, b"healed", false).await;
    let seen = receive_until(&mut sub, WAIT, |s| !s.is_empty()).await;
    assert_eq!(seen[0].topic(), Some("cut/after"));
}

/// kill -9 of all three, restart of all three on their data directories: sessions, queues
/// and retained messages are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cluster_restart_keeps_sessions_queues_and_retained() {
    let mut c = Cluster::start("full_cluster_restart_keeps_everything");
    let leader = c.leader().await;
    let port = c.mqtt_port(leader);
    let (mut keeper, _) = Link::connect(port, connect_packet("fr-keeper", true, Some(600)), None)
        .await
        .expect("keeper connects");
    subscribe(&mut keeper, 1, &[("fr/#", QoS::AtLeastOnce)]).await;
    keeper.disconnect().await;
    let (mut publ, _) = Link::connect(port, connect_packet("fr-pub", true, None), None)
        .await
        .expect("publisher connects");
    for i in 0..10u16 {
        publish_acked(
            &mut publ,
            &format!("fr/q/{i}"),
            i + 1,
            i.to_string().as_bytes(),
            false,
        )
        .await;
    }
    publish_acked(&mut publ, "fr-ret/x", 20, b"kept", true).await;
    drop(publ);

    for id in c.ids() {
        c.kill9(id);
    }
    for id in c.ids() {
        c.restart(id);
    }
    let (mut keeper, present) = reconnect(&c, "fr-keeper", false).await;
    assert!(present, "session present after a full-cluster restart");
    let seen = receive_until(&mut keeper, WAIT, |s| {
        s.iter().any(|s| s.topic() == Some("fr/q/9"))
    })
    .await;
    let topics: Vec<&str> = seen.iter().filter_map(Seen::topic).collect();
    let want: Vec<String> = (0..10).map(|i| format!("fr/q/{i}")).collect();
    assert_eq!(topics, want, "the offline queue in order");

    let serving = c.id_of_port(keeper.port);
    let retained = retained_on(c.mqtt_port(serving), "fr-reader", "fr-ret/#", 1).await;
    assert_eq!(
        retained.get("fr-ret/x").map(Vec::as_slice),
        Some(&b"kept"[..])
    );
    // The subscription still routes.
    let (mut publ, _) = reconnect(&c, "fr-pub2", true).await;
    publish_acked(&mut publ, "fr/live", 1, b"live", false).await;
    let seen = receive_until(&mut keeper, WAIT, |s| !s.is_empty()).await;
    assert_eq!(seen[0].topic(), Some("fr/live"));
}

/// A subscriber with a persistent session on `will/#` (QoS 1) that reconnects to the new
/// leader after a failover.
async fn will_watcher(port: u16, id: &str) -> Link {
    let (mut w, _) = Link::connect(port, connect_packet(id, true, Some(600)), None)
        .await
        .expect("watcher connects");
    subscribe(&mut w, 1, &[("will/#", QoS::AtLeastOnce)]).await;
    w
}

/// A client connected to the leader with a will (no delay); kill -9 of the leader: the new
/// leader publishes the will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_by_the_new_leader() {
    let mut c = Cluster::start("will_is_published_by_the_new_leader");
    let leader = c.leader().await;
    let port = c.mqtt_port(leader);
    let _watcher = will_watcher(port, "will-watcher").await;
    let (_client, _) = Link::connect(
        port,
        connect_packet("will-client", true, None),
        Some(will("will/now", b"gone", 1, None)),
    )
    .await
    .expect("client with a will connects");

    c.kill9(leader);
    let new_leader = c.leader().await;
    let serving_at = Instant::now();
    let (mut watcher, ack) = Link::connect(
        c.mqtt_port(new_leader),
        connect_packet("will-watcher", false, Some(600)),
        None,
    )
    .await
    .expect("watcher reconnects");
    assert!(ack.session_present);
    let seen = receive_until(&mut watcher, WAIT, |s| {
        s.iter().any(|s| s.topic() == Some("will/now"))
    })
    .await;
    let will_msg = seen.iter().find(|s| s.topic() == Some("will/now")).unwrap();
    assert!(
        matches!(will_msg, Seen::Publish { payload, .. } if payload == b"gone"),
        "{will_msg:?}"
    );
    eprintln!(
        "will received {:?} after the new leader served",
        serving_at.elapsed()
    );
}

/// 5.0 will delay 2 s: the client reconnects to the new leader within the delay, so no
/// will; then it drops without DISCONNECT, and the will comes after the delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_lets_a_client_resume_on_the_new_leader() {
    let mut c = Cluster::start("will_delay_lets_a_client_resume_on_the_new_leader");
    let leader = c.leader().await;
    let port = c.mqtt_port(leader);
    let _watcher = will_watcher(port, "delay-watcher").await;
    let the_will = will("will/delayed", b"late", 1, Some(2));
    let (_client, _) = Link::connect(
        port,
        connect_packet("delay-client", true, Some(60)),
        Some(the_will.clone()),
    )
    .await
    .expect("client with a delayed will connects");

    c.kill9(leader);
    // The client resumes at once on whichever node serves.
    let (client, ack) = connect_any(
        &c.mqtt_ports(),
        &connect_packet("delay-client", false, Some(60)),
        Some(&the_will),
        ELECTION,
    )
    .await
    .expect("client resumes on the new leader");
    assert!(ack.session_present, "client session on the new leader");
    let new_port = client.port;
    let (mut watcher, ack) = Link::connect(
        new_port,
        connect_packet("delay-watcher", false, Some(600)),
        None,
    )
    .await
    .expect("watcher reconnects");
    assert!(ack.session_present);
    // Well past the delay (2 s) plus the housekeeping tick (1 s): no will.
    match watcher.read(Duration::from_secs(4)).await {
        Err(NoPacket::Silent) => {}
        other => panic!("expected no will while the client is back, got {other:?}"),
    }

    // Positive control: the client drops without DISCONNECT; the will comes after the delay.
    drop(client);
    let dropped = Instant::now();
    let seen = receive_until(&mut watcher, WAIT, |s| {
        s.iter().any(|s| s.topic() == Some("will/delayed"))
    })
    .await;
    let waited = dropped.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "the will came {waited:?} after the drop, before its 2 s delay: {seen:?}"
    );
    eprintln!("will published {waited:?} after the client dropped");
}

/// Followers refuse sessions: 3.1.1 CONNACK 3, 5.0 CONNACK 0x9C with a Server Reference
/// naming the leader's MQTT address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_refuse_connect_and_name_the_leader() {
    let c = Cluster::start("followers_refuse_connect_and_name_the_leader");
    let leader = c.leader().await;
    let leader_addr = c.mqtt_addr(leader);
    for f in c.others(leader) {
        c.wait_follower_of(f, leader, ELECTION).await;
        let port = c.mqtt_port(f);

        let mut v4 = raw_v4::dial(port).await;
        raw_v4::send(&mut v4, &raw_v4::Connect::new("refused-v4").bytes()).await;
        let bytes = raw_v4::read_until_closed(&mut v4, WAIT).await;
        assert_eq!(
            bytes,
            raw_v4::connack(false, 3),
            "node {f}: 3.1.1 CONNACK 'server unavailable', then close"
        );

        let mut v5 = raw::Raw::dial(port).await;
        v5.send(&raw::connect_v5("refused-v5")).await;
        let frames = v5.until_closed(WAIT).await;
        let ack = frames.first().expect("a CONNACK");
        assert_eq!(
            ack.connack(),
            Some((false, 0x9C)),
            "node {f}: {frames:02x?}"
        );
        let mut want = (leader_addr.len() as u16).to_be_bytes().to_vec();
        want.extend_from_slice(leader_addr.as_bytes());
        let reference: Vec<Vec<u8>> = ack
            .connack_props()
            .into_iter()
            .filter(|(id, _)| *id == 0x1C)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            reference,
            vec![want],
            "node {f}: one Server Reference naming the leader {leader_addr}"
        );
        assert_eq!(frames.len(), 1, "node {f}: only the CONNACK: {frames:02x?}");

        // A client library sees the same.
        match probe(port).await {
            Probe::Refused {
                code,
                server_reference,
            } => {
                assert_eq!(code, ConnectReturnCode::UseAnotherServer);
                assert_eq!(server_reference.as_deref(), Some(leader_addr.as_str()));
            }
            other => panic!("node {f}: {other:?}"),
        }
    }
}

/// A follower down while retained messages are written comes back and catches up; it is
/// then the only node that can be elected, and serves all of them.
///
/// 1. kill -9 follower F; `count` retained messages are committed by the leader L and G.
/// 2. F restarts; G is killed: the next commit needs F, so it proves F caught up.
/// 3. L is killed and G restarted: G's log lacks that last commit, so only F can win.
///
/// With `window` 1 every message is its own Raft entry. Returns F.
async fn catch_up_and_serve(c: &mut Cluster, count: u32, window: u32) -> u64 {
    let l = c.leader().await;
    let others = c.others(l);
    let (f, g) = (others[0], others[1]);
    let port = c.mqtt_port(l);

    c.kill9(f);
    let (mut publ, _) = Link::connect(port, connect_packet("cu-pub", true, None), None)
        .await
        .expect("publisher connects");
    publish_retained_many(&mut publ, "cu", count, window).await;
    drop(publ);

    c.restart(f);
    c.kill9(g);
    // Committed by L and F alone: F's log holds everything before it. L may lose its lease
    // while F catches up (its connections close then): retry on a new connection.
    let deadline = Instant::now() + ELECTION;
    loop {
        let (mut publ, _) = reconnect(c, "cu-pub", true).await;
        let ok = publ
            .send(publish_packet(
                "cu-marker",
                QoS::AtLeastOnce,
                1,
                b"marker",
                true,
            ))
            .await
            && matches!(publ.read(WAIT).await, Ok(Packet::PubAck(a)) if accepted(a.reason));
        if ok {
            assert_eq!(c.id_of_port(publ.port), l, "only L can lead with F behind");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the marker was not committed by L and F"
        );
    }

    c.kill9(l);
    c.restart(g);
    let leader = c.leader().await;
    assert_eq!(
        leader, f,
        "only the caught-up node {f} can be elected (node {g} lacks the last commit)"
    );
    let port = c.mqtt_port(f);
    let mut got = BTreeMap::new();
    for block in 0..count.div_ceil(100) {
        let expect = (count - block * 100).min(100) as usize;
        let filter = format!("cu/{block}/+");
        got.append(&mut retained_on(port, "cu-reader", &filter, expect).await);
    }
    let missing: Vec<u32> = (0..count)
        .filter(|i| {
            got.get(&format!("cu/{}/{i}", i / 100)).map(Vec::as_slice)
                != Some(i.to_string().as_bytes())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} retained messages missing or wrong on the caught-up node {f} (got {}; missing: {:?})",
        missing.len(),
        got.len(),
        &missing[..missing.len().min(300)]
    );
    let marker = retained_on(port, "cu-reader2", "cu-marker", 1).await;
    assert_eq!(
        marker.get("cu-marker").map(Vec::as_slice),
        Some(&b"marker"[..])
    );
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_and_serves() {
    let mut c = Cluster::start("restarted_follower_catches_up_and_serves");
    catch_up_and_serve(&mut c, 1000, 100).await;
}

/// As above, but the leader snapshots every 100 entries and keeps 1000 entries of log
/// behind a snapshot: after 1300 entries the log F needs is purged, so F must catch up by
/// installing a snapshot (openraft logs it on F).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_by_snapshot_and_serves() {
    let mut c = Cluster::builder("restarted_follower_catches_up_by_snapshot")
        .env("RAFTMQ_RAFT_SNAPSHOT_EVERY_ENTRIES", "100")
        .env(
            "RUST_LOG",
            "info,openraft=warn,openraft::engine::handler::following_handler=info",
        )
        .start();
    let f = catch_up_and_serve(&mut c, 1300, 1).await;
    let installed = c
        .log(f)
        .lines()
        .filter(|l| l.contains("install_full_snapshot"))
        .count();
    assert!(
        installed > 0,
        "node {f} caught up without installing a snapshot"
    );
}

/// `{"id": .., "raft_addr": .., "mqtt_addr": .., "admin_addr": ..}` for node `id`.
fn learner_body(c: &Cluster, id: u64) -> String {
    let (raft, mqtt, admin) = c.addrs(id);
    serde_json::json!({"id": id, "raft_addr": raft, "mqtt_addr": mqtt, "admin_addr": admin})
        .to_string()
}

fn ids(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list of ids: {v}"))
        .iter()
        .map(|x| x.as_u64().expect("an id"))
        .collect()
}

/// A fourth node joins through the admin API: added as a learner it catches up by
/// installing a snapshot (the leader purged the log it would need), is promoted to voter,
/// and an original follower is removed. Then kill -9 of the leader: the remaining voters
/// (one of them the newcomer) elect a leader that has every session, queued and retained
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_joins_by_snapshot_is_promoted_and_replaces_a_voter() {
    const RETAINED: u32 = 1300;
    let mut c = Cluster::builder("learner_joins_by_snapshot")
        .env("RAFTMQ_ADMIN_TOKEN", TOKEN)
        .env("RAFTMQ_RAFT_SNAPSHOT_EVERY_ENTRIES", "100")
        .env(
            "RUST_LOG",
            "info,openraft=warn,openraft::engine::handler::following_handler=info",
        )
        .start();
    let l = c.leader().await;
    let port = c.mqtt_port(l);

    // State: a persistent session with a subscription and a queue, and retained messages
    // written one Raft entry each, so that snapshots are taken and the log is purged.
    let (mut keeper, _) = Link::connect(port, connect_packet("jn-keeper", true, Some(600)), None)
        .await
        .expect("keeper connects");
    subscribe(&mut keeper, 1, &[("jq/#", QoS::AtLeastOnce)]).await;
    keeper.disconnect().await;
    let (mut publ, _) = Link::connect(port, connect_packet("jn-pub", true, None), None)
        .await
        .expect("publisher connects");
    for i in 0..5u16 {
        publish_acked(
            &mut publ,
            &format!("jq/{i}"),
            i + 1,
            i.to_string().as_bytes(),
            false,
        )
        .await;
    }
    publish_retained_many(&mut publ, "jr", RETAINED, 1).await;
    drop(publ);

    let admin = Admin::new(c.node(l).admin_port);
    let new = c.add_node();
    let r = admin
        .post("/cluster/learners", &learner_body(&c, new))
        .await;
    assert_eq!(r.status, 200, "add learner: {}", r.text);
    assert!(
        ids(&r.json["membership"]["learners"]).contains(&new),
        "{}",
        r.text
    );
    assert!(
        c.log(new).contains("install_full_snapshot"),
        "node {new} caught up without a snapshot:\n{}",
        c.log(new)
    );

    let r = admin
        .post("/cluster/voters", &format!(r#"{{"add": [{new}]}}"#))
        .await;
    assert_eq!(r.status, 200, "promote: {}", r.text);
    assert!(
        ids(&r.json["membership"]["voters"]).contains(&new),
        "{}",
        r.text
    );

    let originals = c.others(l);
    let (gone, stays) = (originals[0], originals[1]);
    assert_ne!(gone, new);
    let r = admin.delete(&format!("/cluster/nodes/{gone}")).await;
    assert_eq!(r.status, 200, "remove node {gone}: {}", r.text);
    let mut voters = ids(&r.json["membership"]["voters"]);
    voters.sort_unstable();
    let mut want = vec![l, stays, new];
    want.sort_unstable();
    assert_eq!(voters, want, "{}", r.text);
    c.kill9(gone);

    // Voters are now {L, stays, new}: without L, the newcomer is needed for every commit.
    c.kill9(l);
    let leader = c.leader().await;
    assert!(leader == stays || leader == new, "leader {leader}");
    let port = c.mqtt_port(leader);

    let (mut keeper, ack) =
        Link::connect(port, connect_packet("jn-keeper", false, Some(600)), None)
            .await
            .expect("keeper reconnects");
    assert!(ack.session_present, "session on node {leader}");
    let seen = receive_until(&mut keeper, WAIT, |s| {
        s.iter().any(|s| s.topic() == Some("jq/4"))
    })
    .await;
    let topics: Vec<&str> = seen.iter().filter_map(Seen::topic).collect();
    assert_eq!(
        topics,
        ["jq/0", "jq/1", "jq/2", "jq/3", "jq/4"],
        "queue on node {leader}"
    );

    let mut got = BTreeMap::new();
    for block in 0..RETAINED.div_ceil(100) {
        let expect = (RETAINED - block * 100).min(100) as usize;
        let filter = format!("jr/{block}/+");
        got.append(&mut retained_on(port, "jn-reader", &filter, expect).await);
    }
    let missing: Vec<u32> = (0..RETAINED)
        .filter(|i| {
            got.get(&format!("jr/{}/{i}", i / 100)).map(Vec::as_slice)
                != Some(i.to_string().as_bytes())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} retained messages missing on node {leader} (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}
