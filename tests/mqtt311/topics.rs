//! Topic filters: `+` and `#`, `$` topics, overlapping subscriptions, unsubscribe.

use rumqttc::QoS;

use crate::common::Broker;
use crate::peer::Peer;
use crate::text;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_match_by_level() {
    let broker = Broker::start();
    let filters = ["a/+/c", "a/#", "#", "+/b/#"];
    let mut subs = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let (mut s, _) = Peer::connect(broker.port, &format!("wild-{i}"), true).await;
        s.subscribe(f, QoS::AtLeastOnce).await;
        subs.push(s);
    }
    let (mut p, _) = Peer::connect(broker.port, "wild-pub", true).await;
    let topics = [
        "a", "a/b", "a/x/c", "a/x/c/d", "b/b", "/b", "ab/x/c", "a/x/y/c",
    ];
    for t in topics {
        p.publish(t, QoS::AtLeastOnce, false, t).await;
    }
    // Matches every filter: ends each subscriber's list.
    p.publish("a/b/c", QoS::AtLeastOnce, false, "end").await;

    let expected: [&[&str]; 4] = [
        &["a/x/c"],
        &["a", "a/b", "a/x/c", "a/x/c/d", "a/x/y/c"],
        &[
            "a", "a/b", "a/x/c", "a/x/c/d", "b/b", "/b", "ab/x/c", "a/x/y/c",
        ],
        // `#` also matches the parent level: `+/b/#` matches `a/b`.
        &["a/b", "b/b", "/b"],
    ];
    for ((s, f), want) in subs.iter_mut().zip(filters).zip(expected) {
        let mut got = Vec::new();
        loop {
            let m = s.next().await;
            if text(&m) == "end" {
                break;
            }
            got.push(m.topic.clone());
        }
        assert_eq!(got, want, "topics delivered for the filter {f:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let broker = Broker::builder()
        .env("RAFTMQ_SYS_INTERVAL_SECS", "1")
        .start();
    let (mut all, _) = Peer::connect(broker.port, "dollar-all", true).await;
    all.subscribe("#", QoS::AtLeastOnce).await;
    let (mut plus, _) = Peer::connect(broker.port, "dollar-plus", true).await;
    plus.subscribe("+/b", QoS::AtLeastOnce).await;
    plus.subscribe("+/broker/#", QoS::AtLeastOnce).await;
    let (mut explicit, _) = Peer::connect(broker.port, "dollar-explicit", true).await;
    explicit.subscribe("$x/#", QoS::AtLeastOnce).await;

    let (mut p, _) = Peer::connect(broker.port, "dollar-pub", true).await;
    p.publish("$x/b", QoS::AtLeastOnce, false, "dollar").await;
    // A filter naming the `$` level matches it.
    explicit.expect("$x/b", "dollar").await;
    explicit
        .subscribe("$SYS/broker/uptime", QoS::AtLeastOnce)
        .await;
    // Wait for one `$SYS` update after every subscription: the leading-wildcard
    // subscribers would have been offered it too.
    loop {
        let m = explicit.next().await;
        assert_eq!(m.topic, "$SYS/broker/uptime");
        if !m.retain {
            break;
        }
    }
    p.publish("s/b", QoS::AtLeastOnce, false, "sentinel").await;
    all.expect("s/b", "sentinel").await;
    plus.expect("s/b", "sentinel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    let broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "over-sub", true).await;
    s.subscribe("over/#", QoS::AtMostOnce).await;
    s.subscribe("over/+", QoS::ExactlyOnce).await;
    s.subscribe("over/t", QoS::AtLeastOnce).await;
    let (mut p, _) = Peer::connect(broker.port, "over-pub", true).await;
    p.publish("over/t", QoS::ExactlyOnce, false, "q2").await;
    p.publish("over/t", QoS::AtLeastOnce, false, "q1").await;
    p.publish("over/x/y", QoS::ExactlyOnce, false, "only #")
        .await;
    p.publish("over/end", QoS::AtLeastOnce, false, "sentinel")
        .await;

    let got: Vec<(String, String, QoS)> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let m = s.next().await;
            v.push((m.topic.clone(), text(&m).to_owned(), m.qos));
        }
        v
    };
    let want = [
        ("over/t", "q2", QoS::ExactlyOnce),
        ("over/t", "q1", QoS::AtLeastOnce),
        ("over/x/y", "only #", QoS::AtMostOnce),
        ("over/end", "sentinel", QoS::AtLeastOnce),
    ]
    .map(|(t, m, q)| (t.to_owned(), m.to_owned(), q));
    assert_eq!(got, want);
    p.publish("over/x/end", QoS::AtLeastOnce, false, "last")
        .await;
    s.expect("over/x/end", "last").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "unsub", true).await;
    s.subscribe("un/a", QoS::AtLeastOnce).await;
    s.subscribe("un/b", QoS::AtLeastOnce).await;
    let (mut p, _) = Peer::connect(broker.port, "unsub-pub", true).await;
    p.publish("un/a", QoS::AtLeastOnce, false, "before").await;
    s.expect("un/a", "before").await;

    s.unsubscribe("un/a").await;
    p.publish("un/a", QoS::AtLeastOnce, false, "after").await;
    p.publish("un/a", QoS::AtMostOnce, false, "after, QoS 0")
        .await;
    p.publish("un/b", QoS::AtLeastOnce, false, "sentinel").await;
    s.expect("un/b", "sentinel").await;
}
