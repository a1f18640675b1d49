//! The bounded offline queue with its counted drops, and `$SYS/broker/...`.

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::QoS;
use tokio::time::Instant;

use crate::common::Broker;
use crate::peer::Peer;
use crate::{text, WAIT};

/// Values of `$SYS` topics as they arrive; waits until `done` accepts the latest values.
async fn watch_sys(
    s: &mut Peer,
    within: Duration,
    mut done: impl FnMut(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + within;
    let mut values = BTreeMap::new();
    loop {
        if done(&values) {
            return values;
        }
        let Some(m) = s.next_within(deadline - Instant::now()).await else {
            panic!("$SYS never reached the expected values; last seen: {values:#?}");
        };
        values.insert(m.topic.clone(), text(&m).to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_is_bounded_and_drops_are_counted() {
    let broker = Broker::builder()
        .env("RAFTMQ_LIMITS_MAX_QUEUED_MESSAGES", "5")
        .env("RAFTMQ_LIMITS_MAX_INFLIGHT", "2")
        .env("RAFTMQ_SYS_INTERVAL_SECS", "1")
        .start();
    let (mut s, _) = Peer::connect(broker.port, "bounded", false).await;
    s.subscribe("bq/#", QoS::AtLeastOnce).await;
    s.disconnect().await;

    let (mut p, _) = Peer::connect(broker.port, "bq-pub", true).await;
    for i in 0..10 {
        p.publish("bq/t", QoS::AtLeastOnce, false, &format!("m{i}"))
            .await;
    }

    // Like Mosquitto: the oldest `max_queued_messages` are kept, the newer ones dropped.
    let (mut s, ack) = Peer::connect(broker.port, "bounded", false).await;
    assert!(ack.session_present);
    for i in 0..5 {
        s.expect("bq/t", &format!("m{i}")).await;
    }
    p.publish("bq/end", QoS::AtLeastOnce, false, "sentinel")
        .await;
    s.expect("bq/end", "sentinel").await;

    s.subscribe("$SYS/broker/publish/messages/dropped", QoS::AtMostOnce)
        .await;
    let topic = "$SYS/broker/publish/messages/dropped";
    watch_sys(&mut s, WAIT, |v| v.get(topic).is_some_and(|d| d == "5")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_report_the_broker_state() {
    let broker = Broker::builder()
        .env("RAFTMQ_SYS_INTERVAL_SECS", "1")
        .start();
    let (mut p, _) = Peer::connect(broker.port, "sys-pub", true).await;
    p.publish("sys/r1", QoS::AtLeastOnce, true, "a").await;
    p.publish("sys/r2", QoS::AtMostOnce, true, "b").await;
    p.publish("sys/plain", QoS::AtLeastOnce, false, "c").await;

    let (mut s, _) = Peer::connect(broker.port, "sys-sub", true).await;
    s.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;
    let get = |v: &BTreeMap<String, String>, k: &str| v.get(&format!("$SYS/broker/{k}")).cloned();
    let num = |v: &BTreeMap<String, String>, k: &str| get(v, k).and_then(|x| x.parse::<u64>().ok());
    let values = watch_sys(&mut s, Duration::from_secs(20), |v| {
        num(v, "clients/connected") == Some(2)
            && num(v, "messages/received").is_some_and(|n| n >= 3)
            && num(v, "messages/sent").is_some_and(|n| n > 0)
            && num(v, "subscriptions/count") == Some(1)
            && num(v, "retained messages/count") == Some(2)
            && get(v, "uptime").is_some()
            && get(v, "version").is_some()
    })
    .await;
    let version = get(&values, "version").unwrap();
    assert!(
        version.starts_with("raftmq version ") && version.len() > "raftmq version ".len(),
        "{version:?}"
    );
    let uptime = get(&values, "uptime").unwrap();
    let seconds = uptime
        .strip_suffix(" seconds")
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        seconds.is_some_and(|n| n < 600),
        "uptime {uptime:?} is not \"<n> seconds\" for a broker just started"
    );
}
