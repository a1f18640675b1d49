//! What the leader proposes. One `Command` is one Raft entry: the leader batches many ops
//! (publishes, acks, connects) into one entry so they share one append and one fsync.
//! `now_ms` is the leader's clock when it built the batch; apply never reads a clock.

use serde::{Deserialize, Serialize};

use crate::ban::BanTarget;
use crate::ids::{ClientId, ConnId, PacketId};
use crate::message::{Message, SubOptions, Will};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub now_ms: u64,
    pub ops: Vec<Op>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A CONNECT accepted at the door. Takes the session over from any older connection.
    Connect(Connect),
    /// The connection ended. `graceful` is a normal DISCONNECT (no will, unless the 5.0
    /// reason was 0x04, which the caller maps to `graceful: false`). `session_expiry`
    /// is the 5.0 DISCONNECT's new expiry, if it sent one.
    Disconnect {
        client: ClientId,
        conn: ConnId,
        graceful: bool,
        session_expiry: Option<u32>,
    },
    /// An inbound PUBLISH with QoS 1 or 2, or a retained one of any QoS. For QoS 2,
    /// `packet_id` is recorded for de-duplication until the PUBREL.
    Publish {
        client: ClientId,
        conn: ConnId,
        packet_id: Option<PacketId>,
        message: Message,
    },
    /// Inbound QoS 2 PUBREL: forget the packet id (the message was routed at PUBLISH).
    PubRel {
        client: ClientId,
        conn: ConnId,
        packet_id: PacketId,
    },
    Subscribe {
        client: ClientId,
        conn: ConnId,
        requests: Vec<SubscribeRequest>,
    },
    Unsubscribe {
        client: ClientId,
        conn: ConnId,
        filters: Vec<String>,
    },
    /// Subscriber acknowledgements, batched (PUBACK, PUBREC, PUBCOMP from clients).
    Acks(Vec<Ack>),
    /// Periodic housekeeping at `now_ms`: fire due wills, expire sessions and messages.
    Tick,
    /// A new leader took over: every session still marked online was online on the old
    /// leader and is now disconnected without DISCONNECT (wills scheduled, expiry starts).
    ResetConnections,
    /// Refuse CONNECTs matching `target` until `until_ms` (replaces an existing ban of the
    /// same target). A ban already over at the command's time is not stored.
    Ban {
        target: BanTarget,
        until_ms: u64,
        reason: String,
    },
    /// Lift a ban before it runs out.
    Unban { target: BanTarget },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect {
    pub client: ClientId,
    pub conn: ConnId,
    pub clean_start: bool,
    /// Session expiry interval in seconds (3.1.1: 0 for clean session, u32::MAX otherwise).
    pub session_expiry: u32,
    /// How many QoS 1/2 deliveries may be unacknowledged at once (min of the client's receive
    /// maximum and the broker's limit).
    pub receive_maximum: u16,
    /// Largest packet the client accepts (5.0), so oversize messages are not queued for it.
    pub maximum_packet_size: Option<u32>,
    /// Most messages queued for the session while offline or behind its window.
    pub max_queued: u32,
    /// Most bytes (topic + payload) queued for the session.
    pub max_queued_bytes: u64,
    /// Which message a full queue drops.
    pub queue_policy: QueuePolicy,
    pub will: Option<Will>,
    /// 4 (3.1.1) or 5.
    pub protocol: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeRequest {
    pub filter: String,
    pub options: SubOptions,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub client: ClientId,
    pub conn: ConnId,
    pub packet_id: PacketId,
    pub kind: AckKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckKind {
    /// QoS 1 delivery done.
    PubAck,
    /// QoS 2 delivery received by the client: next the broker sends PUBREL.
    PubRec,
    /// QoS 2 delivery done.
    PubComp,
}

/// Which message a full session queue gives up: the one arriving (Mosquitto's behaviour), or
/// the oldest waiting, so a slow subscriber sees the latest values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuePolicy {
    #[default]
    DropNewest,
    DropOldest,
}
