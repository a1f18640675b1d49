//! rumqttc helpers shared by the black-box tests.

#![allow(dead_code)]

use std::time::Duration;

use rumqttc::{AsyncClient, ConnAck, Event, EventLoop, MqttOptions, Packet, Publish};
use tokio::time::{timeout_at, Instant};

pub fn v4_options(port: u16, id: &str, clean: bool) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_clean_session(clean);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connect and wait for the CONNACK.
pub async fn connect_v4(port: u16, id: &str, clean: bool) -> (AsyncClient, EventLoop, ConnAck) {
    let (client, mut ev) = AsyncClient::new(v4_options(port, id, clean), 1000);
    let ack = wait_connack(&mut ev).await;
    (client, ev, ack)
}

pub async fn wait_connack(ev: &mut EventLoop) -> ConnAck {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match timeout_at(deadline, ev.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(a)))) => return a,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("connect failed: {e}"),
            Err(_) => panic!("no CONNACK within 10 s"),
        }
    }
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

/// Poll until the given packet kind arrives (e.g. SUBACK) or panic after 10 s.
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

/// Keep polling in the background (acks, pings) until the returned handle is aborted.
pub fn drive(mut ev: EventLoop) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while ev.poll().await.is_ok() {} })
}
