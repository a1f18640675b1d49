//! What applying a command asks the active node to do. Apply runs on every node in log
//! order; only the active leader's sink acts on effects, followers drop them. Effects are
//! hints to push now: everything they carry is also in the state, so a lost effect (no
//! connection, node restarted) is recovered by redelivery on the next connect.

use std::sync::Arc;

use crate::ids::{ClientId, ConnId, PacketId};
use crate::message::{Message, QoS};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send a PUBLISH to the session's current connection.
    Deliver {
        client: ClientId,
        conn: ConnId,
        delivery: Delivery,
    },
    /// Send a PUBREL (outbound QoS 2 whose PUBREC was committed; resent on reconnect).
    PubRel {
        client: ClientId,
        conn: ConnId,
        packet_id: PacketId,
    },
    /// Close a connection (its session was taken over or expired).
    Close {
        client: ClientId,
        conn: ConnId,
        reason: CloseReason,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// 5.0 DISCONNECT 0x8E.
    SessionTakenOver,
}

/// One outbound PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `None` for QoS 0.
    pub packet_id: Option<PacketId>,
    pub qos: QoS,
    pub dup: bool,
    /// The RETAIN flag to send (retained-on-subscribe, or retain-as-published).
    pub retain: bool,
    pub message: Arc<Message>,
    pub subscription_ids: Vec<u32>,
}

/// Where the state machine store hands effects after each apply, in log order.
pub trait EffectSink: Send + Sync + 'static {
    fn emit(&self, effects: Vec<Effect>);
}

/// A sink for nodes and tools that act on nothing (followers' tests, offline tools).
pub struct DropEffects;

impl EffectSink for DropEffects {
    fn emit(&self, _effects: Vec<Effect>) {}
}
