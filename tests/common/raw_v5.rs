//! A packet-level MQTT 5.0 client: rumqttc's v5 packet codec on a plain TCP socket, with no
//! automatic acks, retransmission or topic-alias resolution. For what a client library hides
//! or will not do: stop between PUBREC and PUBREL, resend a PUBLISH with DUP, see an empty
//! topic with an alias, send DISCONNECT with a reason code or properties, or watch the
//! socket for the broker's DISCONNECT and close.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, Connect, ConnectProperties, ConnectReturnCode, Disconnect, DisconnectProperties,
    DisconnectReasonCode, Filter, LastWill, Packet, PubAck, PubComp, PubRec, PubRel, Publish,
    PublishProperties, SubAck, Subscribe, SubscribeProperties,
};
use rumqttc::v5::mqttbytes::{Error as WireError, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// How long an expected packet may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Why a read gave no packet.
#[derive(Debug, PartialEq, Eq)]
pub enum NoPacket {
    /// EOF or reset.
    Closed,
    /// Nothing within the time given.
    Silent,
}

pub struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    /// PUBLISHes that arrived before the SUBACK being waited for (the spec lets a broker
    /// send matching messages, e.g. retained ones, before the SUBACK); read first.
    early: VecDeque<Packet>,
}

/// CONNECT properties with only a session expiry interval (`None`: absent, i.e. 0).
pub fn props(session_expiry: Option<u32>) -> ConnectProperties {
    let mut p = ConnectProperties::new();
    p.session_expiry_interval = session_expiry;
    p
}

/// A 5.0 CONNECT with keep alive 60 s.
pub fn connect_packet(id: &str, clean_start: bool, properties: ConnectProperties) -> Connect {
    Connect {
        keep_alive: 60,
        client_id: id.to_owned(),
        clean_start,
        properties: Some(properties),
    }
}

impl Raw {
    pub async fn dial(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the broker");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: BytesMut::new(),
            early: VecDeque::new(),
        }
    }

    /// Dial, send `connect` (and `will`), and return the CONNACK, which must be a success.
    pub async fn connect(port: u16, connect: Connect, will: Option<LastWill>) -> (Raw, ConnAck) {
        let mut raw = Raw::dial(port).await;
        raw.send(Packet::Connect(connect, will, None)).await;
        let ack = raw
            .expect("CONNACK", |p| match p {
                Packet::ConnAck(a) => Some(a),
                _ => None,
            })
            .await;
        assert_eq!(ack.code, ConnectReturnCode::Success, "CONNACK {ack:?}");
        (raw, ack)
    }

    /// `connect_packet(id, clean_start, props(session_expiry))` without a will.
    pub async fn session(
        port: u16,
        id: &str,
        clean_start: bool,
        session_expiry: Option<u32>,
    ) -> (Raw, ConnAck) {
        Raw::connect(
            port,
            connect_packet(id, clean_start, props(session_expiry)),
            None,
        )
        .await
    }

    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.write(&mut out, None).expect("encode packet");
        self.send_bytes(&out).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("write to the broker");
    }

    /// The next packet, or why none: `Closed`, or `Silent` if nothing arrives within `within`.
    pub async fn read(&mut self, within: Duration) -> Result<Packet, NoPacket> {
        if let Some(p) = self.early.pop_front() {
            return Ok(p);
        }
        let deadline = Instant::now() + within;
        loop {
            // rumqttc's decoder refuses the 2-byte DISCONNECT (reason 0x00, no properties)
            // that the spec allows; decode that one here.
            if self.buf.starts_with(&[0xE0, 0x00]) {
                let _ = self.buf.split_to(2);
                return Ok(Packet::Disconnect(Disconnect::new(
                    DisconnectReasonCode::NormalDisconnection,
                )));
            }
            if !self.buf.is_empty() {
                match Packet::read(&mut self.buf, None) {
                    Ok(p) => return Ok(p),
                    Err(WireError::InsufficientBytes(_)) => {}
                    Err(e) => panic!("undecodable bytes from the broker ({e}): {:02x?}", self.buf),
                }
            }
            let mut chunk = [0u8; 4096];
            match timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Err(NoPacket::Closed),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return Err(NoPacket::Silent),
            }
        }
    }

    /// The next packet; panics if the socket closes or nothing arrives within 10 s.
    pub async fn recv(&mut self, what: &str) -> Packet {
        match self.read(WAIT).await {
            Ok(p) => p,
            Err(NoPacket::Closed) => {
                panic!("the broker closed the connection while we waited for {what}")
            }
            Err(NoPacket::Silent) => panic!("no {what} within {WAIT:?}"),
        }
    }

    /// The next packet, which must be the one `pick` accepts.
    pub async fn expect<T>(&mut self, what: &str, pick: impl FnOnce(Packet) -> Option<T>) -> T {
        let p = self.recv(what).await;
        let shown = format!("{p:?}");
        pick(p).unwrap_or_else(|| panic!("expected {what}, got {shown}"))
    }

    pub async fn expect_publish(&mut self) -> Publish {
        self.expect("PUBLISH", |p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .await
    }

    /// Asserts that nothing arrives (and the socket stays open) for `grace`.
    pub async fn quiet(&mut self, grace: Duration, why: &str) {
        match self.read(grace).await {
            Err(NoPacket::Silent) => {}
            Ok(p) => panic!("{why}: got {p:?}"),
            Err(NoPacket::Closed) => panic!("{why}: the broker closed the connection"),
        }
    }

    /// Everything the broker sends until it closes the socket; panics if it stays open 10 s.
    pub async fn until_closed(&mut self) -> Vec<Packet> {
        let mut got = Vec::new();
        loop {
            match self.read(WAIT).await {
                Ok(p) => got.push(p),
                Err(NoPacket::Closed) => return got,
                Err(NoPacket::Silent) => {
                    panic!("the broker did not close the connection; got {got:?}")
                }
            }
        }
    }

    /// SUBSCRIBE and wait for its SUBACK; PUBLISHes before it are kept for the next reads.
    pub async fn subscribe(
        &mut self,
        pkid: u16,
        filters: Vec<Filter>,
        id: Option<usize>,
    ) -> SubAck {
        let properties = id.map(|id| SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        });
        self.send(Packet::Subscribe(Subscribe {
            pkid,
            filters,
            properties,
        }))
        .await;
        let mut early = VecDeque::new();
        let ack = loop {
            match self.recv("SUBACK").await {
                Packet::SubAck(a) => break a,
                p @ Packet::Publish(_) => early.push_back(p),
                p => panic!("expected SUBACK, got {p:?}"),
            }
        };
        self.early.extend(early);
        assert_eq!(ack.pkid, pkid, "SUBACK packet id");
        ack
    }

    /// Subscribe to one filter at `qos` with default options.
    pub async fn sub(&mut self, filter: &str, qos: QoS) -> SubAck {
        self.subscribe(1, vec![Filter::new(filter, qos)], None)
            .await
    }

    /// PUBLISH (QoS > 0 needs a non-zero `pkid`); no ack is awaited.
    pub async fn publish(
        &mut self,
        topic: &str,
        qos: QoS,
        pkid: u16,
        payload: &[u8],
        properties: Option<PublishProperties>,
    ) {
        let mut p = Publish::new(topic, qos, Bytes::copy_from_slice(payload), properties);
        p.pkid = pkid;
        self.send(Packet::Publish(p)).await;
    }

    /// QoS 2 PUBLISH and its whole flow: PUBREC (returned), PUBREL, PUBCOMP.
    pub async fn publish_exactly_once(&mut self, topic: &str, pkid: u16, payload: &[u8]) -> PubRec {
        self.publish(topic, QoS::ExactlyOnce, pkid, payload, None)
            .await;
        let rec = self
            .expect("PUBREC", |p| match p {
                Packet::PubRec(a) => Some(a),
                _ => None,
            })
            .await;
        assert_eq!(rec.pkid, pkid, "PUBREC packet id");
        self.pubrel(pkid).await;
        let comp = self
            .expect("PUBCOMP", |p| match p {
                Packet::PubComp(a) => Some(a),
                _ => None,
            })
            .await;
        assert_eq!(comp.pkid, pkid, "PUBCOMP packet id");
        rec
    }

    /// QoS 1 PUBLISH and its PUBACK (which must be the next packet).
    pub async fn publish_acked(&mut self, topic: &str, pkid: u16, payload: &[u8]) -> PubAck {
        self.publish(topic, QoS::AtLeastOnce, pkid, payload, None)
            .await;
        let ack = self
            .expect("PUBACK", |p| match p {
                Packet::PubAck(a) => Some(a),
                _ => None,
            })
            .await;
        assert_eq!(ack.pkid, pkid, "PUBACK packet id");
        ack
    }

    pub async fn puback(&mut self, pkid: u16) {
        self.send(Packet::PubAck(PubAck::new(pkid, None))).await;
    }

    pub async fn pubrec(&mut self, pkid: u16) {
        self.send(Packet::PubRec(PubRec::new(pkid, None))).await;
    }

    pub async fn pubrel(&mut self, pkid: u16) {
        self.send(Packet::PubRel(PubRel::new(pkid, None))).await;
    }

    pub async fn pubcomp(&mut self, pkid: u16) {
        self.send(Packet::PubComp(PubComp::new(pkid, None))).await;
    }

    /// DISCONNECT with `reason` and, if given, a session expiry interval.
    pub async fn disconnect(&mut self, reason: DisconnectReasonCode, session_expiry: Option<u32>) {
        let properties = session_expiry.map(|e| DisconnectProperties {
            session_expiry_interval: Some(e),
            reason_string: None,
            user_properties: Vec::new(),
            server_reference: None,
        });
        self.send(Packet::Disconnect(Disconnect {
            reason_code: reason,
            properties,
        }))
        .await;
    }

    /// A normal DISCONNECT (reason 0x00), then wait for the broker to close the socket.
    pub async fn bye(mut self) {
        self.disconnect(DisconnectReasonCode::NormalDisconnection, None)
            .await;
        self.until_closed().await;
    }
}
