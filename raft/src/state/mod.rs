//! The deterministic MQTT state machine: sessions, subscriptions, outbound windows and
//! queues, retained messages and wills, changed only by `apply`.
//!
//! Determinism: everything that reaches a reply, an effect or the serialized bytes is kept
//! in ordered containers or comes from counters in the state; time comes from the command.
//!
//! # Layout
//! - `mod.rs`: `State`'s public API and the dispatch of each `Op`.
//! - `session`: the persisted session record, in the pieces the mirror stores.
//! - `outbound`: a session's in-flight window, queue, packet ids, acks and redelivery.
//! - `connection`: connect (takeover, clean start, resume), disconnect, connection reset,
//!   the end of a session.
//! - `route`: PUBLISH, matching a message to subscriptions (overlap, no-local, shared
//!   groups), the replicated and the in-memory QoS 0 paths.
//! - `subscribe`: SUBSCRIBE / UNSUBSCRIBE and retained messages on subscribe.
//! - `retained`: the retained map and message expiry.
//! - `will`: wills, the timers of offline sessions, `Tick`.
//! - `bans`: bans set, lifted and expired; lookups for the door.
//! - `store`: messages stored once, reference counted.
//! - `topic`: topic name and filter validation, `$share` parsing, one-filter matching.
//! - `trie`: the subscription index (derived, rebuilt on load).
//! - `mirror`: the key/value form for the storage mirror, dirty tracking.
//! - `snapshot`: canonical snapshot bytes, rebuilding derived parts.

mod bans;
mod connection;
mod mirror;
mod outbound;
mod retained;
mod route;
mod session;
mod snapshot;
mod store;
mod subscribe;
mod topic;
mod trie;
mod will;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ban::{Ban, BanKind, BanTarget};
use crate::command::{Command, Op};
use crate::effect::{Delivery, Effect};
use crate::error::RaftError;
use crate::ids::{ClientId, ConnId, MessageId, PacketId};
use crate::message::Message;
use crate::response::{Reply, Response};

use bans::BanExpiry;
use mirror::{Dirty, Key};
use session::Session;
use store::Store;
use trie::SubTrie;
use will::Timers;

/// Per subscription, the map and index entries around its strings (an estimate of the
/// B-tree, trie node and options' share, not a measurement).
pub const SUBSCRIPTION_OVERHEAD_BYTES: u64 = 128;

/// Counts for `$SYS`, metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub sessions: u64,
    pub sessions_online: u64,
    pub subscriptions: u64,
    pub retained: u64,
    pub stored_messages: u64,
    pub queued_messages: u64,
    /// Topic and payload bytes of the queued messages (a message queued for several
    /// sessions counts once per session: that is how much a backlog would deliver).
    pub queued_bytes: u64,
    pub inflight_messages: u64,
    /// Estimated memory of the subscriptions: their filters and client ids, in the sessions
    /// and in the topic index, plus `SUBSCRIPTION_OVERHEAD_BYTES` each.
    pub subscription_bytes: u64,
    /// Messages dropped because a session's queue was full (counted since the log began).
    pub dropped_queue_full: u64,
    /// Messages that expired before delivery.
    pub expired_messages: u64,
    /// QoS 1/2 deliveries (and replicated QoS 0 ones) not made because the message is larger
    /// than the subscriber's 5.0 maximum packet size (counted since the log began).
    pub dropped_too_large: u64,
    pub bans: u64,
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

/// Whether a topic filter (without a `$share/<group>/` prefix) matches a topic name, by
/// MQTT's rules: `+` is one level, `#` the rest (and the parent level), and a filter starting
/// with a wildcard never matches a topic starting with `$`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    topic::matches(filter, topic)
}

/// One session, as the admin API lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo<'a> {
    pub client: &'a ClientId,
    /// `Some` while online.
    pub conn: Option<ConnId>,
    pub protocol: u8,
    pub expiry_secs: u32,
    /// The in-flight window of the connection that last connected (0 acts as 1).
    pub receive_maximum: u16,
    pub subscriptions: usize,
    pub inflight: usize,
    pub queued: usize,
}

/// Counters kept since the log began (part of the mirror's `g` record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Totals {
    pub dropped_queue_full: u64,
    pub expired_messages: u64,
    pub dropped_too_large: u64,
}

/// What the per-session code needs from the rest of the state while one op applies.
pub(crate) struct Ctx<'a> {
    pub now_ms: u64,
    pub store: &'a mut Store,
    pub totals: &'a mut Totals,
    pub dirty: &'a mut Dirty,
    pub effects: &'a mut Vec<Effect>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    sessions: BTreeMap<ClientId, Session>,
    /// Topic -> retained message.
    retained: BTreeMap<String, MessageId>,
    /// Round-robin turn of each shared group, by `$share/<group>/<filter>`.
    share_counters: BTreeMap<String, u64>,
    store: Store,
    totals: Totals,
    /// Who may not connect, until when.
    bans: BTreeMap<BanTarget, Ban>,
    #[serde(skip)]
    ban_expiry: BanExpiry,
    #[serde(skip)]
    trie: SubTrie,
    #[serde(skip)]
    timers: Timers,
    #[serde(skip)]
    dirty: Dirty,
    /// Shared-group turns of the in-memory QoS 0 path (not replicated, so not serialized).
    #[serde(skip)]
    transient_turns: AtomicU64,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Apply one command: one reply per op, in order, and the effects to perform, in order.
    pub fn apply(&mut self, cmd: &Command) -> (Response, Vec<Effect>) {
        let mut effects = Vec::new();
        let replies = cmd
            .ops
            .iter()
            .map(|op| self.apply_op(op, cmd.now_ms, &mut effects))
            .collect();
        (Response { replies }, effects)
    }

    fn apply_op(&mut self, op: &Op, now_ms: u64, effects: &mut Vec<Effect>) -> Reply {
        match op {
            Op::Connect(c) => self.connect(c, now_ms, effects),
            Op::Disconnect {
                client,
                conn,
                graceful,
                session_expiry,
            } => self.disconnect(client, *conn, *graceful, *session_expiry, now_ms, effects),
            Op::Publish {
                client,
                conn,
                packet_id,
                message,
            } => self.publish(client, *conn, *packet_id, message, now_ms, effects),
            Op::PubRel {
                client,
                conn,
                packet_id,
            } => match self.sessions.get_mut(client).filter(|s| s.owned_by(*conn)) {
                None => Reply::NotOwner,
                Some(s) => {
                    let known = s.inbound_qos2.remove(packet_id);
                    if known {
                        self.dirty.mark(Key::Inbound(client.clone(), *packet_id));
                    }
                    Reply::Released { known }
                }
            },
            Op::Subscribe {
                client,
                conn,
                requests,
            } => self.subscribe(client, *conn, requests, now_ms, effects),
            Op::Unsubscribe {
                client,
                conn,
                filters,
            } => self.unsubscribe(client, *conn, filters),
            Op::Acks(acks) => {
                let mut cx = Ctx {
                    now_ms,
                    store: &mut self.store,
                    totals: &mut self.totals,
                    dirty: &mut self.dirty,
                    effects,
                };
                for a in acks {
                    // An ack from a connection that lost the session is stale: ignored.
                    if let Some(s) = self
                        .sessions
                        .get_mut(&a.client)
                        .filter(|s| s.owned_by(a.conn))
                    {
                        s.ack(&a.client, a.packet_id, a.kind, &mut cx);
                    }
                }
                Reply::Acked
            }
            Op::Tick => {
                self.tick(now_ms, effects);
                Reply::Ticked
            }
            Op::ResetConnections => self.reset_connections(now_ms, effects),
            Op::Ban {
                target,
                until_ms,
                reason,
            } => self.ban(target, *until_ms, reason, now_ms),
            Op::Unban { target } => self.unban(target),
        }
    }

    /// Deliveries for a QoS 0, non-retained publish routed in memory by the leader: one per
    /// matching online session (overlap rules, no-local, shared groups, subscription ids).
    pub fn route_transient(&self, message: &Arc<Message>) -> Vec<(ClientId, ConnId, Delivery)> {
        self.transient(message)
    }

    /// Counts; walks every session, so meant for metrics and `$SYS`, not per packet.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            sessions: self.sessions.len() as u64,
            retained: self.retained.len() as u64,
            stored_messages: self.store.messages.len() as u64,
            dropped_queue_full: self.totals.dropped_queue_full,
            expired_messages: self.totals.expired_messages,
            dropped_too_large: self.totals.dropped_too_large,
            bans: self.bans.len() as u64,
            ..Stats::default()
        };
        for (client, s) in &self.sessions {
            stats.sessions_online += u64::from(s.core.conn.is_some());
            stats.subscriptions += s.subscriptions.len() as u64;
            // The filter is held by the session and by the topic index, the client id by
            // the index entry.
            stats.subscription_bytes += s
                .subscriptions
                .keys()
                .map(|f| 2 * f.len() as u64 + client.as_str().len() as u64)
                .sum::<u64>()
                + s.subscriptions.len() as u64 * SUBSCRIPTION_OVERHEAD_BYTES;
            stats.queued_messages += s.queue.len() as u64;
            stats.inflight_messages += s.inflight.len() as u64;
            stats.queued_bytes += s.queued_bytes;
        }
        stats
    }

    /// The ban on `kind`/`value` in force at `now_ms` (a ban past its end that no `Tick`
    /// has removed yet no longer counts).
    pub fn banned(&self, kind: BanKind, value: &str, now_ms: u64) -> Option<&Ban> {
        let target = BanTarget {
            kind,
            value: value.to_owned(),
        };
        self.bans.get(&target).filter(|b| b.active(now_ms))
    }

    /// Every stored ban, by kind then value.
    pub fn bans(&self) -> impl Iterator<Item = (&BanTarget, &Ban)> + '_ {
        self.bans.iter()
    }

    /// How many topic + payload bytes wait in session queues, all sessions together; walks
    /// every session.
    pub fn queued_bytes(&self) -> u64 {
        self.sessions.values().map(|s| s.queued_bytes).sum()
    }

    /// How many subscriptions `client` holds, and whether `filter` is one of them.
    pub fn subscriptions_of(&self, client: &ClientId, filter: &str) -> (usize, bool) {
        self.sessions.get(client).map_or((0, false), |s| {
            (s.subscriptions.len(), s.subscriptions.contains_key(filter))
        })
    }

    /// The connection that owns `client`'s session, while it is online.
    pub fn session_conn(&self, client: &ClientId) -> Option<ConnId> {
        self.sessions.get(client).and_then(|s| s.core.conn)
    }

    /// Whether `client` has a session (online or not).
    pub fn has_session(&self, client: &ClientId) -> bool {
        self.sessions.contains_key(client)
    }

    /// Every session, in client id order.
    pub fn sessions(&self) -> impl Iterator<Item = SessionInfo<'_>> + '_ {
        self.sessions.iter().map(|(client, s)| SessionInfo {
            client,
            conn: s.core.conn,
            protocol: s.core.protocol,
            expiry_secs: s.core.expiry_secs,
            receive_maximum: s.core.receive_maximum,
            subscriptions: s.subscriptions.len(),
            inflight: s.inflight.len(),
            queued: s.queue.len(),
        })
    }

    /// The packet ids of `client`'s in-flight deliveries, oldest first (for invariant
    /// checks: the fuzzer, tests).
    pub fn inflight_ids(&self, client: &ClientId) -> Vec<PacketId> {
        self.sessions
            .get(client)
            .map(|s| s.inflight.iter().map(|e| e.packet_id).collect())
            .unwrap_or_default()
    }

    /// The mirror writes caused by everything applied since the last call.
    pub fn take_dirty(&mut self) -> Vec<MirrorWrite> {
        self.take_dirty_writes()
    }

    /// The whole state as mirror writes (all of them `Some`): what to write into an empty
    /// mirror after installing a snapshot. Pending dirty keys are left alone.
    pub fn to_mirror(&self) -> Vec<MirrorWrite> {
        self.mirror_writes()
    }

    /// Rebuild from every (key, value) of the mirror (derived indexes are rebuilt too).
    pub fn from_mirror<I>(entries: I) -> Result<State, RaftError>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        State::load_mirror(entries)
    }

    /// Canonical bytes of the whole state: the same state always gives the same bytes.
    pub fn to_snapshot_bytes(&self) -> Result<Vec<u8>, RaftError> {
        self.snapshot_bytes()
    }

    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<State, RaftError> {
        State::load_snapshot(bytes)
    }
}
