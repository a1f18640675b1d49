//! rumqttc v5 helpers shared by the black-box tests (the v4 ones are in `client`).

#![allow(dead_code)]

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::time::{timeout_at, Instant};

/// Options for a clean-start 5.0 client with keep alive 30 s.
pub fn options(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connect and wait for the CONNACK.
pub async fn connect(options: MqttOptions) -> (AsyncClient, EventLoop, ConnAck) {
    let (client, mut ev) = AsyncClient::new(options, 1000);
    let ack = wait_connack(&mut ev).await;
    (client, ev, ack)
}

/// `connect(options(port, id))`.
pub async fn connect_id(port: u16, id: &str) -> (AsyncClient, EventLoop) {
    let (c, ev, _) = connect(options(port, id)).await;
    (c, ev)
}

pub async fn wait_connack(ev: &mut EventLoop) -> ConnAck {
    wait_for(ev, "CONNACK", |p| match p {
        Packet::ConnAck(a) => Some(a.clone()),
        _ => None,
    })
    .await
}

/// Poll until the packet `pick` accepts arrives, or panic after 10 s.
pub async fn wait_for<T>(
    ev: &mut EventLoop,
    what: &str,
    mut pick: impl FnMut(&Packet) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match timeout_at(deadline, ev.poll()).await {
            Ok(Ok(Event::Incoming(p))) => {
                if let Some(v) = pick(&p) {
                    return v;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("connection failed waiting for {what}: {e}"),
            Err(_) => panic!("no {what} within 10 s"),
        }
    }
}

/// Subscribe and wait for the SUBACK; returns the PUBLISHes that came before it (the spec
/// lets a broker send matching messages, e.g. retained ones, before the SUBACK).
pub async fn subscribe(
    client: &AsyncClient,
    ev: &mut EventLoop,
    filter: &str,
    qos: QoS,
) -> Vec<Publish> {
    client
        .subscribe(filter, qos)
        .await
        .expect("queue SUBSCRIBE");
    let mut early = Vec::new();
    wait_for(ev, "SUBACK", |p| match p {
        Packet::SubAck(_) => Some(()),
        Packet::Publish(m) => {
            early.push(m.clone());
            None
        }
        _ => None,
    })
    .await;
    early
}

/// Poll until `n` publishes arrived or `within` passed; returns what arrived.
pub async fn collect(ev: &mut EventLoop, n: usize, within: Duration) -> Vec<Publish> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        match timeout_at(deadline, ev.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => got.push(p),
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    got
}

/// Exactly `n` publishes within 10 s (panics with what arrived otherwise).
pub async fn receive(ev: &mut EventLoop, n: usize) -> Vec<Publish> {
    let got = collect(ev, n, Duration::from_secs(10)).await;
    assert_eq!(
        got.len(),
        n,
        "expected {n} publishes within 10 s, got {got:?}"
    );
    got
}

/// Keep polling in the background (acks, pings) until the returned handle is aborted.
pub fn drive(mut ev: EventLoop) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while ev.poll().await.is_ok() {} })
}

/// Poll in the background and hand every received PUBLISH to the returned channel (which
/// closes when the connection ends); abort the handle to stop.
pub fn inbox(
    mut ev: EventLoop,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<Publish>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok(event) = ev.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                if tx.send(p).is_err() {
                    return;
                }
            }
        }
    });
    (task, rx)
}
