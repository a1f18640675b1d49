//! MQTT 5.0 as the spec says and Mosquitto behaves, through real sockets: rumqttc's v5 client
//! where a client library will do, a packet-level client (rumqttc's v5 codec on a bare
//! socket, `common::raw_v5`) for what a library hides or will not do, and paho-mqtt for
//! Python (`tests/paho/*.py`) as a client whose codec shares no code with ours. Every test
//! starts its own broker.
//!
//! A test that must show a message did *not* arrive publishes a sentinel afterwards that the
//! subscriber does get, and checks that the sentinel is the next PUBLISH it receives: messages
//! from one publisher reach a subscriber in the order the broker acked them. Where no sentinel
//! can be ordered after the event (timers: will delay), a fixed grace period is documented at
//! the test.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::client5;
use common::raw_v5::{connect_packet, props, Raw};
use common::{require, Broker};
use rumqttc::v5::mqttbytes::v5::{
    DisconnectReasonCode, Filter, LastWill, LastWillProperties, Packet, PubAckReason,
    PubCompReason, PubRecReason, Publish, PublishProperties, RetainForwardRule,
    SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use tokio::time::Instant;

/// Housekeeping period (will delay, session and message expiry) for the timer tests, so a
/// deadline is acted on within 0.1 s of passing instead of 1 s.
const FAST_TICK: (&str, &str) = ("RAFTMQ_RAFT_TICK_MS", "100");

fn fast_broker() -> Broker {
    Broker::builder().env(FAST_TICK.0, FAST_TICK.1).start()
}

fn text(p: &Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}

fn topic(p: &Publish) -> String {
    String::from_utf8_lossy(&p.topic).into_owned()
}

fn sub_ids(p: &Publish) -> Vec<usize> {
    let mut ids = p
        .properties
        .as_ref()
        .map(|p| p.subscription_identifiers.clone())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

fn filter(path: &str, qos: QoS, edit: impl FnOnce(&mut Filter)) -> Filter {
    let mut f = Filter::new(path, qos);
    edit(&mut f);
    f
}

/// A clean-start subscriber to one filter (default options).
async fn subscriber(port: u16, id: &str, filter: &str, qos: QoS) -> Raw {
    let (mut s, _) = Raw::session(port, id, true, None).await;
    let ack = s.sub(filter, qos).await;
    assert_eq!(ack.return_codes, vec![SubscribeReasonCode::Success(qos)]);
    s
}

/// The next packet must be a PUBLISH of `payload` (QoS 1 ones are acked).
async fn expect_payload(s: &mut Raw, payload: &str) -> Publish {
    let p = s.expect_publish().await;
    assert_eq!(text(&p), payload, "unexpected PUBLISH {p:?}");
    if p.qos == QoS::AtLeastOnce {
        s.puback(p.pkid).await;
    }
    p
}

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

/// A session with expiry N outlives its connection for N seconds: a reconnect within them
/// finds it (session present, subscription and queued message intact); one after finds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_keeps_the_session_for_its_interval() {
    const EXPIRY: u32 = 3;
    let broker = fast_broker();
    let (mut s, ack) = Raw::session(broker.port, "se", true, Some(EXPIRY)).await;
    assert!(!ack.session_present);
    s.sub("se/t", QoS::AtLeastOnce).await;
    s.bye().await;

    let (mut p, _) = Raw::session(broker.port, "se-pub", true, None).await;
    let ack = p.publish_acked("se/t", 1, b"queued").await;
    assert_eq!(
        ack.reason,
        PubAckReason::Success,
        "the offline session matched"
    );

    let (mut s, ack) = Raw::session(broker.port, "se", false, Some(EXPIRY)).await;
    assert!(ack.session_present, "reconnect within the expiry resumes");
    expect_payload(&mut s, "queued").await;
    let disconnected = Instant::now();
    s.bye().await;

    // The broker's housekeeping ends the session once the expiry has passed: its
    // subscription goes, which a publisher sees as PUBACK 0x10. Probe until then.
    let mut pkid = 2;
    while p.publish_acked("se/t", pkid, b"probe").await.reason
        != PubAckReason::NoMatchingSubscribers
    {
        assert!(
            disconnected.elapsed() < Duration::from_secs(u64::from(EXPIRY) + 5),
            "the session outlived its {EXPIRY} s expiry"
        );
        pkid += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lived = disconnected.elapsed();
    assert!(
        lived >= Duration::from_secs(u64::from(EXPIRY)),
        "the session ended {lived:?} after the disconnect, before its {EXPIRY} s expiry"
    );
    let (s, ack) = Raw::session(broker.port, "se", false, Some(EXPIRY)).await;
    assert!(!ack.session_present, "the expired session is gone");
    s.bye().await;
}

/// Session expiry 0 (or absent): the session ends with the connection, whether the client
/// sends DISCONNECT or just drops the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_zero_ends_the_session_with_the_connection() {
    let broker = Broker::start();
    let (mut p, _) = Raw::session(broker.port, "z-pub", true, None).await;
    for (graceful, expiry) in [(true, None), (false, Some(0))] {
        let (mut s, _) = Raw::session(broker.port, "z", false, expiry).await;
        s.sub("z/t", QoS::AtLeastOnce).await;
        if graceful {
            s.bye().await;
        } else {
            drop(s);
        }
        let (s, ack) = Raw::session(broker.port, "z", false, expiry).await;
        assert!(
            !ack.session_present,
            "expiry {expiry:?}, DISCONNECT sent: {graceful}: no session kept"
        );
        let ack = p.publish_acked("z/t", 1, b"x").await;
        assert_eq!(ack.reason, PubAckReason::NoMatchingSubscribers);
        s.bye().await;
    }
}

/// DISCONNECT's session expiry replaces the CONNECT's: lowered to 0 it ends the session at
/// once; raised it keeps the session past the first interval. Raising it from a CONNECT's 0
/// is a protocol error (DISCONNECT 0x82 from the broker, MQTT-3.14.2-2 / 3.14.2.2.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_session_expiry_replaces_the_connect_value() {
    let broker = fast_broker();

    let (mut s, _) = Raw::session(broker.port, "dx-low", true, Some(300)).await;
    s.sub("dx/low", QoS::AtLeastOnce).await;
    s.disconnect(DisconnectReasonCode::NormalDisconnection, Some(0))
        .await;
    s.until_closed().await;
    let (s, ack) = Raw::session(broker.port, "dx-low", false, Some(300)).await;
    assert!(
        !ack.session_present,
        "DISCONNECT expiry 0 ended the session"
    );
    s.bye().await;

    let (mut s, _) = Raw::session(broker.port, "dx-high", true, Some(1)).await;
    s.sub("dx/high", QoS::AtLeastOnce).await;
    s.disconnect(DisconnectReasonCode::NormalDisconnection, Some(300))
        .await;
    s.until_closed().await;
    // Past the CONNECT's 1 s (and a tick): the raised expiry must be the one in force.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, ack) = Raw::session(broker.port, "dx-high", false, Some(300)).await;
    assert!(
        ack.session_present,
        "DISCONNECT expiry 300 kept the session"
    );
    s.bye().await;

    let (mut s, _) = Raw::session(broker.port, "dx-zero", true, None).await;
    s.disconnect(DisconnectReasonCode::NormalDisconnection, Some(60))
        .await;
    let got = s.until_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == DisconnectReasonCode::ProtocolError),
        "expected DISCONNECT 0x82, got {got:?}"
    );
}

/// An empty client id gets a broker-assigned one in CONNACK's Assigned Client Identifier,
/// unique per connection; a client that names itself gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_client_id_gets_an_assigned_identifier() {
    let broker = Broker::start();
    let mut assigned = Vec::new();
    for _ in 0..2 {
        let (_c, _ev, ack) = client5::connect(client5::options(broker.port, "")).await;
        let id = ack
            .properties
            .and_then(|p| p.assigned_client_identifier)
            .expect("CONNACK carries an Assigned Client Identifier");
        assert!(!id.is_empty());
        assigned.push(id);
    }
    assert_ne!(assigned[0], assigned[1], "assigned ids are unique");

    let (_c, _ev, ack) = client5::connect(client5::options(broker.port, "named")).await;
    assert_eq!(
        ack.properties.and_then(|p| p.assigned_client_identifier),
        None,
        "no assigned id for a client that named itself"
    );
}

/// CONNACK announces the broker's receive maximum, maximum packet size and topic alias
/// maximum; Retain Available is absent (meaning 1) unless retain is off, then 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_properties_announce_the_limits() {
    let broker = Broker::start();
    let (_c, _ev, ack) = client5::connect(client5::options(broker.port, "cp")).await;
    let p = ack.properties.expect("CONNACK properties");
    assert_eq!(p.receive_max, Some(1024));
    assert_eq!(p.max_packet_size, Some(1_048_576));
    assert_eq!(p.topic_alias_max, Some(10));
    assert_eq!(p.retain_available, None, "absent means available");
    drop(broker);

    let broker = Broker::builder()
        .env("RAFTMQ_MQTT_RECEIVE_MAXIMUM", "7")
        .env("RAFTMQ_LIMITS_MAX_PACKET_SIZE", "5000")
        .env("RAFTMQ_MQTT_TOPIC_ALIAS_MAXIMUM", "3")
        .env("RAFTMQ_MQTT_RETAIN_AVAILABLE", "false")
        .start();
    let (_c, _ev, ack) = client5::connect(client5::options(broker.port, "cp")).await;
    let p = ack.properties.expect("CONNACK properties");
    assert_eq!(p.receive_max, Some(7));
    assert_eq!(p.max_packet_size, Some(5000));
    assert_eq!(p.topic_alias_max, Some(3));
    assert_eq!(p.retain_available, Some(0));

    // Retain not available: a retained PUBLISH is answered with DISCONNECT 0x9A.
    let (mut r, _) = Raw::session(broker.port, "cp-raw", true, None).await;
    let mut publish = Publish::new("cp/t", QoS::AtLeastOnce, "x", None);
    publish.pkid = 1;
    publish.retain = true;
    r.send(Packet::Publish(publish)).await;
    let got = r.until_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == DisconnectReasonCode::RetainNotSupported),
        "expected DISCONNECT 0x9A, got {got:?}"
    );
}

/// A second connection with the same client id takes the session over; the first gets
/// DISCONNECT 0x8E (Session taken over) and is closed, the second keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_takeover_disconnects_the_old_connection_with_0x8e() {
    let broker = Broker::start();
    let (mut old, _) = Raw::session(broker.port, "twin", true, Some(60)).await;
    old.sub("twin/t", QoS::AtLeastOnce).await;
    let (mut new, ack) = Raw::session(broker.port, "twin", false, Some(60)).await;
    assert!(ack.session_present);
    let got = old.until_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == DisconnectReasonCode::SessionTakenOver),
        "expected DISCONNECT 0x8E, got {got:?}"
    );
    let (mut p, _) = Raw::session(broker.port, "twin-pub", true, None).await;
    p.publish_acked("twin/t", 1, b"to the new one").await;
    expect_payload(&mut new, "to the new one").await;
}

// ---------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------

/// No Local: a client's own publishes are not sent back on a no-local subscription, and are
/// on a normal one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_suppresses_own_messages() {
    let broker = Broker::start();
    let (mut me, _) = Raw::session(broker.port, "nl", true, None).await;
    let ack = me
        .subscribe(
            1,
            vec![
                filter("nl/quiet", QoS::AtLeastOnce, |f| f.nolocal = true),
                filter("nl/loud", QoS::AtLeastOnce, |_| {}),
            ],
            None,
        )
        .await;
    assert_eq!(ack.return_codes.len(), 2);
    let mut other = subscriber(broker.port, "nl-other", "nl/+", QoS::AtLeastOnce).await;

    me.publish("nl/quiet", QoS::AtLeastOnce, 10, b"own, no-local", None)
        .await;
    me.publish("nl/loud", QoS::AtLeastOnce, 11, b"own, normal", None)
        .await;
    let mut acks = BTreeSet::new();
    let mut delivered = Vec::new();
    while acks.len() < 2 || delivered.is_empty() {
        match me.recv("PUBACKs and the normal delivery").await {
            Packet::PubAck(a) => {
                acks.insert(a.pkid);
            }
            Packet::Publish(p) => {
                me.puback(p.pkid).await;
                delivered.push(text(&p));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acks, BTreeSet::from([10, 11]));
    assert_eq!(delivered, vec!["own, normal"], "no-local message came back");
    expect_payload(&mut other, "own, no-local").await;
    expect_payload(&mut other, "own, normal").await;
}

/// Retain Handling 0 sends retained messages on every SUBSCRIBE, 1 only when the
/// subscription is new, 2 never. Retained messages sent because of a SUBSCRIBE always have
/// RETAIN set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_0_1_2() {
    let broker = Broker::start();
    let (mut p, _) = Raw::session(broker.port, "rh-pub", true, None).await;
    for (i, t) in ["rh/0", "rh/1/a", "rh/2"].into_iter().enumerate() {
        let mut m = Publish::new(t, QoS::AtLeastOnce, format!("kept {t}"), None);
        m.pkid = i as u16 + 1;
        m.retain = true;
        p.send(Packet::Publish(m)).await;
        p.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
    }
    let (mut s, _) = Raw::session(broker.port, "rh", true, None).await;
    s.sub("rh/sentinel", QoS::AtLeastOnce).await;

    let rh = |path: &str, rule: RetainForwardRule| {
        filter(path, QoS::AtLeastOnce, |f| f.retain_forward_rule = rule)
    };
    // 0: on every SUBSCRIBE, including a repeated one.
    for pkid in [2, 3] {
        s.subscribe(
            pkid,
            vec![rh("rh/0", RetainForwardRule::OnEverySubscribe)],
            None,
        )
        .await;
        let m = expect_payload(&mut s, "kept rh/0").await;
        assert!(
            m.retain,
            "retained message sent on SUBSCRIBE has RETAIN set"
        );
    }
    // 1: only for a new subscription.
    s.subscribe(
        4,
        vec![rh("rh/1/+", RetainForwardRule::OnNewSubscribe)],
        None,
    )
    .await;
    let m = expect_payload(&mut s, "kept rh/1/a").await;
    assert!(m.retain);
    s.subscribe(
        5,
        vec![rh("rh/1/+", RetainForwardRule::OnNewSubscribe)],
        None,
    )
    .await;
    p.publish_acked("rh/sentinel", 101, b"sentinel 1").await;
    expect_payload(&mut s, "sentinel 1").await;
    // 2: never.
    s.subscribe(6, vec![rh("rh/2", RetainForwardRule::Never)], None)
        .await;
    p.publish_acked("rh/sentinel", 102, b"sentinel 2").await;
    expect_payload(&mut s, "sentinel 2").await;
}

/// Retain As Published: live retained publishes reach a normal subscription with RETAIN
/// cleared and a retain-as-published one with RETAIN set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_as_published() {
    let broker = Broker::start();
    let (mut plain, _) = Raw::session(broker.port, "rap-plain", true, None).await;
    plain
        .subscribe(1, vec![filter("rap/t", QoS::AtLeastOnce, |_| {})], None)
        .await;
    let (mut kept, _) = Raw::session(broker.port, "rap-kept", true, None).await;
    kept.subscribe(
        1,
        vec![filter("rap/t", QoS::AtLeastOnce, |f| {
            f.preserve_retain = true
        })],
        None,
    )
    .await;
    let (mut p, _) = Raw::session(broker.port, "rap-pub", true, None).await;
    let mut m = Publish::new("rap/t", QoS::AtLeastOnce, "live", None);
    m.pkid = 1;
    m.retain = true;
    p.send(Packet::Publish(m)).await;
    p.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await;
    assert!(!expect_payload(&mut plain, "live").await.retain);
    assert!(expect_payload(&mut kept, "live").await.retain);
}

/// Subscription identifiers: a delivery carries the identifier of the subscription it
/// matched; with two overlapping subscriptions of one client it is one PUBLISH carrying both
/// identifiers, at the higher of the two QoS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_identifiers_and_overlapping_subscriptions() {
    let broker = Broker::start();
    let (mut s, _) = Raw::session(broker.port, "si", true, None).await;
    s.subscribe(1, vec![filter("si/#", QoS::AtLeastOnce, |_| {})], Some(1))
        .await;
    s.subscribe(
        2,
        vec![filter("si/+", QoS::ExactlyOnce, |_| {})],
        Some(268_435_455),
    )
    .await;
    let (mut p, _) = Raw::session(broker.port, "si-pub", true, None).await;

    // Matches only si/#.
    p.publish_acked("si/a/b", 1, b"one").await;
    let m = expect_payload(&mut s, "one").await;
    assert_eq!(sub_ids(&m), vec![1]);
    assert_eq!(m.qos, QoS::AtLeastOnce);

    // Matches both: one copy, both ids, QoS 2 (the publish is QoS 2 too).
    p.publish_exactly_once("si/x", 2, b"both").await;
    let m = s.expect_publish().await;
    assert_eq!(text(&m), "both");
    assert_eq!(m.qos, QoS::ExactlyOnce, "the higher QoS of the two");
    assert_eq!(sub_ids(&m), vec![1, 268_435_455]);
    s.pubrec(m.pkid).await;
    s.expect("PUBREL", |p| matches!(p, Packet::PubRel(_)).then_some(()))
        .await;
    s.pubcomp(m.pkid).await;

    // And only one copy: the next PUBLISH is the next message.
    p.publish_acked("si/a/c", 3, b"next").await;
    let m = expect_payload(&mut s, "next").await;
    assert_eq!(sub_ids(&m), vec![1]);
}

/// Shared subscriptions: two members of `$share/g/sh/t` split the messages between them
/// (each gets some, none gets a message twice, none is lost) while a normal subscriber to
/// `sh/t` gets every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_splits_messages_between_members() {
    const N: usize = 20;
    let broker = Broker::start();
    let mut members = Vec::new();
    for id in ["member-1", "member-2"] {
        let (c, mut ev) = client5::connect_id(broker.port, id).await;
        client5::subscribe(&c, &mut ev, "$share/g/sh/t", QoS::AtLeastOnce).await;
        members.push((c, client5::inbox(ev)));
    }
    let (plain, mut plain_ev) = client5::connect_id(broker.port, "plain").await;
    client5::subscribe(&plain, &mut plain_ev, "sh/t", QoS::AtLeastOnce).await;

    let (p, pev) = client5::connect_id(broker.port, "sh-pub").await;
    let driver = client5::drive(pev);
    for i in 0..N {
        p.publish("sh/t", QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }

    let all: BTreeSet<String> = (0..N).map(|i| i.to_string()).collect();
    let got = client5::receive(&mut plain_ev, N).await;
    assert_eq!(got.iter().map(text).collect::<BTreeSet<_>>(), all);

    let mut shares: [Vec<String>; 2] = Default::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until every message arrived somewhere, then 1 s grace for a duplicate on its way.
    let mut grace_until = None;
    loop {
        let until = grace_until.unwrap_or(deadline);
        let [(_, (_, rx1)), (_, (_, rx2))] = &mut members[..] else {
            unreachable!()
        };
        let got = tokio::select! {
            m = rx1.recv() => m.map(|m| (0, m)),
            m = rx2.recv() => m.map(|m| (1, m)),
            _ = tokio::time::sleep_until(until) => None,
        };
        match got {
            Some((i, m)) => shares[i].push(text(&m)),
            None if grace_until.is_some() => break,
            None => panic!("members got only {shares:?} within 10 s"),
        }
        if grace_until.is_none() && shares[0].len() + shares[1].len() >= N {
            grace_until = Some(Instant::now() + Duration::from_secs(1));
        }
    }
    let union: BTreeSet<String> = shares.iter().flatten().cloned().collect();
    assert_eq!(union, all, "every message reached one member");
    assert_eq!(
        shares[0].len() + shares[1].len(),
        N,
        "no message twice: {shares:?}"
    );
    assert!(
        !shares[0].is_empty() && !shares[1].is_empty(),
        "both members get a share: {shares:?}"
    );
    for (_, (task, _)) in members {
        task.abort();
    }
    driver.abort();
}

// ---------------------------------------------------------------------------------------
// PUBLISH properties
// ---------------------------------------------------------------------------------------

/// Client -> broker topic alias: a PUBLISH with topic and alias sets it, one with alias and
/// empty topic uses it; subscribers see the full topic. An alias above the broker's maximum
/// is DISCONNECT 0x94.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_alias_from_client() {
    let broker = Broker::start();
    let (sc, mut sev) = client5::connect_id(broker.port, "ta-sub").await;
    client5::subscribe(&sc, &mut sev, "ta/#", QoS::AtLeastOnce).await;
    let (mut p, ack) = Raw::session(broker.port, "ta-pub", true, None).await;
    let max = ack.properties.and_then(|p| p.topic_alias_max).unwrap();
    let alias = |a: u16| PublishProperties {
        topic_alias: Some(a),
        ..Default::default()
    };
    p.publish(
        "ta/long/topic",
        QoS::AtLeastOnce,
        1,
        b"set",
        Some(alias(max)),
    )
    .await;
    p.publish("", QoS::AtLeastOnce, 2, b"use", Some(alias(max)))
        .await;
    for pkid in [1, 2] {
        let a = p
            .expect("PUBACK", |p| match p {
                Packet::PubAck(a) => Some(a),
                _ => None,
            })
            .await;
        assert_eq!((a.pkid, a.reason), (pkid, PubAckReason::Success));
    }
    let got = client5::receive(&mut sev, 2).await;
    for (m, payload) in got.iter().zip(["set", "use"]) {
        assert_eq!(
            (topic(m).as_str(), text(m).as_str()),
            ("ta/long/topic", payload)
        );
    }

    p.publish("ta/x", QoS::AtLeastOnce, 3, b"bad", Some(alias(max + 1)))
        .await;
    let got = p.until_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == DisconnectReasonCode::TopicAliasInvalid),
        "expected DISCONNECT 0x94, got {got:?}"
    );
}

/// Broker -> client topic alias: to a client that announced a Topic Alias Maximum, the first
/// PUBLISH on a topic carries topic and alias, later ones the alias and an empty topic; a
/// client that announced none gets full topics and no alias.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_alias_to_client() {
    let broker = Broker::start();
    let mut cp = props(None);
    cp.topic_alias_max = Some(5);
    let (mut s, _) = Raw::connect(broker.port, connect_packet("tb", true, cp), None).await;
    s.sub("tb/#", QoS::AtMostOnce).await;
    let mut plain = subscriber(broker.port, "tb-plain", "tb/#", QoS::AtMostOnce).await;
    let (mut p, _) = Raw::session(broker.port, "tb-pub", true, None).await;
    for (t, payload) in [
        ("tb/one", "1"),
        ("tb/one", "2"),
        ("tb/two", "3"),
        ("tb/one", "4"),
    ] {
        p.publish_acked(t, 1, payload.as_bytes()).await;
    }
    let alias = |m: &Publish| m.properties.as_ref().and_then(|p| p.topic_alias);
    let mut seen = Vec::new();
    for payload in ["1", "2", "3", "4"] {
        let m = expect_payload(&mut s, payload).await;
        seen.push((topic(&m), alias(&m)));
        let m = expect_payload(&mut plain, payload).await;
        assert_eq!(alias(&m), None, "no alias to a client without a maximum");
        assert!(topic(&m).starts_with("tb/"));
    }
    let (a1, a2) = (seen[0].1.expect("alias set"), seen[2].1.expect("alias set"));
    assert!(
        (1..=5).contains(&a1) && (1..=5).contains(&a2) && a1 != a2,
        "{seen:?}"
    );
    assert_eq!(
        seen,
        vec![
            ("tb/one".to_owned(), Some(a1)),
            (String::new(), Some(a1)),
            ("tb/two".to_owned(), Some(a2)),
            (String::new(), Some(a1)),
        ]
    );
}

/// Message expiry: a message queued for an offline session whose expiry passes is never
/// delivered; one still valid is delivered with the remaining interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_expiry_drops_stale_queued_messages() {
    let broker = fast_broker();
    let (mut s, _) = Raw::session(broker.port, "mx", true, Some(300)).await;
    s.sub("mx/#", QoS::AtLeastOnce).await;
    s.bye().await;

    let (mut p, _) = Raw::session(broker.port, "mx-pub", true, None).await;
    let expiry = |secs: u32| PublishProperties {
        message_expiry_interval: Some(secs),
        ..Default::default()
    };
    p.publish("mx/short", QoS::AtLeastOnce, 1, b"short", Some(expiry(1)))
        .await;
    p.publish("mx/long", QoS::AtLeastOnce, 2, b"long", Some(expiry(100)))
        .await;
    for _ in 0..2 {
        p.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
    }
    // The short one's 1 s passes while the session is offline (expiry is a deadline, so
    // this waits for time, not for an event).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (mut s, ack) = Raw::session(broker.port, "mx", false, Some(300)).await;
    assert!(ack.session_present);
    let m = expect_payload(&mut s, "long").await;
    let left = m.properties.and_then(|p| p.message_expiry_interval);
    assert!(
        left.is_some_and(|l| (90..=98).contains(&l)),
        "remaining expiry after >= 2 s queued: {left:?}"
    );
    p.publish_acked("mx/end", 3, b"sentinel").await;
    expect_payload(&mut s, "sentinel").await;
}

fn all_props() -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: Some("reply/here".to_owned()),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr\xff")),
        user_properties: vec![
            ("k".to_owned(), "v1".to_owned()),
            ("k".to_owned(), "v2".to_owned()),
            ("other".to_owned(), "ü".to_owned()),
        ],
        subscription_identifiers: Vec::new(),
        content_type: Some("application/json".to_owned()),
    }
}

/// Payload format indicator, content type, response topic, correlation data and user
/// properties (repeated keys, in order) reach the subscriber untouched, at every QoS and
/// from the retained store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_properties_pass_through() {
    let broker = Broker::start();
    let (sc, mut sev) = client5::connect_id(broker.port, "pp-sub").await;
    client5::subscribe(&sc, &mut sev, "pp/#", QoS::ExactlyOnce).await;
    let (p, pev) = client5::connect_id(broker.port, "pp-pub").await;
    let driver = client5::drive(pev);
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        p.publish_with_properties(format!("pp/{i}"), qos, i == 2, "{}", all_props())
            .await
            .unwrap();
    }
    let got = client5::receive(&mut sev, 3).await;
    for m in &got {
        assert_eq!(
            m.properties,
            Some(all_props()),
            "properties of {}",
            topic(m)
        );
    }
    let (rc, mut rev) = client5::connect_id(broker.port, "pp-late").await;
    let mut got = client5::subscribe(&rc, &mut rev, "pp/2", QoS::AtLeastOnce).await;
    if got.is_empty() {
        got = client5::receive(&mut rev, 1).await;
    }
    assert!(got[0].retain);
    assert_eq!(got[0].properties, Some(all_props()), "retained copy");
    driver.abort();
}

// ---------------------------------------------------------------------------------------
// Wills
// ---------------------------------------------------------------------------------------

fn will(topic: &str, delay: Option<u32>) -> LastWill {
    let properties = delay.map(|d| LastWillProperties {
        delay_interval: Some(d),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    });
    LastWill::new(
        topic,
        format!("will of {topic}"),
        QoS::AtLeastOnce,
        false,
        properties,
    )
}

async fn with_will(port: u16, id: &str, will: LastWill, expiry: Option<u32>) -> Raw {
    Raw::connect(port, connect_packet(id, true, props(expiry)), Some(will))
        .await
        .0
}

/// Will delay: a client that drops its connection has its will sent once the delay has
/// passed, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_sends_the_will_after_the_delay() {
    const DELAY: u32 = 2;
    let broker = fast_broker();
    let mut watcher = subscriber(broker.port, "wd-watch", "wd/#", QoS::AtLeastOnce).await;
    let w = with_will(broker.port, "wd", will("wd/a", Some(DELAY)), Some(60)).await;
    let dropped = Instant::now();
    drop(w);
    expect_payload(&mut watcher, "will of wd/a").await;
    let after = dropped.elapsed();
    assert!(
        after >= Duration::from_secs(u64::from(DELAY)),
        "will sent {after:?} after the drop, before its {DELAY} s delay"
    );
}

/// Will delay longer than the session: the will is sent when the session ends, not after
/// the delay (MQTT 3.1.3.2.2: whichever happens first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_sent_when_the_session_ends_before_its_delay() {
    const EXPIRY: u32 = 1;
    let broker = fast_broker();
    let mut watcher = subscriber(broker.port, "we-watch", "we/#", QoS::AtLeastOnce).await;
    let w = with_will(broker.port, "we", will("we/a", Some(3600)), Some(EXPIRY)).await;
    let dropped = Instant::now();
    drop(w);
    expect_payload(&mut watcher, "will of we/a").await;
    let after = dropped.elapsed();
    assert!(
        after >= Duration::from_secs(u64::from(EXPIRY)),
        "will sent {after:?} after the drop, before the session's {EXPIRY} s expiry"
    );
}

/// Will delay: a client that comes back (clean start 0) within the delay cancels the will;
/// one that comes back with clean start 1 ends the session, which sends the will at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_reconnect_within_the_delay_cancels_the_will() {
    const DELAY: u32 = 1;
    let broker = fast_broker();
    let mut watcher = subscriber(broker.port, "wr-watch", "wr/#", QoS::AtLeastOnce).await;

    let w = with_will(broker.port, "wr", will("wr/resumed", Some(DELAY)), Some(60)).await;
    drop(w);
    let (back, ack) = Raw::session(broker.port, "wr", false, Some(60)).await;
    assert!(ack.session_present);
    // The delay and then 1 s grace: no will.
    watcher
        .quiet(
            Duration::from_secs(u64::from(DELAY) + 1),
            "will sent though the client came back within the delay",
        )
        .await;
    back.bye().await;

    let w = with_will(broker.port, "wc", will("wr/ended", Some(300)), Some(300)).await;
    drop(w);
    let (back, ack) = Raw::session(broker.port, "wc", true, Some(60)).await;
    assert!(!ack.session_present);
    expect_payload(&mut watcher, "will of wr/ended").await;
    back.bye().await;
}

/// DISCONNECT with reason 0x04 (Disconnect with Will Message) sends the will; a normal
/// DISCONNECT (0x00) discards it, also when the client reconnects at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_reason_decides_the_will() {
    let broker = Broker::start();
    let mut watcher = subscriber(broker.port, "wn-watch", "wn/#", QoS::AtLeastOnce).await;

    // The session outlives the connection, and the client comes straight back: the
    // DISCONNECT must be on record before it can, or its CONNECT would take the session
    // over as if the connection had dropped, and fire the will.
    let w = with_will(broker.port, "wn-normal", will("wn/normal", None), Some(60)).await;
    w.bye().await;
    let (back, ack) = Raw::session(broker.port, "wn-normal", false, Some(60)).await;
    assert!(ack.session_present);
    back.bye().await;
    let mut w = with_will(broker.port, "wn-with", will("wn/with", None), None).await;
    w.disconnect(DisconnectReasonCode::DisconnectWithWillMessage, None)
        .await;
    assert!(w.until_closed().await.is_empty());
    expect_payload(&mut watcher, "will of wn/with").await;
    // The normal DISCONNECT's will (had it been sent) was recorded before the other
    // client even connected, so it would have come first; 0.5 s grace for the unexpected.
    watcher
        .quiet(
            Duration::from_millis(500),
            "will sent after a normal DISCONNECT",
        )
        .await;
}

// ---------------------------------------------------------------------------------------
// Acknowledgements and flow control
// ---------------------------------------------------------------------------------------

/// PUBACK / PUBREC reason 0x10 (No matching subscribers) when nobody subscribes, 0x00 when
/// someone does; with Request Problem Information 0 no reason string comes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puback_reports_no_matching_subscribers() {
    let broker = Broker::start();
    let (mut p, _) = Raw::session(broker.port, "nm-pub", true, None).await;
    let ack = p.publish_acked("nm/t", 1, b"nobody").await;
    assert_eq!(ack.reason, PubAckReason::NoMatchingSubscribers);
    let rec = p.publish_exactly_once("nm/t", 2, b"nobody").await;
    assert_eq!(rec.reason, PubRecReason::NoMatchingSubscribers);

    let _s = subscriber(broker.port, "nm-sub", "nm/#", QoS::AtMostOnce).await;
    let ack = p.publish_acked("nm/t", 3, b"someone").await;
    assert_eq!(ack.reason, PubAckReason::Success);
}

/// Request Problem Information 0: the broker sends no reason string on packets other than
/// PUBLISH, CONNACK and DISCONNECT (MQTT-3.1.2-29); here, the 0x10 PUBACK. With the default
/// (1) this broker does explain the 0x10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_problem_information_0_removes_reason_strings() {
    let broker = Broker::start();
    let reason_string =
        |ack: rumqttc::v5::mqttbytes::v5::PubAck| ack.properties.and_then(|p| p.reason_string);
    let (mut p, _) = Raw::session(broker.port, "rp-1", true, None).await;
    let ack = p.publish_acked("rp/t", 1, b"x").await;
    assert_eq!(ack.reason, PubAckReason::NoMatchingSubscribers);
    assert!(reason_string(ack).is_some(), "reason string by default");

    let mut cp = props(None);
    cp.request_problem_info = Some(0);
    let (mut p, _) = Raw::connect(broker.port, connect_packet("rp-0", true, cp), None).await;
    let ack = p.publish_acked("rp/t", 1, b"x").await;
    assert_eq!(ack.reason, PubAckReason::NoMatchingSubscribers);
    assert_eq!(
        reason_string(ack),
        None,
        "no reason string when asked for none"
    );
}

/// The client's Maximum Packet Size: a PUBLISH that would exceed it is not sent to that
/// client (others get it), one exactly at the limit is; a QoS 1 message dropped this way
/// does not hold a place in the client's window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_maximum_packet_size_limits_deliveries() {
    // A QoS 1 PUBLISH on "mp/t" with no properties to a client: 1 (type) + 2 (remaining
    // length, 128..16383) + 2 + 4 (topic) + 2 (packet id) + 1 (property length) + payload.
    const LIMIT: u32 = 200;
    const FITS: usize = LIMIT as usize - 12;
    let broker = Broker::start();
    let mut cp = props(None);
    cp.max_packet_size = Some(LIMIT);
    cp.receive_maximum = Some(1);
    let (mut small, _) = Raw::connect(broker.port, connect_packet("mp", true, cp), None).await;
    small.sub("mp/t", QoS::AtLeastOnce).await;
    let mut big = subscriber(broker.port, "mp-big", "mp/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::session(broker.port, "mp-pub", true, None).await;

    let over = "o".repeat(FITS + 1);
    let exact = "e".repeat(FITS);
    for (i, payload) in [&over, &exact, &over, &"after".to_owned()]
        .into_iter()
        .enumerate()
    {
        p.publish_acked("mp/t", i as u16 + 1, payload.as_bytes())
            .await;
    }
    let m = expect_payload(&mut small, &exact).await;
    let mut encoded = bytes::BytesMut::new();
    Packet::Publish(m).write(&mut encoded, None).unwrap();
    assert_eq!(
        encoded.len(),
        LIMIT as usize,
        "the size this test relies on"
    );
    expect_payload(&mut small, "after").await;
    for payload in [&over, &exact, &over, &"after".to_owned()] {
        expect_payload(&mut big, payload).await;
    }
}

/// A QoS 1 delivery left unacknowledged, then a reconnect with a Maximum Packet Size it
/// exceeds: it is dropped as if delivered (MQTT-3.1.2-25), not resent and not left holding
/// the client's only window slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_maximum_packet_size_applies_to_redelivery() {
    let broker = Broker::start();
    let (mut s, _) = Raw::session(broker.port, "mpr", true, Some(300)).await;
    s.sub("mpr/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::session(broker.port, "mpr-pub", true, None).await;
    let big = "b".repeat(500);
    p.publish_acked("mpr/t", 1, big.as_bytes()).await;
    assert_eq!(text(&s.expect_publish().await), big);
    drop(s);

    let mut cp = props(Some(300));
    cp.max_packet_size = Some(200);
    cp.receive_maximum = Some(1);
    let (mut s, ack) = Raw::connect(broker.port, connect_packet("mpr", false, cp), None).await;
    assert!(ack.session_present);
    p.publish_acked("mpr/t", 2, b"small").await;
    expect_payload(&mut s, "small").await;
}

/// The client's Receive Maximum: at most that many QoS 1 deliveries unacknowledged at
/// once; each PUBACK lets exactly one more through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_receive_maximum_limits_inflight_deliveries() {
    const N: u16 = 5;
    let broker = Broker::start();
    let mut cp = props(None);
    cp.receive_maximum = Some(2);
    let (mut s, _) = Raw::connect(broker.port, connect_packet("rm", true, cp), None).await;
    s.sub("rm/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::session(broker.port, "rm-pub", true, None).await;
    for i in 0..N {
        p.publish_acked("rm/t", i + 1, i.to_string().as_bytes())
            .await;
    }
    let mut inflight = Vec::new();
    for _ in 0..2 {
        inflight.push(s.expect_publish().await);
    }
    // 1 s grace: a third unacknowledged delivery would break the limit.
    s.quiet(
        Duration::from_secs(1),
        "more than 2 unacknowledged deliveries",
    )
    .await;
    let mut got = Vec::new();
    while let Some(m) = (!inflight.is_empty()).then(|| inflight.remove(0)) {
        s.puback(m.pkid).await;
        got.push(text(&m));
        if got.len() + inflight.len() < usize::from(N) {
            inflight.push(s.expect_publish().await);
        }
        assert!(inflight.len() <= 2);
    }
    let expected: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(got, expected, "all delivered, in order");
}

// ---------------------------------------------------------------------------------------
// QoS 1 and 2 across reconnects
// ---------------------------------------------------------------------------------------

/// QoS 1: a delivery not acknowledged before the connection drops is sent again on
/// reconnect with DUP set and the same packet id, and only once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_unacked_delivery_is_resent_with_dup_after_reconnect() {
    let broker = Broker::start();
    let (mut s, _) = Raw::session(broker.port, "r1", true, Some(300)).await;
    s.sub("r1/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Raw::session(broker.port, "r1-pub", true, None).await;
    p.publish_acked("r1/t", 1, b"unacked").await;
    let first = s.expect_publish().await;
    assert!(!first.dup);
    drop(s);

    let (mut s, ack) = Raw::session(broker.port, "r1", false, Some(300)).await;
    assert!(ack.session_present);
    let again = s.expect_publish().await;
    assert_eq!(text(&again), "unacked");
    assert!(again.dup, "redelivery has DUP set");
    assert_eq!(again.pkid, first.pkid, "redelivery keeps the packet id");
    s.puback(again.pkid).await;
    p.publish_acked("r1/t", 2, b"sentinel").await;
    expect_payload(&mut s, "sentinel").await;
}

/// Inbound QoS 2 across a reconnect: PUBLISH, PUBREC, connection lost before PUBREL; the
/// client reconnects and resends the PUBLISH with DUP and the same packet id: PUBREC again,
/// the subscriber gets the message exactly once, and PUBREL completes with PUBCOMP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_inbound_resent_publish_is_delivered_once() {
    let broker = Broker::start();
    let mut s = subscriber(broker.port, "q2in-sub", "q2in/#", QoS::ExactlyOnce).await;
    let (mut p, _) = Raw::session(broker.port, "q2in", true, Some(300)).await;
    p.publish("q2in/t", QoS::ExactlyOnce, 7, b"once", None)
        .await;
    let rec = p
        .expect("PUBREC", |p| match p {
            Packet::PubRec(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!((rec.pkid, rec.reason), (7, PubRecReason::Success));
    drop(p);

    let (mut p, ack) = Raw::session(broker.port, "q2in", false, Some(300)).await;
    assert!(ack.session_present);
    let mut again = Publish::new("q2in/t", QoS::ExactlyOnce, "once", None);
    again.pkid = 7;
    again.dup = true;
    p.send(Packet::Publish(again)).await;
    let rec = p
        .expect("PUBREC", |p| match p {
            Packet::PubRec(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!((rec.pkid, rec.reason), (7, PubRecReason::Success));
    p.pubrel(7).await;
    let comp = p
        .expect("PUBCOMP", |p| match p {
            Packet::PubComp(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!((comp.pkid, comp.reason), (7, PubCompReason::Success));
    // The id is released: a second PUBREL names nothing.
    p.pubrel(7).await;
    let comp = p
        .expect("PUBCOMP", |p| match p {
            Packet::PubComp(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!(
        (comp.pkid, comp.reason),
        (7, PubCompReason::PacketIdentifierNotFound)
    );

    let m = s.expect_publish().await;
    assert_eq!((text(&m).as_str(), m.qos), ("once", QoS::ExactlyOnce));
    s.pubrec(m.pkid).await;
    s.expect("PUBREL", |p| matches!(p, Packet::PubRel(_)).then_some(()))
        .await;
    s.pubcomp(m.pkid).await;
    p.publish("q2in/t", QoS::AtLeastOnce, 8, b"sentinel", None)
        .await;
    expect_payload(&mut s, "sentinel").await;
}

/// Outbound QoS 2, no PUBREC before the connection drops: on reconnect the PUBLISH comes
/// again with DUP and the same packet id, and the flow completes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_outbound_without_pubrec_is_resent_after_reconnect() {
    let broker = Broker::start();
    let (mut s, _) = Raw::session(broker.port, "q2o", true, Some(300)).await;
    s.sub("q2o/t", QoS::ExactlyOnce).await;
    let (mut p, _) = Raw::session(broker.port, "q2o-pub", true, None).await;
    p.publish_exactly_once("q2o/t", 1, b"exactly").await;
    let first = s.expect_publish().await;
    assert_eq!((first.qos, first.dup), (QoS::ExactlyOnce, false));
    drop(s);

    let (mut s, ack) = Raw::session(broker.port, "q2o", false, Some(300)).await;
    assert!(ack.session_present);
    let again = s.expect_publish().await;
    assert_eq!(text(&again), "exactly");
    assert!(again.dup, "resent PUBLISH has DUP set");
    assert_eq!(again.pkid, first.pkid);
    s.pubrec(again.pkid).await;
    let rel = s
        .expect("PUBREL", |p| match p {
            Packet::PubRel(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!(rel.pkid, first.pkid);
    s.pubcomp(rel.pkid).await;
    p.publish_acked("q2o/t", 2, b"sentinel").await;
    let m = s.expect_publish().await;
    assert_eq!(text(&m), "sentinel", "nothing resent after PUBCOMP");
}

/// Outbound QoS 2, PUBREC sent but the connection dropped before PUBCOMP: on reconnect the
/// broker resends PUBREL (not the PUBLISH), and the flow completes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_outbound_after_pubrec_resends_pubrel_after_reconnect() {
    let broker = Broker::start();
    let (mut s, _) = Raw::session(broker.port, "q2r", true, Some(300)).await;
    s.sub("q2r/t", QoS::ExactlyOnce).await;
    let (mut p, _) = Raw::session(broker.port, "q2r-pub", true, None).await;
    p.publish_exactly_once("q2r/t", 1, b"exactly").await;
    let first = s.expect_publish().await;
    s.pubrec(first.pkid).await;
    let rel = s
        .expect("PUBREL", |p| match p {
            Packet::PubRel(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!(rel.pkid, first.pkid);
    drop(s);

    let (mut s, ack) = Raw::session(broker.port, "q2r", false, Some(300)).await;
    assert!(ack.session_present);
    let rel = s
        .expect("PUBREL again", |p| match p {
            Packet::PubRel(a) => Some(a),
            _ => None,
        })
        .await;
    assert_eq!(rel.pkid, first.pkid);
    s.pubcomp(rel.pkid).await;
    p.publish_acked("q2r/t", 2, b"sentinel").await;
    let m = s.expect_publish().await;
    assert_eq!(text(&m), "sentinel", "nothing resent after PUBCOMP");
}

// ---------------------------------------------------------------------------------------
// paho-mqtt
// ---------------------------------------------------------------------------------------

/// Runs `tests/paho/<script>` with the broker's port; the script exits non-zero with a
/// message on failure.
fn paho(script: &str, port: u16) {
    require("python3");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/paho/");
    let out = Command::new("python3")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(format!("{path}{script}"))
        .arg(port.to_string())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// paho publishes with every publish property, QoS 0/1/2, and receives them back
/// untouched (with its subscription identifier), through an independent codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_publish_properties_round_trip() {
    let broker = Broker::start();
    let port = broker.port;
    tokio::task::spawn_blocking(move || paho("properties.py", port))
        .await
        .unwrap();
}

/// paho's DISCONNECT: the 2-byte normal one discards the will, reason 0x04 sends it, and a
/// session expiry property on DISCONNECT keeps the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_disconnect_reason_and_session_expiry() {
    let broker = Broker::start();
    let port = broker.port;
    tokio::task::spawn_blocking(move || paho("disconnect.py", port))
        .await
        .unwrap();
}
