//! The first packet: anything but a CONNECT, and CONNECTs that are wrong.

use crate::common::raw::{self, rc, Body};
use crate::{attack, broker, case, fresh, still_serving, Bystander, Conn, Expect};

#[tokio::test]
async fn packets_before_connect_close_silently() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let cases = vec![
        fresh("PINGREQ before CONNECT", vec![0xC0, 0x00]),
        fresh(
            "PUBLISH before CONNECT",
            raw::publish_v4(0, 0, b"a/b", b"x"),
        ),
        fresh(
            "QoS 1 PUBLISH before CONNECT",
            raw::publish_v4(1, 1, b"a", b"x"),
        ),
        fresh(
            "SUBSCRIBE before CONNECT",
            raw::subscribe_v4(1, &[(b"#", 0)]),
        ),
        fresh("DISCONNECT before CONNECT", vec![0xE0, 0x00]),
        fresh("CONNACK from a client", vec![0x20, 0x02, 0x00, 0x00]),
        fresh("reserved packet type 0", vec![0x00, 0x00]),
        fresh("packet type 15", vec![0xF0, 0x00]),
        fresh("CONNECT with flags set", {
            let mut c = raw::connect_v4("flags");
            c[0] = 0x12;
            c
        }),
        fresh(
            "CONNECT with a 5-byte remaining length",
            vec![0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
        // Only the header: refusing it must not wait for the body.
        fresh(
            "CONNECT announcing 100 MB",
            vec![0x10, 0x80, 0x80, 0x80, 0x32],
        ),
        fresh(
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        fresh(
            "a TLS ClientHello",
            vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03],
        ),
    ];
    attack(broker.port, &mut by, cases).await;
    still_serving(&broker, &mut by).await;
}

#[tokio::test]
async fn bad_connect_gets_the_right_connack() {
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    let refused4 = |name, bytes| case(name, Conn::Fresh, bytes, Expect::ConnAck4(0x01));
    let refused5 = |name, bytes, code| case(name, Conn::Fresh, bytes, Expect::ConnAck5(code));
    let will = |topic: &str| {
        Body::new()
            .no_props()
            .str("w")
            .no_props()
            .str(topic)
            .bin(b"x")
    };
    let cases = vec![
        // Unsupported protocol levels: 3.1.1 return code 1, 5.0 reason 0x84 (a level above
        // 5 is answered as 5.0).
        refused4(
            "MQTT level 3",
            raw::connect_raw("MQTT", 3, 2, Body::new().str("a")),
        ),
        refused4(
            "MQIsdp level 3 (MQTT 3.1)",
            raw::connect_raw("MQIsdp", 3, 2, Body::new().str("a")),
        ),
        refused4(
            "MQTT level 0",
            raw::connect_raw("MQTT", 0, 2, Body::new().str("a")),
        ),
        refused5(
            "MQTT level 6",
            raw::connect_raw("MQTT", 6, 2, Body::new().no_props().str("a")),
            rc::UNSUPPORTED_PROTOCOL_VERSION,
        ),
        // 3.1.1 has no return code for a malformed CONNECT: close without CONNACK
        // [MQTT-3.1.4-1].
        fresh(
            "3.1.1 reserved connect flag",
            raw::connect_raw("MQTT", 4, 0x03, Body::new().str("a")),
        ),
        fresh(
            "3.1.1 password without username",
            raw::connect_raw("MQTT", 4, 0x42, Body::new().str("a").bin(b"pw")),
        ),
        fresh(
            "3.1.1 will QoS 3",
            raw::connect_raw("MQTT", 4, 0x1E, Body::new().str("a").str("w").bin(b"x")),
        ),
        fresh(
            "3.1.1 will retain without a will",
            raw::connect_raw("MQTT", 4, 0x22, Body::new().str("a")),
        ),
        fresh(
            "3.1.1 client id not UTF-8",
            raw::connect_raw("MQTT", 4, 2, Body::new().bin(b"\xFF\xFE")),
        ),
        fresh(
            "3.1.1 client id with U+0000",
            raw::connect_raw("MQTT", 4, 2, Body::new().bin(b"a\0b")),
        ),
        fresh(
            "3.1.1 client id longer than the packet",
            raw::connect_raw("MQTT", 4, 2, Body::new().u16(40).raw(b"abc")),
        ),
        fresh(
            "3.1.1 bytes after the payload",
            raw::connect_raw("MQTT", 4, 2, Body::new().str("a").raw(b"junk")),
        ),
        fresh(
            "3.1.1 wrong protocol name",
            raw::connect_raw("MQTX", 4, 2, Body::new().str("a")),
        ),
        // 5.0: the reason code says what was wrong.
        refused5(
            "5.0 reserved connect flag",
            raw::connect_raw("MQTT", 5, 0x03, Body::new().no_props().str("a")),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 will QoS 3",
            raw::connect_raw("MQTT", 5, 0x1E, will("w")),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 will retain without a will",
            raw::connect_raw("MQTT", 5, 0x22, Body::new().no_props().str("a")),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 client id not UTF-8",
            raw::connect_raw("MQTT", 5, 2, Body::new().no_props().bin(b"\xC0\xAF")),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 client id with U+0000",
            raw::connect_raw("MQTT", 5, 2, Body::new().no_props().bin(b"a\0")),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 CONNECT cut short inside its frame",
            raw::connect_raw("MQTT", 5, 2, Body::new().no_props().u16(40).raw(b"abc")),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 property length beyond the packet",
            raw::connect_raw("MQTT", 5, 2, Body::new().u8(50).u8(0x11).u32(0).str("a")),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 unknown property",
            raw::connect_raw(
                "MQTT",
                5,
                2,
                Body::new().props(Body::new().u8(0x7F).u8(0)).str("a"),
            ),
            rc::MALFORMED,
        ),
        refused5(
            "5.0 session expiry twice",
            raw::connect_raw(
                "MQTT",
                5,
                2,
                Body::new()
                    .props(Body::new().u8(0x11).u32(1).u8(0x11).u32(2))
                    .str("a"),
            ),
            rc::PROTOCOL_ERROR,
        ),
        refused5(
            "5.0 receive maximum 0",
            raw::connect_raw(
                "MQTT",
                5,
                2,
                Body::new().props(Body::new().u8(0x21).u16(0)).str("a"),
            ),
            rc::PROTOCOL_ERROR,
        ),
        refused5(
            "5.0 maximum packet size 0",
            raw::connect_raw(
                "MQTT",
                5,
                2,
                Body::new().props(Body::new().u8(0x27).u32(0)).str("a"),
            ),
            rc::PROTOCOL_ERROR,
        ),
        refused5(
            "5.0 request problem information 2",
            raw::connect_raw(
                "MQTT",
                5,
                2,
                Body::new().props(Body::new().u8(0x17).u8(2)).str("a"),
            ),
            rc::PROTOCOL_ERROR,
        ),
        refused5(
            "5.0 authentication data without a method",
            raw::connect_raw(
                "MQTT",
                5,
                2,
                Body::new().props(Body::new().u8(0x16).bin(b"x")).str("a"),
            ),
            rc::PROTOCOL_ERROR,
        ),
        refused5(
            "5.0 will topic with a wildcard",
            raw::connect_raw("MQTT", 5, 0x06, will("will/+")),
            rc::TOPIC_NAME_INVALID,
        ),
    ];
    attack(broker.port, &mut by, cases).await;
    still_serving(&broker, &mut by).await;
}
