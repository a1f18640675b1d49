//! `Peer`: a rumqttc connection polled only by the test, so that a test decides when packets
//! are read and can inspect every event.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnAck, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeReasonCode,
};
use tokio::time::{timeout_at, Instant};

use crate::common::client::{connect_v4, wait_connack};
use crate::{text, WAIT};

/// A rumqttc connection polled only by the test: received PUBLISHes wait in `inbox`, every
/// event is kept in `events` for the tests that check the acknowledgement flows.
pub struct Peer {
    client: AsyncClient,
    ev: EventLoop,
    inbox: VecDeque<Publish>,
    pub events: Vec<Event>,
}

impl Peer {
    pub async fn connect(port: u16, id: &str, clean: bool) -> (Peer, ConnAck) {
        let (client, ev, ack) = connect_v4(port, id, clean).await;
        (Peer::new(client, ev), ack)
    }

    pub async fn connect_with(options: MqttOptions) -> (Peer, ConnAck) {
        let (client, mut ev) = AsyncClient::new(options, 1000);
        let ack = wait_connack(&mut ev).await;
        (Peer::new(client, ev), ack)
    }

    fn new(client: AsyncClient, ev: EventLoop) -> Peer {
        Peer {
            client,
            ev,
            inbox: VecDeque::new(),
            events: Vec::new(),
        }
    }

    /// One event, or `None` at the deadline. A broken connection is a test failure.
    pub async fn step(&mut self, deadline: Instant) -> Option<Event> {
        match timeout_at(deadline, self.ev.poll()).await {
            Ok(Ok(event)) => {
                if let Event::Incoming(Packet::Publish(p)) = &event {
                    self.inbox.push_back(p.clone());
                }
                self.events.push(event.clone());
                Some(event)
            }
            Ok(Err(e)) => panic!("connection failed: {e}"),
            Err(_) => None,
        }
    }

    /// Poll until `pick` accepts an event; panics after `WAIT`.
    pub async fn until<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let Some(event) = self.step(deadline).await else {
                panic!("no {what} within {WAIT:?}");
            };
            if let Some(v) = pick(&event) {
                return v;
            }
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubscribeReasonCode {
        self.client.subscribe(filter, qos).await.unwrap();
        self.until("SUBACK", |e| match e {
            Event::Incoming(Packet::SubAck(a)) => Some(a.return_codes.clone()),
            _ => None,
        })
        .await[0]
    }

    pub async fn unsubscribe(&mut self, filter: &str) {
        self.client.unsubscribe(filter).await.unwrap();
        self.until("UNSUBACK", |e| {
            matches!(e, Event::Incoming(Packet::UnsubAck(_))).then_some(())
        })
        .await;
    }

    /// Publish and wait until the flow is complete: written (QoS 0), PUBACK (QoS 1) or
    /// PUBCOMP (QoS 2). Returns the packet id.
    pub async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &str) -> u16 {
        self.client
            .publish(topic, qos, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        let pkid = self
            .until("the outgoing PUBLISH", |e| match e {
                Event::Outgoing(Outgoing::Publish(id)) => Some(*id),
                _ => None,
            })
            .await;
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.until("PUBACK", |e| match e {
                    Event::Incoming(Packet::PubAck(a)) => (a.pkid == pkid).then_some(()),
                    _ => None,
                })
                .await
            }
            QoS::ExactlyOnce => {
                self.until("PUBCOMP", |e| match e {
                    Event::Incoming(Packet::PubComp(a)) => (a.pkid == pkid).then_some(()),
                    _ => None,
                })
                .await
            }
        }
        pkid
    }

    /// The next PUBLISH received, or `None` after `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Publish> {
        let deadline = Instant::now() + within;
        while self.inbox.is_empty() {
            self.step(deadline).await?;
        }
        self.inbox.pop_front()
    }

    /// The next PUBLISH received; panics after `WAIT`.
    pub async fn next(&mut self) -> Publish {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("no PUBLISH within {WAIT:?}"))
    }

    /// The next PUBLISH must be `payload` on `topic`.
    pub async fn expect(&mut self, topic: &str, payload: &str) -> Publish {
        let p = self.next().await;
        assert_eq!(
            (p.topic.as_str(), text(&p)),
            (topic, payload),
            "unexpected PUBLISH {p:?}"
        );
        p
    }

    /// Send DISCONNECT and wait until the broker closes the connection.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            match timeout_at(deadline, self.ev.poll()).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => panic!("the connection stayed open {WAIT:?} after DISCONNECT"),
            }
        }
    }
}
