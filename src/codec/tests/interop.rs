//! What rumqttc 0.25 (our test client) reads from what we write: an independent check of
//! the server-to-client encodings, including the ones mqttbytes 0.6 gets wrong.

use rumqttc::v5::mqttbytes::v5 as r5;

use super::*;

fn read_v4(bytes: &[u8]) -> rumqttc::Packet {
    let mut buf = BytesMut::from(bytes);
    let p = rumqttc::Packet::read(&mut buf, MAX as usize).unwrap();
    assert!(buf.is_empty());
    p
}

fn read_v5(bytes: &[u8]) -> r5::Packet {
    let mut buf = BytesMut::from(bytes);
    let p = r5::Packet::read(&mut buf, None).unwrap();
    assert!(buf.is_empty());
    p
}

#[test]
fn rumqttc_reads_every_server_packet() {
    for p in server_packets() {
        let v4 = encode(Protocol::V4, &p);
        if !v4.is_empty() {
            read_v4(&v4);
        }
        read_v5(&encode(Protocol::V5, &p));
    }
}

#[test]
fn v4_connack_refusal() {
    let ack = Packet::ConnAck(Box::new(ConnAck {
        reason: reason::BAD_USERNAME_OR_PASSWORD,
        ..ConnAck::default()
    }));
    match read_v4(&encode(Protocol::V4, &ack)) {
        rumqttc::Packet::ConnAck(c) => {
            assert_eq!(c.code, rumqttc::ConnectReturnCode::BadUserNamePassword);
            assert!(!c.session_present);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v5_connack_with_every_property() {
    let ack = Packet::ConnAck(Box::new(ConnAck {
        session_present: true,
        reason: 0,
        session_expiry: Some(100),
        receive_maximum: Some(20),
        maximum_qos: Some(1),
        retain_available: Some(1),
        maximum_packet_size: Some(1 << 20),
        assigned_client_id: Some("auto-1".into()),
        topic_alias_maximum: Some(10),
        reason_string: Some("welcome".into()),
        wildcard_available: Some(1),
        subscription_ids_available: Some(1),
        shared_available: Some(0),
        server_keep_alive: Some(60),
        response_information: Some("resp/".into()),
        server_reference: Some("other:1883".into()),
    }));
    let r5::Packet::ConnAck(c) = read_v5(&encode(Protocol::V5, &ack)) else {
        panic!("not a CONNACK");
    };
    assert!(c.session_present);
    assert_eq!(c.code, r5::ConnectReturnCode::Success);
    let p = c.properties.expect("properties");
    assert_eq!(p.session_expiry_interval, Some(100));
    assert_eq!(p.receive_max, Some(20));
    assert_eq!(p.max_qos, Some(1));
    assert_eq!(p.retain_available, Some(1));
    assert_eq!(p.max_packet_size, Some(1 << 20));
    assert_eq!(p.assigned_client_identifier.as_deref(), Some("auto-1"));
    assert_eq!(p.topic_alias_max, Some(10));
    assert_eq!(p.reason_string.as_deref(), Some("welcome"));
    assert_eq!(p.wildcard_subscription_available, Some(1));
    assert_eq!(p.subscription_identifiers_available, Some(1));
    assert_eq!(p.shared_subscription_available, Some(0));
    assert_eq!(p.server_keep_alive, Some(60));
    assert_eq!(p.response_information.as_deref(), Some("resp/"));
    assert_eq!(p.server_reference.as_deref(), Some("other:1883"));
}

#[test]
fn v5_publish_with_every_property_and_several_subscription_ids() {
    let mut p = publish(QoS::ExactlyOnce, 42);
    p.props = PublishProps {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(30),
        topic_alias: Some(2),
        response_topic: Some("r/t".into()),
        correlation_data: Some(Bytes::from_static(b"corr")),
        user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        subscription_identifiers: vec![1, 300, 268_435_455],
        content_type: Some("application/json".into()),
    };
    let r5::Packet::Publish(got) = read_v5(&encode(Protocol::V5, &Packet::Publish(p.clone())))
    else {
        panic!("not a PUBLISH");
    };
    assert_eq!(&got.topic[..], b"a/b/c");
    assert_eq!(got.pkid, 42);
    assert!(got.dup && got.retain);
    assert_eq!(got.payload, p.payload);
    let props = got.properties.expect("properties");
    assert_eq!(props.payload_format_indicator, Some(1));
    assert_eq!(props.message_expiry_interval, Some(30));
    assert_eq!(props.topic_alias, Some(2));
    assert_eq!(props.response_topic.as_deref(), Some("r/t"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"corr"[..]));
    assert_eq!(props.user_properties, p.props.user_properties);
    assert_eq!(props.subscription_identifiers, vec![1, 300, 268_435_455]);
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
}

#[test]
fn v5_publish_by_topic_alias_alone() {
    let mut p = publish(QoS::AtMostOnce, 0);
    p.topic.clear();
    p.props.topic_alias = Some(5);
    let r5::Packet::Publish(got) = read_v5(&encode(Protocol::V5, &Packet::Publish(p))) else {
        panic!("not a PUBLISH");
    };
    assert!(got.topic.is_empty());
    assert_eq!(got.properties.and_then(|p| p.topic_alias), Some(5));
}

#[test]
fn v5_acks_suback_unsuback_and_disconnect_with_reasons() {
    let ack = Packet::PubAck(Ack {
        packet_id: PacketId(3),
        reason: reason::NO_MATCHING_SUBSCRIBERS,
        reason_string: Some("nobody".into()),
    });
    let r5::Packet::PubAck(a) = read_v5(&encode(Protocol::V5, &ack)) else {
        panic!("not a PUBACK");
    };
    assert_eq!(
        (a.pkid, a.reason),
        (3, r5::PubAckReason::NoMatchingSubscribers)
    );
    assert_eq!(
        a.properties.and_then(|p| p.reason_string).as_deref(),
        Some("nobody")
    );

    let suback = Packet::SubAck(SubAck {
        packet_id: PacketId(4),
        codes: vec![1, reason::NOT_AUTHORIZED],
        reason_string: Some("partly".into()),
    });
    let r5::Packet::SubAck(s) = read_v5(&encode(Protocol::V5, &suback)) else {
        panic!("not a SUBACK");
    };
    assert_eq!(
        s.return_codes,
        vec![
            r5::SubscribeReasonCode::Success(rumqttc::v5::mqttbytes::QoS::AtLeastOnce),
            r5::SubscribeReasonCode::NotAuthorized
        ]
    );
    assert_eq!(
        s.properties.and_then(|p| p.reason_string).as_deref(),
        Some("partly")
    );

    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: PacketId(5),
        codes: vec![reason::NO_SUBSCRIPTION_EXISTED],
        reason_string: None,
    });
    let r5::Packet::UnsubAck(u) = read_v5(&encode(Protocol::V5, &unsuback)) else {
        panic!("not an UNSUBACK");
    };
    assert_eq!(u.reasons, vec![r5::UnsubAckReason::NoSubscriptionExisted]);

    let bye = Packet::Disconnect(Disconnect {
        reason: reason::USE_ANOTHER_SERVER,
        session_expiry: Some(5),
        reason_string: Some("move".into()),
        server_reference: Some("b:1883".into()),
    });
    let r5::Packet::Disconnect(d) = read_v5(&encode(Protocol::V5, &bye)) else {
        panic!("not a DISCONNECT");
    };
    assert_eq!(d.reason_code, r5::DisconnectReasonCode::UseAnotherServer);
    let p = d.properties.expect("properties");
    assert_eq!(p.session_expiry_interval, Some(5));
    assert_eq!(p.reason_string.as_deref(), Some("move"));
    assert_eq!(p.server_reference.as_deref(), Some("b:1883"));
}
