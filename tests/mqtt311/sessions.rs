//! Clean session and session present, a persistent session's subscriptions and offline
//! queue, and session takeover.

use rumqttc::{ConnectReturnCode, QoS, SubscribeReasonCode};

use crate::common::raw_v4::{self, Connect};
use crate::common::Broker;
use crate::peer::Peer;
use crate::WAIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_present_follows_clean_session() {
    let broker = Broker::start();
    let port = broker.port;

    let (p, ack) = Peer::connect(port, "cs", false).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(!ack.session_present, "a new session is not present");
    p.disconnect().await;

    let (p, ack) = Peer::connect(port, "cs", false).await;
    assert!(ack.session_present, "the persistent session was kept");
    p.disconnect().await;

    let (p, ack) = Peer::connect(port, "cs", true).await;
    assert!(
        !ack.session_present,
        "clean session=1 always gets session present 0"
    );
    p.disconnect().await;

    let (_p, ack) = Peer::connect(port, "cs", false).await;
    assert!(
        !ack.session_present,
        "clean session=1 discarded the old session, and its own ended with the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_session_discards_subscriptions() {
    let broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "cd", false).await;
    s.subscribe("cd/old", QoS::AtLeastOnce).await;
    s.disconnect().await;

    let (mut s, ack) = Peer::connect(broker.port, "cd", true).await;
    assert!(!ack.session_present);
    s.subscribe("cd/new", QoS::AtLeastOnce).await;
    let (mut p, _) = Peer::connect(broker.port, "cd-pub", true).await;
    p.publish("cd/old", QoS::AtLeastOnce, false, "to the old subscription")
        .await;
    p.publish("cd/new", QoS::AtLeastOnce, false, "sentinel")
        .await;
    s.expect("cd/new", "sentinel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_keeps_subscriptions_and_queues_qos1_in_order() {
    let broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "ps", false).await;
    assert_eq!(
        s.subscribe("ps/#", QoS::AtLeastOnce).await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    s.disconnect().await;

    let (mut p, _) = Peer::connect(broker.port, "ps-pub", true).await;
    for i in 0..10 {
        p.publish("ps/t", QoS::AtLeastOnce, false, &format!("m{i}"))
            .await;
        if i == 4 {
            // Offline sessions do not keep QoS 0 (Mosquitto's queue_qos0_messages false).
            p.publish("ps/t", QoS::AtMostOnce, false, "qos0 while offline")
                .await;
        }
    }

    let (mut s, ack) = Peer::connect(broker.port, "ps", false).await;
    assert!(ack.session_present);
    for i in 0..10 {
        let m = s.expect("ps/t", &format!("m{i}")).await;
        assert_eq!(m.qos, QoS::AtLeastOnce);
        assert!(
            !m.dup,
            "first delivery of a queued message is not a duplicate"
        );
    }
    // The subscription is still there for live messages, and nothing else was queued.
    p.publish("ps/live", QoS::AtLeastOnce, false, "sentinel")
        .await;
    s.expect("ps/live", "sentinel").await;
}

/// A raw persistent session `twin` subscribed to `twin/t`, then taken over by rumqttc.
async fn takeover(clean: bool) {
    let broker = Broker::start();
    let mut first = raw_v4::dial(broker.port).await;
    let connect = Connect {
        clean_session: false,
        ..Connect::new("twin")
    };
    raw_v4::send(&mut first, &connect.bytes()).await;
    assert_eq!(
        raw_v4::read_exact(&mut first, 4, WAIT).await,
        raw_v4::connack(false, 0)
    );
    raw_v4::send(&mut first, &raw_v4::subscribe(1, "twin/t", 1)).await;
    assert_eq!(
        raw_v4::read_exact(&mut first, 5, WAIT).await,
        raw_v4::suback(1, 1)
    );

    let (mut second, ack) = Peer::connect(broker.port, "twin", clean).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert_eq!(ack.session_present, !clean);
    let before_close = raw_v4::read_until_closed(&mut first, WAIT).await;
    assert!(
        before_close.is_empty(),
        "the first connection got {before_close:02x?} before it was closed"
    );

    // The session (with its subscription, unless clean) now belongs to the second.
    second.subscribe("twin/end", QoS::AtLeastOnce).await;
    let (mut p, _) = Peer::connect(broker.port, "twin-pub", true).await;
    p.publish("twin/t", QoS::AtLeastOnce, false, "to the session")
        .await;
    p.publish("twin/end", QoS::AtLeastOnce, false, "sentinel")
        .await;
    if !clean {
        second.expect("twin/t", "to the session").await;
    }
    second.expect("twin/end", "sentinel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_closes_the_first_connection_and_resumes_the_session() {
    takeover(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_with_clean_session_closes_the_first_connection_and_starts_afresh() {
    takeover(true).await;
}
