//! CONNECT edge cases, with hand-written packets: empty client ids, an unsupported protocol
//! level, a socket that never sends CONNECT.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::raw_v4::{self, Connect};
use crate::common::Broker;
use crate::WAIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_client_id_with_clean_session_is_accepted() {
    let broker = Broker::start();
    let mut a = raw_v4::dial(broker.port).await;
    raw_v4::send(&mut a, &Connect::new("").bytes()).await;
    assert_eq!(
        raw_v4::read_exact(&mut a, 4, WAIT).await,
        raw_v4::connack(false, 0)
    );
    // A second one gets its own id: it takes nothing over.
    let mut b = raw_v4::dial(broker.port).await;
    raw_v4::send(&mut b, &Connect::new("").bytes()).await;
    assert_eq!(
        raw_v4::read_exact(&mut b, 4, WAIT).await,
        raw_v4::connack(false, 0)
    );
    for s in [&mut a, &mut b] {
        raw_v4::send(s, &raw_v4::PINGREQ).await;
        assert_eq!(raw_v4::read_exact(s, 2, WAIT).await, raw_v4::PINGRESP);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_client_id_without_clean_session_is_refused() {
    let broker = Broker::start();
    let mut s = raw_v4::dial(broker.port).await;
    let connect = Connect {
        clean_session: false,
        ..Connect::new("")
    };
    raw_v4::send(&mut s, &connect.bytes()).await;
    // CONNACK 0x02 "identifier rejected", then the broker closes [MQTT-3.1.3-8].
    assert_eq!(
        raw_v4::read_until_closed(&mut s, WAIT).await,
        raw_v4::connack(false, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocol_level_is_refused() {
    let broker = Broker::start();
    let mut s = raw_v4::dial(broker.port).await;
    let connect = Connect {
        level: 3,
        ..Connect::new("old")
    };
    raw_v4::send(&mut s, &connect.bytes()).await;
    // CONNACK 0x01 "unacceptable protocol version", then close [MQTT-3.1.2-2].
    assert_eq!(
        raw_v4::read_until_closed(&mut s, WAIT).await,
        raw_v4::connack(false, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_without_connect_is_closed_after_the_connect_timeout() {
    let broker = Broker::builder()
        .env("RAFTMQ_MQTT_CONNECT_TIMEOUT_SECS", "1")
        .start();
    let mut s = raw_v4::dial(broker.port).await;
    let opened = Instant::now();
    let got = raw_v4::read_until_closed(&mut s, WAIT).await;
    let elapsed = opened.elapsed();
    assert!(got.is_empty(), "the broker sent {got:02x?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}, before the 1 s timeout"
    );
    assert!(
        elapsed <= Duration::from_secs(5),
        "closed only after {elapsed:?}"
    );
}
