//! MQTT 3.1.1 as Mosquitto behaves, through real sockets: rumqttc for what a client library
//! does, hand-written packets (`common::raw_v4`) for what it will not do, and Mosquitto's own
//! command-line clients. Every test starts its own broker.
//!
//! A test that must show a message did *not* arrive publishes a sentinel afterwards on a
//! topic the subscriber does get, and checks that the sentinel is the next thing it receives:
//! messages from one publisher reach a subscriber in the order the broker acked them.
//!
//! # Layout
//! - `main.rs`: shared constants and small conversions.
//! - `peer`: `Peer`, a rumqttc connection the test polls itself.
//! - `sessions`: clean session, session present, offline queueing, takeover.
//! - `qos`: QoS 0/1/2 flows both ways, the delivered QoS, message order.
//! - `retained`: set, replace, delete, the retain flag on delivery.
//! - `topics`: wildcards, `$` topics, overlapping subscriptions, unsubscribe.
//! - `wills`: when a will fires and when it does not; retained wills.
//! - `connect`: empty client ids, protocol level, the CONNECT timeout.
//! - `sys`: the bounded offline queue and `$SYS`.
//! - `process`: kill -9 and SIGTERM with restarts, command line and configuration errors.

#[path = "../common/mod.rs"]
mod common;

mod connect;
mod peer;
mod process;
mod qos;
mod retained;
mod sessions;
mod sys;
mod topics;
mod wills;

use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, Publish, QoS};

/// How long anything that should happen may take on a loaded machine.
const WAIT: Duration = Duration::from_secs(10);

fn text(p: &Publish) -> &str {
    std::str::from_utf8(&p.payload).expect("UTF-8 payload")
}

fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn with_will(port: u16, id: &str, will: LastWill) -> MqttOptions {
    let mut o = common::client::v4_options(port, id, true);
    o.set_last_will(will);
    o
}
