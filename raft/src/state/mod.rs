//! The deterministic MQTT state machine. PLACEHOLDER BODIES: the real implementation
//! replaces them; the public API below is the contract the storage crate and the broker use.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::effect::{Delivery, Effect};
use crate::error::RaftError;
use crate::ids::{ClientId, ConnId};
use crate::message::Message;
use crate::response::Response;

/// Counts for `$SYS`, metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub sessions: u64,
    pub sessions_online: u64,
    pub subscriptions: u64,
    pub retained: u64,
    pub stored_messages: u64,
    pub queued_messages: u64,
    pub inflight_messages: u64,
    /// Messages dropped because a session's queue was full (counted since the log began).
    pub dropped_queue_full: u64,
    /// Messages that expired before delivery.
    pub expired_messages: u64,
}

/// One write to the state-machine mirror: `value == None` deletes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorWrite {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// The state shared between the state-machine store (writer, inside apply) and the broker
/// (readers: in-memory QoS 0 routing, stats). Never held across an `.await`.
pub type SharedState = Arc<parking_lot::RwLock<State>>;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Apply one command: one reply per op, in order, and the effects to perform, in order.
    pub fn apply(&mut self, cmd: &Command) -> (Response, Vec<Effect>) {
        let _ = cmd;
        (Response::default(), Vec::new())
    }

    /// Deliveries for a QoS 0, non-retained publish routed in memory by the leader: one per
    /// matching online session (overlap rules, no-local, shared groups, subscription ids).
    pub fn route_transient(&self, message: &Arc<Message>) -> Vec<(ClientId, ConnId, Delivery)> {
        let _ = message;
        Vec::new()
    }

    pub fn stats(&self) -> Stats {
        Stats::default()
    }

    /// The mirror writes caused by everything applied since the last call.
    pub fn take_dirty(&mut self) -> Vec<MirrorWrite> {
        Vec::new()
    }

    /// Rebuild from every (key, value) of the mirror (derived indexes are rebuilt too).
    pub fn from_mirror<I>(entries: I) -> Result<State, RaftError>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let _ = entries.into_iter().count();
        Ok(State::default())
    }

    /// Canonical bytes of the whole state: the same state always gives the same bytes.
    pub fn to_snapshot_bytes(&self) -> Result<Vec<u8>, RaftError> {
        Ok(Vec::new())
    }

    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<State, RaftError> {
        let _ = bytes;
        Ok(State::default())
    }
}
