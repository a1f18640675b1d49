//! Rules that need the session: topic aliases, the receive maximum, and which ends of a
//! connection fire its will.

use std::time::Duration;

use crate::common::raw::{self, kind, rc, Body, Raw, WITHIN};
use crate::common::Broker;
use crate::{attack, broker, still_serving, v5, Bystander, NO_WILL_GRACE, SLOW_CONNECT_TIMEOUT};

#[tokio::test]
async fn topic_alias_abuse() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let (mut setter, ack) = Raw::connect_v5(broker.port, "alias-setter").await;
    let max = ack
        .connack_props()
        .into_iter()
        .find(|(id, _)| *id == 0x22)
        .map(|(_, v)| u16::from_be_bytes([v[0], v[1]]))
        .expect("CONNACK topic alias maximum");
    assert!(max > 0, "the broker accepts topic aliases");
    let alias = |a: u16| Body::new().u8(0x23).u16(a);

    // A valid alias, set and then used alone, works on its own connection...
    setter
        .send(&raw::publish_v5(0, 0, b"bystander/alias", alias(1), b"one"))
        .await;
    setter
        .send(&raw::publish_v5(0, 0, b"", alias(1), b"two"))
        .await;
    by.expect("bystander/alias", b"one", "the aliased message")
        .await;
    by.expect("bystander/alias", b"two", "the alias-only message")
        .await;

    let cases = vec![
        // ...but means nothing on another one.
        v5(
            "alias set on another connection",
            raw::publish_v5(0, 0, b"", alias(1), b"x"),
            rc::PROTOCOL_ERROR,
        ),
        v5(
            "unknown alias",
            raw::publish_v5(1, 1, b"", alias(max), b"x"),
            rc::PROTOCOL_ERROR,
        ),
        v5(
            "alias 0 with a topic",
            raw::publish_v5(0, 0, b"a", alias(0), b"x"),
            rc::TOPIC_ALIAS_INVALID,
        ),
        v5(
            "alias 0 alone",
            raw::publish_v5(0, 0, b"", alias(0), b"x"),
            rc::TOPIC_ALIAS_INVALID,
        ),
        v5(
            "alias above the maximum",
            raw::publish_v5(0, 0, b"a", alias(max + 1), b"x"),
            rc::TOPIC_ALIAS_INVALID,
        ),
        v5(
            "alias 65535",
            raw::publish_v5(1, 1, b"a", alias(u16::MAX), b"x"),
            rc::TOPIC_ALIAS_INVALID,
        ),
        v5(
            "alias for a topic with a wildcard",
            raw::publish_v5(0, 0, b"a/#", alias(1), b"x"),
            rc::TOPIC_NAME_INVALID,
        ),
        v5(
            "topic alias twice",
            raw::publish_v5(0, 0, b"a", alias(1).u8(0x23).u16(2), b"x"),
            rc::PROTOCOL_ERROR,
        ),
    ];
    attack(broker.port, &mut by, cases).await;

    setter.send(&[0xC0, 0x00]).await;
    assert_eq!(setter.frame(WITHIN).await.kind(), kind::PINGRESP);
    still_serving(&broker, &mut by).await;
}

#[tokio::test]
async fn receive_maximum_exceeded() {
    let broker = Broker::builder()
        .env("RAFTMQ_MQTT_CONNECT_TIMEOUT_SECS", SLOW_CONNECT_TIMEOUT)
        .env("RAFTMQ_MQTT_RECEIVE_MAXIMUM", "2")
        .start();
    let mut by = Bystander::join(broker.port).await;

    // A client that keeps to the limit is served.
    let (mut good, ack) = Raw::connect_v5(broker.port, "polite").await;
    assert!(
        ack.connack_props().contains(&(0x21, vec![0, 2])),
        "CONNACK receive maximum 2: {ack:02x?}"
    );
    for round in 0..3u16 {
        let ids = [round * 2 + 1, round * 2 + 2];
        let mut batch = Vec::new();
        for id in ids {
            batch.extend(raw::publish_v5(1, id, b"rm/ok", Body::new(), b"x"));
        }
        good.send(&batch).await;
        for _ in ids {
            let f = good.frame(WITHIN).await;
            assert_eq!(f.kind(), kind::PUBACK, "{f:02x?}");
        }
    }
    for id in [100, 101] {
        good.send(&raw::publish_v5(2, id, b"rm/ok", Body::new(), b"x"))
            .await;
        assert_eq!(good.frame(WITHIN).await.kind(), kind::PUBREC);
        good.send(&[0x62, 0x02, 0x00, id as u8]).await;
        assert_eq!(good.frame(WITHIN).await.kind(), kind::PUBCOMP);
    }
    good.send(&[0xC0, 0x00]).await;
    assert_eq!(good.frame(WITHIN).await.kind(), kind::PINGRESP);

    // QoS 2 publishes stay open until PUBCOMP: a third without PUBREL is one too many.
    let (mut raw, _) = Raw::connect_v5(broker.port, "greedy-qos2").await;
    let mut burst = Vec::new();
    for id in 1..=3 {
        burst.extend(raw::publish_v5(2, id, b"rm/x", Body::new(), b"x"));
    }
    raw.send_lossy(&burst).await;
    let before = raw
        .expect_disconnect(
            rc::RECEIVE_MAXIMUM_EXCEEDED,
            WITHIN,
            "3 QoS 2 without PUBREL",
        )
        .await;
    assert!(
        before.len() <= 2 && before.iter().all(|f| f.kind() == kind::PUBREC),
        "{before:02x?}"
    );
    by.check("3 QoS 2 publishes without PUBREL").await;

    // QoS 1 publishes pipelined without waiting for PUBACK.
    let (mut raw, _) = Raw::connect_v5(broker.port, "greedy-qos1").await;
    let mut burst = Vec::new();
    for id in 1..=50 {
        burst.extend(raw::publish_v5(1, id, b"rm/x", Body::new(), b"x"));
    }
    raw.send_lossy(&burst).await;
    let before = raw
        .expect_disconnect(rc::RECEIVE_MAXIMUM_EXCEEDED, WITHIN, "50 QoS 1 pipelined")
        .await;
    assert!(
        before.iter().all(|f| f.kind() == kind::PUBACK),
        "{before:02x?}"
    );
    by.check("50 pipelined QoS 1 publishes").await;

    still_serving(&broker, &mut by).await;
}

#[tokio::test]
async fn clean_disconnect_discards_the_will() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;

    // Every form of a normal 5.0 DISCONNECT (mqttbytes rejects the first two), and 3.1.1's.
    let clean: Vec<(&str, bool, Vec<u8>)> = vec![
        ("will/v5-short", true, vec![0xE0, 0x00]),
        (
            "will/v5-reason-and-props",
            true,
            vec![0xE0, 0x02, 0x00, 0x00],
        ),
        ("will/v5-reason-only", true, vec![0xE0, 0x01, 0x00]),
        ("will/v4", false, vec![0xE0, 0x00]),
    ];
    for (topic, v5, bye) in &clean {
        let connect = if *v5 {
            raw::connect_v5_will(topic, topic, b"should not fire")
        } else {
            raw::connect_v4_will(topic, topic, b"should not fire")
        };
        let (mut raw, _) = Raw::connect_with(broker.port, &connect).await;
        raw.send(bye).await;
        // The broker answers a DISCONNECT with nothing but the close.
        raw.expect_silent_close(WITHIN, topic).await;
    }
    // A fixed grace period: the wills must not arrive within it.
    let topics: Vec<&str> = clean.iter().map(|(t, _, _)| *t).collect();
    by.expect_no_wills(&topics, NO_WILL_GRACE).await;

    // The same connection ending any other way fires its will, so the silence above is
    // meaningful.
    let connect = raw::connect_v5_will("with-will", "will/reason-4", b"fired");
    let (mut raw, _) = Raw::connect_with(broker.port, &connect).await;
    raw.send(&[0xE0, 0x01, rc::DISCONNECT_WITH_WILL]).await;
    raw.expect_silent_close(WITHIN, "DISCONNECT 0x04").await;
    by.expect("will/reason-4", b"fired", "the will after DISCONNECT 0x04")
        .await;

    let connect = raw::connect_v5_will("bad-will", "will/malformed", b"fired");
    let (mut raw, _) = Raw::connect_with(broker.port, &connect).await;
    raw.send(&[0x36, 0x00]).await;
    raw.expect_disconnect(rc::MALFORMED, WITHIN, "QoS 3 with a will")
        .await;
    by.expect(
        "will/malformed",
        b"fired",
        "the will after a malformed packet",
    )
    .await;

    let connect = raw::connect_v5_will("bad-bye", "will/bad-disconnect", b"fired");
    let (mut raw, _) = Raw::connect_with(broker.port, &connect).await;
    raw.send(&[0xE0, 0x01, 0x05]).await; // 0x05 is not a DISCONNECT reason code
    raw.expect_disconnect(rc::PROTOCOL_ERROR, WITHIN, "DISCONNECT 0x05")
        .await;
    by.expect(
        "will/bad-disconnect",
        b"fired",
        "the will after a bad DISCONNECT",
    )
    .await;

    by.expect_no_wills(&topics, Duration::ZERO).await;
    still_serving(&broker, &mut by).await;
}
