//! Limits, each hit and recovered from through real sockets: connections per source IP and
//! their rate (closed at the door), the CONNECT deadline, connections per username (5.0:
//! 0x97), subscriptions per client, topic levels, and the publish rate (back-pressure: the
//! client is slowed down, never disconnected).

mod common;

use std::time::{Duration, Instant};

use common::raw::{
    connect_raw, connect_v5, publish_v5, subscribe_v5, Body, Frame, Next, Raw, WITHIN,
};
use common::{eventually, Broker};

/// A broker with the loopback allow-list the harness sets removed, and `env` on top.
fn broker(env: &[(&str, &str)]) -> Broker {
    let mut b = Broker::builder().env("RAFTMQ_CONNECTIONS_ALLOW", "");
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.start()
}

/// Whether the door closes a new socket without a CONNACK.
async fn closed_at_door(port: u16) -> bool {
    let mut raw = Raw::dial(port).await;
    raw.send_lossy(&connect_v5("door-probe")).await;
    matches!(raw.next(WITHIN).await, Next::Closed)
}

#[tokio::test]
async fn connections_per_ip_are_capped_and_given_back() {
    let b = broker(&[
        ("RAFTMQ_CONNECTIONS_MAX_PER_IP", "2"),
        ("RAFTMQ_CONNECTIONS_RATE_PER_IP", "0"),
    ]);
    let (first, _) = Raw::connect_v5(b.port, "a").await;
    let (_second, _) = Raw::connect_v5(b.port, "b").await;
    assert!(closed_at_door(b.port).await, "a third connection is closed");
    b.wait_log("connections.max_per_ip reached", WITHIN);
    drop(first);
    // The place comes back once the broker saw the close.
    eventually("a place per IP is free again", WITHIN, || {
        let port = b.port;
        let ok = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move { !closed_at_door(port).await })
        })
        .join()
        .unwrap();
        ok.then_some(())
    });
}

#[tokio::test]
async fn new_connections_per_second_per_ip() {
    let b = broker(&[
        ("RAFTMQ_CONNECTIONS_RATE_PER_IP", "2"),
        ("RAFTMQ_CONNECTIONS_BURST_PER_IP", "3"),
    ]);
    for i in 0..3 {
        Raw::connect_v5(b.port, &format!("burst-{i}")).await;
    }
    assert!(closed_at_door(b.port).await, "over the burst");
    // At 2 a second, a token is back within a second.
    let deadline = Instant::now() + WITHIN;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut raw = Raw::dial(b.port).await;
        raw.send_lossy(&connect_v5("later")).await;
        if let Next::Frame(f) = raw.next(WITHIN).await {
            assert_eq!(f.connack(), Some((false, 0)));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rate never let a connection in"
        );
    }
    b.wait_log("connections.rate_per_ip exceeded", WITHIN);
}

#[tokio::test]
async fn a_socket_that_never_speaks_is_closed_at_the_connect_deadline() {
    let b = broker(&[("RAFTMQ_MQTT_CONNECT_TIMEOUT_SECS", "1")]);
    let mut silent = Raw::dial(b.port).await;
    assert!(matches!(silent.next(WITHIN).await, Next::Closed));
    // A client that speaks is served as before.
    Raw::connect_v5(b.port, "talker").await;
}

fn connect_with_user(client: &str, user: &str) -> Vec<u8> {
    connect_raw(
        "MQTT",
        5,
        0x82,
        Body::new().no_props().str(client).str(user),
    )
}

#[tokio::test]
async fn connections_per_username() {
    let b = broker(&[("RAFTMQ_CONNECTIONS_MAX_PER_USERNAME", "1")]);
    let (first, _) = Raw::connect_with(b.port, &connect_with_user("u1", "alice")).await;
    let mut second = Raw::dial(b.port).await;
    second.send(&connect_with_user("u2", "alice")).await;
    assert_eq!(second.frame(WITHIN).await.connack(), Some((false, 0x97)));
    // Another user is not affected.
    Raw::connect_with(b.port, &connect_with_user("u3", "bob")).await;
    drop(first);
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut again = Raw::dial(b.port).await;
        again.send(&connect_with_user("u2", "alice")).await;
        if again.frame(WITHIN).await.connack() == Some((false, 0)) {
            break;
        }
        assert!(Instant::now() < deadline, "alice's place never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn suback_codes(f: &Frame) -> Vec<u8> {
    assert_eq!(f.kind(), 9, "SUBACK expected: {f:?}");
    // Packet id (2), property length (one byte here) and properties, then one code per filter.
    let props = usize::from(f.body[2]);
    f.body[3 + props..].to_vec()
}

#[tokio::test]
async fn subscriptions_per_client_and_topic_levels() {
    let b = broker(&[
        ("RAFTMQ_LIMITS_MAX_SUBSCRIPTIONS", "2"),
        ("RAFTMQ_LIMITS_MAX_TOPIC_LEVELS", "3"),
    ]);
    let (mut c, _) = Raw::connect_v5(b.port, "subs").await;
    c.send(&subscribe_v5(
        1,
        &[(b"a", 1), (b"b", 1), (b"c", 1), (b"a", 1)],
    ))
    .await;
    // The third new filter is over the quota; re-subscribing to `a` is not a new one.
    assert_eq!(suback_codes(&c.frame(WITHIN).await), [1, 1, 0x97, 1]);
    c.send(&subscribe_v5(2, &[(b"x/y/z/w", 0)])).await;
    assert_eq!(suback_codes(&c.frame(WITHIN).await), [0x8F]);
    // Unsubscribing gives the place back.
    c.send(&Body::new().u16(3).no_props().bin(b"b").packet(0xA2))
        .await;
    assert_eq!(c.frame(WITHIN).await.kind(), 11);
    c.send(&subscribe_v5(4, &[(b"c", 1)])).await;
    assert_eq!(suback_codes(&c.frame(WITHIN).await), [1]);
    // A PUBLISH deeper than the limit closes the connection with 0x90.
    c.send(&publish_v5(0, 0, b"x/y/z/w", Body::new(), b"p"))
        .await;
    let f = c.frame(WITHIN).await;
    assert_eq!(f.disconnect_reason(), Some(0x90), "{f:?}");
}

#[tokio::test]
async fn the_publish_rate_slows_the_client_down_without_dropping_it() {
    let b = broker(&[
        ("RAFTMQ_LIMITS_PUBLISH_RATE", "10"),
        ("RAFTMQ_LIMITS_PUBLISH_BURST", "10"),
    ]);
    let (mut c, _) = Raw::connect_v5(b.port, "fast").await;
    let mut all = Vec::new();
    for id in 1..=30u16 {
        all.extend(publish_v5(1, id, b"rate/t", Body::new(), b"m"));
    }
    let start = Instant::now();
    c.send(&all).await;
    for _ in 1..=30 {
        let f = c.frame(WITHIN).await;
        assert_eq!(f.kind(), 4, "PUBACK expected: {f:?}");
    }
    // 10 at once, then 10 a second: the last 20 need about two seconds.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1500), "not paced: {took:?}");
    // Still connected, and a ping is answered.
    c.send(&[0xC0, 0]).await;
    assert_eq!(c.frame(WITHIN).await.kind(), 13);
}
