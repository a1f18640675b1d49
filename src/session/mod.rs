//! What each packet of a connected client means: turns packets into proposals and replies,
//! and the router's deliveries into PUBLISH packets. One `Session` per connection; it holds
//! only live, per-connection state (topic aliases, quotas); the durable session lives in
//! the replicated state.
//!
//! # Layout
//! - `mod.rs`: `Session`, dispatch of inbound packets, `Step` and `Close`.
//! - `connect`: CONNECT validation, the `Connect` proposal and CONNACK.
//! - `publish`: inbound PUBLISH / PUBREL (topic aliases, QoS flows, QoS 0 fast path).
//! - `subscribe`: SUBSCRIBE / UNSUBSCRIBE.
//! - `deliver`: outbound PUBLISH / PUBREL from the router (aliases, expiry, size limit).
//! - `props`: conversions between wire properties and stored messages.

mod connect;
mod deliver;
mod props;
mod publish;
mod subscribe;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use raftmq_raft::{Ack, AckKind, ClientId, ConnId, Op, PacketId, Reply};

use crate::auth::AclView;
use crate::broker::Broker;
use crate::cluster::{Cluster, ClusterError};
use crate::codec::{self, reason, Packet, Protocol};
use crate::metrics::DisconnectReason;

pub use connect::{accept, Accepted, Refused};

/// A proposal in flight whose outcome is packets to send, in order with the others.
pub type Pending = Pin<Box<dyn Future<Output = Result<Vec<Packet>, Close>> + Send>>;

/// What the connection does with an inbound packet.
pub enum Step {
    Nothing,
    Send(Vec<Packet>),
    Wait(Pending),
}

/// `Close::why` of a client's own DISCONNECT.
const CLIENT_DISCONNECTED: &str = "client sent DISCONNECT";

/// Why and how a connection ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// 5.0 DISCONNECT reason to send first (`None`: send nothing; 3.1.1 never sends one).
    pub send: Option<u8>,
    pub why: &'static str,
    pub end: End,
}

/// What to record in the replicated session when the connection ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Propose `Disconnect`: `graceful` discards the will.
    Disconnect {
        graceful: bool,
        session_expiry: Option<u32>,
    },
    /// Record nothing: the session already moved on (taken over), or this node no longer
    /// serves (the next leader resets the connection).
    Abandon,
}

impl Close {
    pub fn error(code: u8, why: &'static str) -> Close {
        Close {
            send: Some(code),
            why,
            end: End::Disconnect {
                graceful: false,
                session_expiry: None,
            },
        }
    }

    /// A proposal failed: the client gets no ack and must retry on another connection.
    pub fn from_cluster(err: &ClusterError) -> Close {
        let code = match err {
            ClusterError::NotLeader { .. } => reason::SERVER_UNAVAILABLE,
            ClusterError::Timeout(_) => reason::SERVER_BUSY,
            ClusterError::Stopped(_) => reason::SERVER_SHUTTING_DOWN,
            ClusterError::Internal(_) => reason::UNSPECIFIED_ERROR,
        };
        Close {
            send: Some(code),
            why: "proposal not committed",
            end: End::Abandon,
        }
    }

    /// The class of this ending, for the disconnect metric and log line.
    pub fn reason(&self) -> DisconnectReason {
        match self.send {
            None if self.why == CLIENT_DISCONNECTED => DisconnectReason::Client,
            None => DisconnectReason::ConnectionLost,
            Some(reason::KEEP_ALIVE_TIMEOUT) => DisconnectReason::KeepaliveTimeout,
            Some(reason::SESSION_TAKEN_OVER) => DisconnectReason::TakenOver,
            Some(reason::SERVER_SHUTTING_DOWN) => DisconnectReason::Shutdown,
            Some(reason::USE_ANOTHER_SERVER | reason::SERVER_UNAVAILABLE | reason::SERVER_BUSY) => {
                DisconnectReason::NotServing
            }
            Some(_) => DisconnectReason::ProtocolError,
        }
    }

    /// Nothing to send first (the socket is gone), but the will still fires.
    pub fn silent(mut self) -> Close {
        self.send = None;
        self
    }

    /// A reply that does not answer the op proposed: a bug, closed rather than guessed at.
    fn unexpected() -> Close {
        Close::error(reason::UNSPECIFIED_ERROR, "unexpected reply")
    }

    fn taken_over() -> Close {
        Close {
            send: Some(reason::SESSION_TAKEN_OVER),
            why: "session taken over",
            end: End::Abandon,
        }
    }
}

/// Propose an op of this connection's session. A proposal that did not commit, or a session
/// that has moved on to a newer connection, ends this connection.
async fn propose(cluster: &Cluster, op: Op) -> Result<Reply, Close> {
    match cluster.propose(op).await {
        Ok(Reply::NotOwner) => Err(Close::taken_over()),
        Ok(reply) => Ok(reply),
        Err(e) => Err(Close::from_cluster(&e)),
    }
}

pub struct Session {
    broker: Arc<Broker>,
    pub client: ClientId,
    pub conn: ConnId,
    pub protocol: Protocol,
    pub keep_alive_secs: u16,
    /// 5.0 request problem information: when false, no reason strings on acks.
    problem_info: bool,
    /// Session expiry from CONNECT (a DISCONNECT may not raise it from 0).
    connect_expiry: u32,
    /// Largest packet the client accepts.
    client_max_packet: Option<u32>,
    /// Inbound topic aliases (client -> broker).
    aliases_in: HashMap<u16, String>,
    /// Outbound topic aliases (broker -> client) and the client's maximum.
    aliases_out: HashMap<String, u16>,
    alias_out_max: u16,
    /// Inbound QoS 1/2 publishes not yet completed (5.0 receive maximum accounting).
    inbound_open: usize,
    /// Inbound QoS 2 packet ids between PUBLISH and PUBCOMP, as this connection saw them.
    inbound_qos2: BTreeSet<PacketId>,
    /// What the ACL file lets this client do.
    acl: AclView,
    /// Outbound QoS 2 deliveries the ACL kept from the client and acked for it: their
    /// PUBREL is not sent either.
    acl_dropped: BTreeSet<PacketId>,
}

impl Session {
    /// Meaning of one inbound packet (the codec already validated its shape).
    pub fn handle(&mut self, packet: Packet) -> Result<Step, Close> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubRel(a) => Ok(self.on_pubrel(a.packet_id)),
            Packet::PubAck(a) => Ok(self.on_ack(a.packet_id, AckKind::PubAck)),
            Packet::PubRec(a) => Ok(self.on_ack(a.packet_id, AckKind::PubRec)),
            Packet::PubComp(a) => Ok(self.on_ack(a.packet_id, AckKind::PubComp)),
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => Ok(self.on_unsubscribe(u)),
            Packet::PingReq => Ok(Step::Send(vec![Packet::PingResp])),
            Packet::Disconnect(d) => Err(self.on_disconnect(d)),
            Packet::Connect(_) => Err(Close::error(reason::PROTOCOL_ERROR, "second CONNECT")),
            _ => Err(Close::error(
                reason::PROTOCOL_ERROR,
                "packet type a client may not send",
            )),
        }
    }

    /// Bookkeeping once a reply has been written.
    pub fn sent(&mut self, packet: &Packet) {
        match packet {
            Packet::PubAck(_) => self.inbound_open = self.inbound_open.saturating_sub(1),
            Packet::PubComp(a) if self.inbound_qos2.remove(&a.packet_id) => {
                self.inbound_open = self.inbound_open.saturating_sub(1);
            }
            _ => {}
        }
    }

    fn on_ack(&mut self, packet_id: PacketId, kind: AckKind) -> Step {
        let op = Op::Acks(vec![Ack {
            client: self.client.clone(),
            conn: self.conn,
            packet_id,
            kind,
        }]);
        let cluster = self.broker.cluster.clone();
        Step::Wait(Box::pin(async move {
            propose(&cluster, op).await?;
            Ok(Vec::new())
        }))
    }

    fn on_disconnect(&mut self, d: codec::Disconnect) -> Close {
        // 5.0: a session expiry of 0 at CONNECT may not be raised at DISCONNECT.
        if self.connect_expiry == 0 && d.session_expiry.is_some_and(|e| e > 0) {
            return Close::error(
                reason::PROTOCOL_ERROR,
                "DISCONNECT raised a session expiry of 0",
            );
        }
        Close {
            send: None,
            why: CLIENT_DISCONNECTED,
            end: End::Disconnect {
                graceful: d.reason != reason::DISCONNECT_WITH_WILL,
                session_expiry: d.session_expiry,
            },
        }
    }

    /// The op that records the end of this connection.
    pub fn disconnect_op(&self, graceful: bool, session_expiry: Option<u32>) -> Op {
        Op::Disconnect {
            client: self.client.clone(),
            conn: self.conn,
            graceful,
            session_expiry,
        }
    }

    /// A reason string, unless the client asked for no problem information.
    fn reason_string(&self, text: &str) -> Option<String> {
        (self.protocol == Protocol::V5 && self.problem_info).then(|| text.to_owned())
    }
}
