//! Retained messages: set, replace, delete by an empty payload, and the retain flag on
//! delivery.

use std::collections::BTreeMap;

use rumqttc::QoS;

use crate::common::{mosquitto, require, Broker};
use crate::peer::Peer;
use crate::{text, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_message_set_replace_and_delete() {
    let broker = Broker::start();
    let (mut p, _) = Peer::connect(broker.port, "ret-pub", true).await;
    p.publish("ret/t", QoS::AtLeastOnce, true, "one").await;
    p.publish("ret/t", QoS::AtLeastOnce, true, "two").await;

    // Only the latest value is kept, sent with the retain flag on subscribe.
    let (mut a, _) = Peer::connect(broker.port, "ret-a", true).await;
    a.subscribe("ret/#", QoS::AtLeastOnce).await;
    let m = a.expect("ret/t", "two").await;
    assert!(
        m.retain,
        "a retained message sent on subscribe has the retain flag"
    );
    assert_eq!(m.qos, QoS::AtLeastOnce);
    p.publish("ret/live", QoS::AtLeastOnce, false, "sentinel")
        .await;
    a.expect("ret/live", "sentinel").await;

    // An empty retained payload deletes it, and is delivered to current subscribers as a
    // normal message (MQTT 3.3.1.3).
    p.publish("ret/t", QoS::AtLeastOnce, true, "").await;
    let m = a.expect("ret/t", "").await;
    assert!(!m.retain);

    let (mut b, _) = Peer::connect(broker.port, "ret-b", true).await;
    b.subscribe("ret/#", QoS::AtLeastOnce).await;
    p.publish("ret/live", QoS::AtLeastOnce, false, "sentinel")
        .await;
    b.expect("ret/live", "sentinel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_flag_set_only_for_messages_sent_on_subscribe() {
    let broker = Broker::start();
    let (mut a, _) = Peer::connect(broker.port, "flag-a", true).await;
    a.subscribe("flag/#", QoS::ExactlyOnce).await;
    let (mut p, _) = Peer::connect(broker.port, "flag-pub", true).await;
    p.publish("flag/t", QoS::ExactlyOnce, true, "kept").await;

    // Live delivery of a retained publish: retain flag 0 [MQTT-3.3.1-9].
    let m = a.expect("flag/t", "kept").await;
    assert!(!m.retain, "live delivery re-flagged as retained: {m:?}");
    assert_eq!(m.qos, QoS::ExactlyOnce);

    // A new subscriber gets it with the flag, at the lower of the two QoS.
    let (mut b, _) = Peer::connect(broker.port, "flag-b", true).await;
    b.subscribe("flag/+", QoS::AtLeastOnce).await;
    let m = b.expect("flag/t", "kept").await;
    assert!(m.retain);
    assert_eq!(m.qos, QoS::AtLeastOnce);

    // Subscribing again to the same filter sends the retained messages again [MQTT-3.8.4-3].
    a.subscribe("flag/#", QoS::AtMostOnce).await;
    let m = a.expect("flag/t", "kept").await;
    assert!(m.retain);
    assert_eq!(m.qos, QoS::AtMostOnce, "the replaced subscription's QoS");
}

/// `mosquitto_pub -r` sends a retained QoS 0 PUBLISH and DISCONNECT back to back: the
/// broker must store the message although the connection ends right after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_retained_then_disconnect_is_stored() {
    require("mosquitto_pub");
    let broker = Broker::start();
    let mut want = BTreeMap::new();
    for i in 0..10 {
        let (id, topic, payload) = (format!("mr-pub-{i}"), format!("mr/{i}"), format!("v{i}"));
        mosquitto::publish(
            broker.port,
            &["-i", &id, "-t", &topic, "-m", &payload, "-r"],
        );
        broker.wait_log(&format!("client disconnected client={id} "), WAIT);
        want.insert(topic, payload);
    }
    let (mut s, _) = Peer::connect(broker.port, "mr-sub", true).await;
    s.subscribe("mr/#", QoS::AtLeastOnce).await;
    let mut got = BTreeMap::new();
    for _ in 0..10 {
        let m = s.next().await;
        assert!(m.retain && m.qos == QoS::AtMostOnce, "{m:?}");
        got.insert(m.topic.clone(), text(&m).to_owned());
    }
    assert_eq!(got, want);
}
