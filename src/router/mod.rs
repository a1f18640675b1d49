//! Live connections by `ConnId`, and the bridge from the state machine's effects (and the
//! leader's in-memory QoS 0 routing) to them.
//!
//! The registry lock is a short `parking_lot` lock never held across an `.await`: it is
//! taken per effect batch to look up senders, and sending on an unbounded channel does not
//! block. QoS 1/2 traffic per connection is bounded by the session's in-flight window in
//! the state machine; QoS 0 is bounded here by `max_pending_qos0`, beyond which new QoS 0
//! messages for that connection are dropped and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use raftmq_raft::{ClientId, CloseReason, ConnId, Delivery, Effect, EffectSink, PacketId, QoS};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// What a connection task is asked to write.
#[derive(Debug)]
pub enum Outbound {
    Deliver(Delivery),
    PubRel(PacketId),
    /// Close the connection (5.0: DISCONNECT with this reason code first).
    Close(u8),
}

struct Handle {
    tx: mpsc::UnboundedSender<Outbound>,
    pending_qos0: Arc<AtomicU64>,
}

/// A connection's end of the router.
pub struct Mailbox {
    pub rx: mpsc::UnboundedReceiver<Outbound>,
    /// QoS 0 messages queued for this connection and not yet written.
    pub pending_qos0: Arc<AtomicU64>,
}

pub struct Router {
    conns: RwLock<HashMap<ConnId, Handle>>,
    metrics: Arc<Metrics>,
    max_pending_qos0: u64,
}

impl Router {
    pub fn new(metrics: Arc<Metrics>, max_pending_qos0: u32) -> Router {
        Router {
            conns: RwLock::new(HashMap::new()),
            metrics,
            max_pending_qos0: u64::from(max_pending_qos0),
        }
    }

    /// Register a connection before its `Connect` is proposed, so effects of that commit
    /// (redeliveries) find it. The connection reads its mailbox only after CONNACK.
    pub fn register(&self, conn: ConnId) -> Mailbox {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending_qos0 = Arc::new(AtomicU64::new(0));
        self.conns.write().insert(
            conn,
            Handle {
                tx,
                pending_qos0: pending_qos0.clone(),
            },
        );
        Mailbox { rx, pending_qos0 }
    }

    pub fn unregister(&self, conn: ConnId) {
        self.conns.write().remove(&conn);
    }

    pub fn connection_count(&self) -> usize {
        self.conns.read().len()
    }

    /// Deliver the leader's in-memory QoS 0 routing result.
    pub fn deliver_transient(&self, deliveries: Vec<(ClientId, ConnId, Delivery)>) {
        if deliveries.is_empty() {
            return;
        }
        let conns = self.conns.read();
        for (_, conn, delivery) in deliveries {
            self.send_delivery(&conns, conn, delivery);
        }
    }

    /// Ask every connection to close (the node stopped serving, or is shutting down).
    pub fn close_all(&self, reason: u8) {
        for h in self.conns.read().values() {
            let _ = h.tx.send(Outbound::Close(reason));
        }
    }

    fn send_delivery(&self, conns: &HashMap<ConnId, Handle>, conn: ConnId, delivery: Delivery) {
        let Some(h) = conns.get(&conn) else {
            return;
        };
        if delivery.qos == QoS::AtMostOnce {
            if h.pending_qos0.load(Ordering::Relaxed) >= self.max_pending_qos0 {
                Metrics::add(&self.metrics.publish_dropped, 1);
                return;
            }
            h.pending_qos0.fetch_add(1, Ordering::Relaxed);
        }
        let _ = h.tx.send(Outbound::Deliver(delivery));
    }
}

impl EffectSink for Router {
    fn emit(&self, effects: Vec<Effect>) {
        if effects.is_empty() {
            return;
        }
        let conns = self.conns.read();
        for effect in effects {
            match effect {
                Effect::Deliver { conn, delivery, .. } => {
                    self.send_delivery(&conns, conn, delivery)
                }
                Effect::PubRel {
                    conn, packet_id, ..
                } => {
                    if let Some(h) = conns.get(&conn) {
                        let _ = h.tx.send(Outbound::PubRel(packet_id));
                    }
                }
                Effect::Close { conn, reason, .. } => {
                    if let Some(h) = conns.get(&conn) {
                        let code = match reason {
                            CloseReason::SessionTakenOver => {
                                crate::codec::reason::SESSION_TAKEN_OVER
                            }
                        };
                        let _ = h.tx.send(Outbound::Close(code));
                    }
                }
            }
        }
    }
}
