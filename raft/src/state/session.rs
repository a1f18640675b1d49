//! The persisted session record: small pieces, each its own mirror key, so that the frequent
//! changes (a delivery, an ack) rewrite a few bytes and never the whole session.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{Connect, QueuePolicy};
use crate::ids::{ClientId, ConnId, MessageId, PacketId};
use crate::message::{QoS, SubOptions, Will};

use super::mirror::{Dirty, Key};

/// What changes only on connect, disconnect and will events (mirror key `s/`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Core {
    /// The connection that owns the session; `Some` means online.
    pub conn: Option<ConnId>,
    pub protocol: u8,
    /// Seconds the session outlives its connection; `u32::MAX` is never, 0 ends it with it.
    pub expiry_secs: u32,
    /// When an offline session ends (`None` while online or when it never expires).
    pub expires_at_ms: Option<u64>,
    pub will: Option<Will>,
    /// When the will of an offline session fires (`None` while online).
    pub will_at_ms: Option<u64>,
    pub receive_maximum: u16,
    pub maximum_packet_size: Option<u32>,
    pub max_queued: u32,
    pub max_queued_bytes: u64,
    pub queue_policy: QueuePolicy,
}

impl Core {
    pub fn from_connect(c: &Connect) -> Core {
        Core {
            conn: Some(c.conn),
            protocol: c.protocol,
            expiry_secs: c.session_expiry,
            expires_at_ms: None,
            will: c.will.clone(),
            will_at_ms: None,
            receive_maximum: c.receive_maximum,
            maximum_packet_size: c.maximum_packet_size,
            max_queued: c.max_queued,
            max_queued_bytes: c.max_queued_bytes,
            queue_policy: c.queue_policy,
        }
    }
}

/// Counters that move with every delivery (mirror key `n/`), kept apart from `Core` so a
/// delivery rewrites only them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    /// The next outbound packet id to try (1..=65535).
    pub next_packet_id: u16,
    /// Orders outbound entries: each takes the next value when routed to the session.
    pub next_seq: u64,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            next_packet_id: 1,
            next_seq: 0,
        }
    }
}

/// One message routed to a session (mirror key `o/`, by `seq`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outbound {
    pub seq: u64,
    pub message: MessageId,
    pub qos: QoS,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    /// Topic + payload bytes of the message, counted against the queued-bytes limit.
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum InflightState {
    Sent,
    PubRecReceived,
}

/// A QoS 1/2 delivery sent and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Inflight {
    pub packet_id: PacketId,
    pub state: InflightState,
    pub out: Outbound,
}

/// Everything kept for one client id.
///
/// Invariant: every in-flight `seq` is below every queued `seq`, and both are in ascending
/// order: messages reach the window only through the queue's front (or straight to the window
/// when the queue is empty). The mirror stores outbound entries by `seq` and relies on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    pub core: Core,
    pub counters: Counters,
    /// Filter as subscribed (with any `$share/<group>/` prefix) -> options (mirror key `u/`).
    pub subscriptions: BTreeMap<String, SubOptions>,
    pub inflight: VecDeque<Inflight>,
    pub queue: VecDeque<Outbound>,
    /// Inbound QoS 2 packet ids whose PUBREL has not come yet (mirror key `i/`).
    pub inbound_qos2: BTreeSet<PacketId>,
    /// Sum of `bytes` over `queue`: derived, kept in step by `enqueue` / `dequeue` and
    /// recounted on load.
    #[serde(skip)]
    pub queued_bytes: u64,
}

impl Session {
    pub fn new(core: Core) -> Session {
        Session {
            core,
            counters: Counters::default(),
            subscriptions: BTreeMap::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            inbound_qos2: BTreeSet::new(),
            queued_bytes: 0,
        }
    }

    pub fn enqueue(&mut self, entry: Outbound) {
        self.queued_bytes += entry.bytes;
        self.queue.push_back(entry);
    }

    pub fn dequeue(&mut self) -> Option<Outbound> {
        let entry = self.queue.pop_front()?;
        self.queued_bytes = self.queued_bytes.saturating_sub(entry.bytes);
        Some(entry)
    }

    pub fn recount_queued_bytes(&mut self) {
        self.queued_bytes = self.queue.iter().map(|q| q.bytes).sum();
    }

    /// Whether `conn` owns the session now.
    pub fn owned_by(&self, conn: ConnId) -> bool {
        self.core.conn == Some(conn)
    }

    /// Marks every mirror key of this session, so that after a removal all of them are deleted.
    pub fn mark_all(&self, client: &ClientId, dirty: &mut Dirty) {
        dirty.mark(Key::Session(client.clone()));
        dirty.mark(Key::Counters(client.clone()));
        for filter in self.subscriptions.keys() {
            dirty.mark(Key::Sub(client.clone(), filter.clone()));
        }
        for e in &self.inflight {
            dirty.mark(Key::Out(client.clone(), e.out.seq));
        }
        for q in &self.queue {
            dirty.mark(Key::Out(client.clone(), q.seq));
        }
        for pid in &self.inbound_qos2 {
            dirty.mark(Key::Inbound(client.clone(), *pid));
        }
    }

    /// Every message this session holds a reference to.
    pub fn held_messages(&self) -> impl Iterator<Item = MessageId> + '_ {
        let inflight = self.inflight.iter().map(|e| e.out.message);
        inflight.chain(self.queue.iter().map(|q| q.message))
    }

    /// The outbound entry with this `seq`, in flight or queued.
    pub fn outbound(&self, seq: u64) -> Option<OutboundRef<'_>> {
        if let Some(e) = self.inflight.iter().find(|e| e.out.seq == seq) {
            return Some(OutboundRef::Inflight(e));
        }
        let i = self.queue.binary_search_by_key(&seq, |q| q.seq).ok()?;
        self.queue.get(i).map(OutboundRef::Queued)
    }
}

/// One outbound entry as the mirror stores it; `OutboundEntry` is the same, owned.
#[derive(Serialize)]
pub(crate) enum OutboundRef<'a> {
    Inflight(&'a Inflight),
    Queued(&'a Outbound),
}

#[derive(Deserialize)]
pub(crate) enum OutboundEntry {
    Inflight(Inflight),
    Queued(Outbound),
}
