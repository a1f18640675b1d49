//! Packets after a successful CONNECT that break the rules of their own shape: wrong
//! type or flags, too large, bad topics and filters.

use crate::common::raw::{self, kind, rc, Body, Raw, WITHIN};
use crate::common::Broker;
use crate::{attack, broker, fresh, still_serving, v4, v5, Bystander, SLOW_CONNECT_TIMEOUT};

#[tokio::test]
async fn out_of_order_and_reserved_packets() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let subscribe0 = {
        let mut s = raw::subscribe_v5(1, &[(b"a", 0)]);
        s[0] = 0x80;
        s
    };
    let cases = vec![
        v5(
            "second CONNECT",
            raw::connect_v5("again"),
            rc::PROTOCOL_ERROR,
        ),
        v4("second CONNECT", raw::connect_v4("again")),
        v5(
            "CONNACK from a client",
            vec![0x20, 0x03, 0x00, 0x00, 0x00],
            rc::PROTOCOL_ERROR,
        ),
        v4("CONNACK from a client", vec![0x20, 0x02, 0x00, 0x00]),
        v5(
            "SUBACK from a client",
            vec![0x90, 0x04, 0x00, 0x01, 0x00, 0x00],
            rc::PROTOCOL_ERROR,
        ),
        v4("SUBACK from a client", vec![0x90, 0x03, 0x00, 0x01, 0x00]),
        v5(
            "UNSUBACK from a client",
            vec![0xB0, 0x04, 0x00, 0x01, 0x00, 0x00],
            rc::PROTOCOL_ERROR,
        ),
        v5(
            "PINGRESP from a client",
            vec![0xD0, 0x00],
            rc::PROTOCOL_ERROR,
        ),
        v4("PINGRESP from a client", vec![0xD0, 0x00]),
        // No authentication method was given, so AUTH cannot continue anything.
        v5("AUTH", vec![0xF0, 0x00], rc::PROTOCOL_ERROR),
        v4("packet type 15 (AUTH is 5.0 only)", vec![0xF0, 0x00]),
        v5("reserved packet type 0", vec![0x00, 0x00], rc::MALFORMED),
        v4("reserved packet type 0", vec![0x00, 0x00]),
        v5(
            "PUBREL with flags 0000",
            vec![0x60, 0x02, 0x00, 0x01],
            rc::MALFORMED,
        ),
        v5(
            "PUBREL with flags 0011",
            vec![0x63, 0x02, 0x00, 0x01],
            rc::MALFORMED,
        ),
        v4("PUBREL with flags 0000", vec![0x60, 0x02, 0x00, 0x01]),
        v5(
            "SUBSCRIBE with flags 0000",
            subscribe0.clone(),
            rc::MALFORMED,
        ),
        v4("SUBSCRIBE with flags 0000", {
            let mut s = raw::subscribe_v4(1, &[(b"a", 0)]);
            s[0] = 0x80;
            s
        }),
        v5(
            "PUBACK with flags 0001",
            vec![0x41, 0x02, 0x00, 0x01],
            rc::MALFORMED,
        ),
        v5("PINGREQ with flags 0001", vec![0xC1, 0x00], rc::MALFORMED),
        v5("PINGREQ with a body", vec![0xC0, 0x01, 0x00], rc::MALFORMED),
        v4("PINGREQ with a body", vec![0xC0, 0x01, 0x00]),
        v5(
            "DISCONNECT with flags 0010",
            vec![0xE2, 0x00],
            rc::MALFORMED,
        ),
        v4("DISCONNECT with a body", vec![0xE0, 0x01, 0x00]),
        v5(
            "PUBACK for packet id 0",
            vec![0x40, 0x02, 0x00, 0x00],
            rc::PROTOCOL_ERROR,
        ),
        // [MQTT-3.14.2-2]: a session expiry of 0 at CONNECT cannot be raised.
        v5(
            "DISCONNECT raising the session expiry",
            Body::new()
                .u8(0)
                .props(Body::new().u8(0x11).u32(60))
                .packet(0xE0),
            rc::PROTOCOL_ERROR,
        ),
    ];
    attack(broker.port, &mut by, cases).await;
    still_serving(&broker, &mut by).await;
}

/// The payload of `publish_v5_of_size`.
fn payload_of_size(topic: &str, total: usize) -> Vec<u8> {
    // 1 type byte + 2 length bytes (128..=16383) + topic + property length + payload.
    vec![b'x'; total - 3 - (2 + topic.len()) - 1]
}

/// A 5.0 QoS 0 PUBLISH of exactly `total` bytes, fixed header included.
fn publish_v5_of_size(topic: &str, total: usize) -> Vec<u8> {
    let payload = payload_of_size(topic, total);
    let p = raw::publish_v5(0, 0, topic.as_bytes(), Body::new(), &payload);
    assert_eq!(p.len(), total);
    p
}

#[tokio::test]
async fn oversized_packets_are_refused_before_their_body() {
    let broker = Broker::builder()
        .env("RAFTMQ_MQTT_CONNECT_TIMEOUT_SECS", SLOW_CONNECT_TIMEOUT)
        .env("RAFTMQ_LIMITS_MAX_PACKET_SIZE", "1024")
        .start();
    let mut by = Bystander::join(broker.port).await;

    // The limit counts the whole packet: exactly 1024 bytes pass, and reach a subscriber.
    let (mut raw, ack) = Raw::connect_v5(broker.port, "at-the-limit").await;
    assert!(ack
        .connack_props()
        .contains(&(0x27, 1024u32.to_be_bytes().to_vec())));
    let at_limit = publish_v5_of_size("bystander/big", 1024);
    raw.send(&at_limit).await;
    by.expect(
        "bystander/big",
        &payload_of_size("bystander/big", 1024),
        "the 1024-byte message",
    )
    .await;

    let header_only = vec![0x30, 0x80, 0x80, 0x80, 0x32]; // 100 MB announced, nothing more
    let cases = vec![
        v5(
            "PUBLISH of 1025 bytes",
            publish_v5_of_size("a", 1025),
            rc::PACKET_TOO_LARGE,
        ),
        v5(
            "PUBLISH of 2000 bytes",
            publish_v5_of_size("a", 2000),
            rc::PACKET_TOO_LARGE,
        ),
        v4(
            "PUBLISH of 2000 bytes",
            raw::publish_v4(0, 0, b"a", &[b'x'; 1995]),
        ),
        v5(
            "SUBSCRIBE of 1100 bytes",
            raw::subscribe_v5(1, &[(&[b'a'; 1090], 0)]),
            rc::PACKET_TOO_LARGE,
        ),
        // Only the header is sent: the refusal must come before the body (the raw client
        // has no keep alive, so nothing else could close the socket).
        v5(
            "PUBLISH announcing 100 MB",
            header_only.clone(),
            rc::PACKET_TOO_LARGE,
        ),
        v4("PUBLISH announcing 100 MB", header_only),
        v5(
            "PUBLISH announcing the largest remaining length",
            vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F],
            rc::PACKET_TOO_LARGE,
        ),
        v5(
            "remaining length with 5 bytes",
            vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            rc::MALFORMED,
        ),
        v4(
            "remaining length with 5 bytes",
            vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        ),
        // Before CONNECT the version is unknown: just closed.
        fresh("CONNECT of 2000 bytes", raw::connect_v5(&"c".repeat(1980))),
    ];
    attack(broker.port, &mut by, cases).await;

    // The connection at the limit is still served.
    raw.send(&[0xC0, 0x00]).await;
    assert_eq!(raw.frame(WITHIN).await.kind(), kind::PINGRESP);
    still_serving(&broker, &mut by).await;
}

#[tokio::test]
async fn bad_publish_topics_and_headers() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let p5 = |topic: &[u8]| raw::publish_v5(0, 0, topic, Body::new(), b"x");
    let p4 = |topic: &[u8]| raw::publish_v4(0, 0, topic, b"x");
    let mut qos3 = raw::publish_v5(1, 1, b"a", Body::new(), b"x");
    qos3[0] = 0x36;
    let mut dup0 = p5(b"a");
    dup0[0] = 0x38;
    let cases = vec![
        v5("topic not UTF-8", p5(b"a/\xFF"), rc::MALFORMED),
        v5(
            "topic with an over-long encoding",
            p5(b"a\xC0\xAF"),
            rc::MALFORMED,
        ),
        v5(
            "topic with a UTF-16 surrogate",
            p5(b"a\xED\xA0\x80"),
            rc::MALFORMED,
        ),
        v5("topic with U+0000", p5(b"a\0b"), rc::MALFORMED),
        v4("topic not UTF-8", p4(b"a/\xFF")),
        v4("topic with U+0000", p4(b"a\0b")),
        v5("topic with +", p5(b"a/+"), rc::TOPIC_NAME_INVALID),
        v5("topic #", p5(b"#"), rc::TOPIC_NAME_INVALID),
        v5("topic ending in /#", p5(b"a/#"), rc::TOPIC_NAME_INVALID),
        v5(
            "topic with + inside a level",
            p5(b"a+b"),
            rc::TOPIC_NAME_INVALID,
        ),
        v4("topic with +", p4(b"a/+")),
        v4("topic #", p4(b"#")),
        v5("empty topic without an alias", p5(b""), rc::PROTOCOL_ERROR),
        v4("empty topic", p4(b"")),
        v5(
            "topic longer than the packet",
            Body::new().u16(100).raw(b"ab").packet(0x30),
            rc::MALFORMED,
        ),
        v5("QoS 3", qos3, rc::MALFORMED),
        v4("QoS 3", {
            let mut p = raw::publish_v4(1, 1, b"a", b"x");
            p[0] = 0x36;
            p
        }),
        v5("DUP on QoS 0", dup0, rc::MALFORMED),
        v5(
            "QoS 1 with packet id 0",
            raw::publish_v5(1, 0, b"a", Body::new(), b"x"),
            rc::PROTOCOL_ERROR,
        ),
        v5(
            "QoS 2 with packet id 0",
            raw::publish_v5(2, 0, b"a", Body::new(), b"x"),
            rc::PROTOCOL_ERROR,
        ),
        v4("QoS 1 with packet id 0", raw::publish_v4(1, 0, b"a", b"x")),
        v5(
            "property length beyond the packet",
            Body::new().str("a").u8(50).u8(0x01).packet(0x30),
            rc::MALFORMED,
        ),
        v5(
            "unknown property",
            raw::publish_v5(0, 0, b"a", Body::new().u8(0x7F).u8(1), b"x"),
            rc::MALFORMED,
        ),
        v5(
            "payload format indicator twice",
            raw::publish_v5(0, 0, b"a", Body::new().u8(0x01).u8(0).u8(0x01).u8(1), b"x"),
            rc::PROTOCOL_ERROR,
        ),
        v5(
            "subscription identifier from a client",
            raw::publish_v5(0, 0, b"a", Body::new().u8(0x0B).u8(1), b"x"),
            rc::PROTOCOL_ERROR,
        ),
    ];
    attack(broker.port, &mut by, cases).await;
    still_serving(&broker, &mut by).await;
}

#[tokio::test]
async fn bad_subscribe_and_unsubscribe() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let s5 = |filter: &[u8], opts: u8| raw::subscribe_v5(1, &[(filter, opts)]);
    let s4 = |filter: &[u8], qos: u8| raw::subscribe_v4(1, &[(filter, qos)]);
    let mut cases = vec![
        v5(
            "SUBSCRIBE without filters",
            Body::new().u16(1).no_props().packet(0x82),
            rc::PROTOCOL_ERROR,
        ),
        v4("SUBSCRIBE without filters", Body::new().u16(1).packet(0x82)),
        v5(
            "UNSUBSCRIBE without filters",
            Body::new().u16(1).no_props().packet(0xA2),
            rc::PROTOCOL_ERROR,
        ),
        v4(
            "UNSUBSCRIBE without filters",
            Body::new().u16(1).packet(0xA2),
        ),
        v5(
            "UNSUBSCRIBE a+/b",
            Body::new().u16(1).no_props().str("a+/b").packet(0xA2),
            rc::TOPIC_FILTER_INVALID,
        ),
        v5("options with reserved bit 6", s5(b"a", 0x41), rc::MALFORMED),
        v5("options with reserved bit 7", s5(b"a", 0x80), rc::MALFORMED),
        v5("retain handling 3", s5(b"a", 0x30), rc::MALFORMED),
        v5("QoS 3", s5(b"a", 0x03), rc::MALFORMED),
        v4("requested QoS with reserved bits", s4(b"a", 0x04)),
        v4("requested QoS 3", s4(b"a", 0x03)),
        // [MQTT-3.8.3-4]
        v5(
            "no local on a shared subscription",
            s5(b"$share/g/a", 0x04),
            rc::PROTOCOL_ERROR,
        ),
        v5("filter not UTF-8", s5(b"a/\xFF", 0), rc::MALFORMED),
        v5("filter with U+0000", s5(b"a\0", 0), rc::MALFORMED),
        v5(
            "two subscription identifiers",
            Body::new()
                .u16(1)
                .props(Body::new().u8(0x0B).u8(1).u8(0x0B).u8(2))
                .str("a")
                .u8(0)
                .packet(0x82),
            rc::PROTOCOL_ERROR,
        ),
        v5(
            "subscription identifier 0",
            Body::new()
                .u16(1)
                .props(Body::new().u8(0x0B).u8(0))
                .str("a")
                .u8(0)
                .packet(0x82),
            rc::PROTOCOL_ERROR,
        ),
        v5(
            "a good filter then a bad one",
            raw::subscribe_v5(1, &[(b"ok/#", 1), (b"a/#/b", 1)]),
            rc::TOPIC_FILTER_INVALID,
        ),
    ];
    for f in [
        "a+/b",
        "a/#/b",
        "#a",
        "a/b#",
        "a/++",
        "",
        "$share//a",
        "$share/g+/a",
        "$share/#/a",
        "$share/g",
        "$share/g/",
    ] {
        cases.push(v5(
            &format!("filter {f:?}"),
            s5(f.as_bytes(), 1),
            rc::TOPIC_FILTER_INVALID,
        ));
    }
    for f in ["a+/b", "a/#/b", "#a", "$share//a", "$share/g+/a"] {
        cases.push(v4(&format!("filter {f:?}"), s4(f.as_bytes(), 1)));
    }
    attack(broker.port, &mut by, cases).await;

    // None of those subscriptions took effect: the bystander's topics reach no attacker,
    // and a plain subscription on a fresh connection still works.
    let (mut raw, _) = Raw::connect_v5(broker.port, "good-subscriber").await;
    raw.send(&s5(b"bystander/#", 1)).await;
    let suback = raw.frame(WITHIN).await;
    assert_eq!(suback.kind(), kind::SUBACK, "{suback:02x?}");
    assert_eq!(suback.body, [0x00, 0x01, 0x00, 0x01], "granted QoS 1");
    still_serving(&broker, &mut by).await;
}
