//! Wills: fired when the connection ends without DISCONNECT (socket dropped, keepalive
//! timeout), not on a clean DISCONNECT; the will's retain flag.

use std::time::Duration;

use rumqttc::{LastWill, QoS};
use tokio::time::Instant;

use crate::common::raw_v4::{self, Connect, Will};
use crate::common::Broker;
use crate::peer::Peer;
use crate::{with_will, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_fires_when_the_socket_drops() {
    let broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "will-sub", true).await;
    s.subscribe("will/#", QoS::ExactlyOnce).await;
    let will = LastWill::new("will/gone", "dropped", QoS::AtLeastOnce, false);
    let (w, _) = Peer::connect_with(with_will(broker.port, "will-drop", will)).await;
    // Dropping the event loop closes the socket without DISCONNECT.
    drop(w);
    let m = s.expect("will/gone", "dropped").await;
    assert_eq!(m.qos, QoS::AtLeastOnce, "the will's QoS");
    assert!(!m.retain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_fires_on_keepalive_timeout() {
    let broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "ka-sub", true).await;
    s.subscribe("ka/#", QoS::AtLeastOnce).await;

    let mut raw = raw_v4::dial(broker.port).await;
    let connect = Connect {
        keep_alive: 1,
        will: Some(Will {
            topic: "ka/will",
            payload: b"silent",
            qos: 1,
            retain: false,
        }),
        ..Connect::new("ka-silent")
    };
    raw_v4::send(&mut raw, &connect.bytes()).await;
    assert_eq!(
        raw_v4::read_exact(&mut raw, 4, WAIT).await,
        raw_v4::connack(false, 0)
    );
    let connected = Instant::now();
    // The socket stays open but silent: the broker gives up after 1.5 x keepalive.
    s.expect("ka/will", "silent").await;
    let elapsed = connected.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400),
        "will fired after {elapsed:?}, before 1.5 x keepalive"
    );
    assert!(
        elapsed <= Duration::from_millis(1500) + Duration::from_secs(4),
        "will fired only after {elapsed:?}"
    );
    raw_v4::read_until_closed(&mut raw, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_not_fired_on_clean_disconnect() {
    let broker = Broker::start();
    let (mut s, _) = Peer::connect(broker.port, "quiet-sub", true).await;
    s.subscribe("quiet/#", QoS::AtLeastOnce).await;
    let will = LastWill::new("quiet/will", "should not fire", QoS::AtLeastOnce, false);
    let (w, _) = Peer::connect_with(with_will(broker.port, "quiet", will)).await;
    w.disconnect().await;
    broker.wait_log("client disconnected client=quiet ", WAIT);
    // Let the broker record the disconnect (and fire the will, if it wrongly would) before
    // the sentinel.
    assert!(
        s.next_within(Duration::from_millis(500)).await.is_none(),
        "something arrived after a clean DISCONNECT: {:?}",
        s.events.last()
    );
    let (mut p, _) = Peer::connect(broker.port, "quiet-pub", true).await;
    p.publish("quiet/end", QoS::AtLeastOnce, false, "sentinel")
        .await;
    s.expect("quiet/end", "sentinel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_retain_flag_is_honoured() {
    let broker = Broker::start();
    let (mut live, _) = Peer::connect(broker.port, "wr-live", true).await;
    live.subscribe("wr/#", QoS::AtLeastOnce).await;
    let will = LastWill::new("wr/status", "offline", QoS::AtLeastOnce, true);
    let (w, _) = Peer::connect_with(with_will(broker.port, "wr", will)).await;
    drop(w);
    let m = live.expect("wr/status", "offline").await;
    assert!(!m.retain, "live delivery of a retained will has retain 0");

    let (mut later, _) = Peer::connect(broker.port, "wr-later", true).await;
    later.subscribe("wr/#", QoS::AtLeastOnce).await;
    let m = later.expect("wr/status", "offline").await;
    assert!(m.retain, "the will was stored as a retained message");
    assert_eq!(m.qos, QoS::AtLeastOnce);
}
