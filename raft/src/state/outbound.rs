//! A session's outbound side: the in-flight window (at most `receive_maximum` unacknowledged
//! QoS 1/2 deliveries), the queue behind it, packet ids, acks and redelivery on reconnect.

use std::sync::Arc;

use crate::command::{AckKind, QueuePolicy};
use crate::effect::{Delivery, Effect};
use crate::ids::{ClientId, ConnId, PacketId};
use crate::message::{Message, QoS, TopicAlias};

use super::mirror::Key;
use super::session::{Inflight, InflightState, Outbound, Session};
use super::store::Outgoing;
use super::Ctx;

/// How one message goes to one session.
pub(crate) struct Grant {
    pub qos: QoS,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
}

impl Session {
    fn window(&self) -> usize {
        // 0 is a protocol error the door refuses; never let it stall a session for good.
        usize::from(self.core.receive_maximum.max(1))
    }

    fn next_seq(&mut self, client: &ClientId, cx: &mut Ctx<'_>) -> u64 {
        let seq = self.counters.next_seq;
        self.counters.next_seq += 1;
        cx.dirty.mark(Key::Counters(client.clone()));
        seq
    }

    /// The next packet id not in flight (1..=65535, wrapping). The window is never larger
    /// than 65535 and is not full when this is called, so a free id exists.
    fn next_packet_id(&mut self, client: &ClientId, cx: &mut Ctx<'_>) -> PacketId {
        let mut id = self.counters.next_packet_id;
        for _ in 0..=u16::MAX {
            if id != 0 && !self.inflight.iter().any(|e| e.packet_id.0 == id) {
                break;
            }
            id = id.wrapping_add(1);
        }
        self.counters.next_packet_id = id.wrapping_add(1).max(1);
        cx.dirty.mark(Key::Counters(client.clone()));
        PacketId(id)
    }

    /// Hands one message to this session: QoS 0 goes out now or nowhere; QoS 1/2 goes into
    /// the window (and out) if there is room and nothing waits before it, else into the queue,
    /// else it is dropped and counted.
    pub fn offer(&mut self, client: &ClientId, out: &mut Outgoing, grant: Grant, cx: &mut Ctx<'_>) {
        if grant.qos == QoS::AtMostOnce {
            // Offline QoS 0 is not kept (Mosquitto's default, queue_qos0_messages false).
            let Some(conn) = self.core.conn else {
                return;
            };
            if !self.too_large(&out.message, grant.qos, &grant.subscription_ids, cx) {
                cx.effects.push(Effect::Deliver {
                    client: client.clone(),
                    conn,
                    delivery: Delivery {
                        packet_id: None,
                        qos: QoS::AtMostOnce,
                        dup: false,
                        retain: grant.retain,
                        message: Arc::clone(&out.message),
                        subscription_ids: grant.subscription_ids,
                    },
                });
            }
            return;
        }
        if self.too_large(&out.message, grant.qos, &grant.subscription_ids, cx) {
            return;
        }
        let send_now = self.core.conn.is_some()
            && self.queue.is_empty()
            && self.inflight.len() < self.window();
        let bytes = (out.message.topic.len() + out.message.payload.len()) as u64;
        let full = !send_now && self.queue_full(bytes);
        if full && !self.may_drop_oldest(bytes) {
            cx.totals.dropped_queue_full += 1;
            cx.dirty.mark(Key::Globals);
            return;
        }
        // Held before older entries are dropped: the session may queue this very message
        // already (overlapping subscriptions), and dropping that entry must not free it.
        let entry = Outbound {
            seq: self.next_seq(client, cx),
            message: cx.store.hold(out, cx.dirty),
            qos: grant.qos,
            retain: grant.retain,
            subscription_ids: grant.subscription_ids,
            bytes,
        };
        cx.dirty.mark(Key::Out(client.clone(), entry.seq));
        if send_now {
            self.send(client, entry, Arc::clone(&out.message), cx);
            return;
        }
        if full {
            self.drop_oldest(client, bytes, cx);
        }
        self.enqueue(entry);
    }

    fn queue_full(&self, bytes: u64) -> bool {
        self.queue.len() as u64 >= u64::from(self.core.max_queued)
            || self.queued_bytes + bytes > self.core.max_queued_bytes
    }

    /// Whether dropping older queued messages can make room for one of `bytes`: only under
    /// `DropOldest`, and only for a message that fits an empty queue.
    fn may_drop_oldest(&self, bytes: u64) -> bool {
        self.core.queue_policy == QueuePolicy::DropOldest
            && self.core.max_queued > 0
            && bytes <= self.core.max_queued_bytes
    }

    /// Drops the oldest queued messages (each counted) until one of `bytes` fits.
    fn drop_oldest(&mut self, client: &ClientId, bytes: u64, cx: &mut Ctx<'_>) {
        while self.queue_full(bytes) {
            let Some(old) = self.dequeue() else {
                return;
            };
            cx.dirty.mark(Key::Out(client.clone(), old.seq));
            cx.store.release(old.message, cx.dirty);
            cx.totals.dropped_queue_full += 1;
            cx.dirty.mark(Key::Globals);
        }
    }

    /// Whether the PUBLISH carrying `message` exceeds the client's maximum packet size;
    /// counts it if so. Measured without a topic alias: the connection uses one only where
    /// the packet still fits (`Message::publish_size`).
    fn too_large(
        &self,
        message: &Message,
        qos: QoS,
        subscription_ids: &[u32],
        cx: &mut Ctx<'_>,
    ) -> bool {
        let Some(max) = self.core.maximum_packet_size else {
            return false;
        };
        let large = message.publish_size(qos, subscription_ids, TopicAlias::None) > u64::from(max);
        if large {
            cx.totals.dropped_too_large += 1;
            cx.dirty.mark(Key::Globals);
        }
        large
    }

    /// Puts `entry` in flight under a fresh packet id and emits its PUBLISH.
    fn send(&mut self, client: &ClientId, out: Outbound, message: Arc<Message>, cx: &mut Ctx<'_>) {
        let packet_id = self.next_packet_id(client, cx);
        if let Some(conn) = self.core.conn {
            cx.effects.push(Effect::Deliver {
                client: client.clone(),
                conn,
                delivery: Delivery {
                    packet_id: Some(packet_id),
                    qos: out.qos,
                    dup: false,
                    retain: out.retain,
                    message,
                    subscription_ids: out.subscription_ids.clone(),
                },
            });
        }
        self.inflight.push_back(Inflight {
            packet_id,
            state: InflightState::Sent,
            out,
        });
    }

    /// Moves queued messages into the window while it has room and the session is online,
    /// dropping those that expired while they waited, and those too large for the limit
    /// the client connected with this time.
    pub fn fill_window(&mut self, client: &ClientId, cx: &mut Ctx<'_>) {
        while self.core.conn.is_some() && self.inflight.len() < self.window() {
            let Some(entry) = self.dequeue() else {
                return;
            };
            cx.dirty.mark(Key::Out(client.clone(), entry.seq));
            let message = cx.store.get(entry.message).map(Arc::clone);
            let sendable = match &message {
                Some(m) if m.expired(cx.now_ms) => {
                    cx.totals.expired_messages += 1;
                    cx.dirty.mark(Key::Globals);
                    false
                }
                Some(m) => !self.too_large(m, entry.qos, &entry.subscription_ids, cx),
                None => false,
            };
            match message {
                Some(message) if sendable => self.send(client, entry, message, cx),
                _ => cx.store.release(entry.message, cx.dirty),
            }
        }
    }

    /// After a (re)connect: resend what is in flight, in order, with the same packet ids
    /// (PUBLISH with DUP, or PUBREL once PUBREC was received), as far as the window goes
    /// (MQTT-3.3.4-7: never more than the receive maximum outstanding), then fill the window. A
    /// PUBLISH too large for the maximum packet size this connection set is dropped as if
    /// it had been delivered (MQTT-3.1.2-25), so it does not hold a place in the window.
    pub fn resume(&mut self, client: &ClientId, cx: &mut Ctx<'_>) {
        let Some(conn) = self.core.conn else {
            return;
        };
        let mut kept = std::collections::VecDeque::with_capacity(self.inflight.len());
        while let Some(e) = self.inflight.pop_front() {
            let message = cx.store.get(e.out.message).map(Arc::clone);
            let large = e.state == InflightState::Sent
                && message
                    .is_some_and(|m| self.too_large(&m, e.out.qos, &e.out.subscription_ids, cx));
            if large {
                cx.dirty.mark(Key::Out(client.clone(), e.out.seq));
                cx.store.release(e.out.message, cx.dirty);
            } else {
                kept.push_back(e);
            }
        }
        self.inflight = kept;
        // Only the first `window` go out again: the client may have come back with a smaller
        // receive maximum. The others keep their packet ids and wait, unsent, for room.
        for i in 0..self.inflight.len().min(self.window()) {
            self.resend(client, conn, i, cx);
        }
        self.fill_window(client, cx);
    }

    /// One subscriber acknowledgement. Ids that name no entry in the matching state are
    /// ignored (a late or repeated ack); a repeated PUBREC gets its PUBREL again.
    pub fn ack(&mut self, client: &ClientId, packet_id: PacketId, kind: AckKind, cx: &mut Ctx<'_>) {
        let window = self.window();
        let found = self
            .inflight
            .iter_mut()
            .enumerate()
            .find(|(_, e)| e.packet_id == packet_id);
        let Some((i, e)) = found else {
            return;
        };
        let done = match (kind, e.out.qos, e.state) {
            (AckKind::PubAck, QoS::AtLeastOnce, _) => true,
            (AckKind::PubComp, QoS::ExactlyOnce, InflightState::PubRecReceived) => true,
            (AckKind::PubRec, QoS::ExactlyOnce, state) => {
                if state == InflightState::Sent {
                    e.state = InflightState::PubRecReceived;
                    cx.dirty.mark(Key::Out(client.clone(), e.out.seq));
                }
                // Past the window the PUBREL waits its turn, like a PUBLISH would.
                if let Some(conn) = self.core.conn.filter(|_| i < window) {
                    cx.effects.push(Effect::PubRel {
                        client: client.clone(),
                        conn,
                        packet_id,
                    });
                }
                false
            }
            _ => false,
        };
        if done {
            if let Some(e) = self.inflight.remove(i) {
                cx.dirty.mark(Key::Out(client.clone(), e.out.seq));
                cx.store.release(e.out.message, cx.dirty);
            }
            // A slot inside the window freed: the first entry waiting past it goes out.
            if let Some(conn) = self.core.conn.filter(|_| i < window) {
                if self.inflight.len() >= window {
                    self.resend(client, conn, window - 1, cx);
                }
            }
            self.fill_window(client, cx);
        }
    }

    /// Sends in-flight entry `i` again on `conn`: its PUBLISH with DUP, or its PUBREL once
    /// the PUBREC came.
    fn resend(&self, client: &ClientId, conn: ConnId, i: usize, cx: &mut Ctx<'_>) {
        let Some(e) = self.inflight.get(i) else {
            return;
        };
        let effect = match e.state {
            InflightState::Sent => {
                let Some(message) = cx.store.get(e.out.message) else {
                    return;
                };
                Effect::Deliver {
                    client: client.clone(),
                    conn,
                    delivery: Delivery {
                        packet_id: Some(e.packet_id),
                        qos: e.out.qos,
                        dup: true,
                        retain: e.out.retain,
                        message: Arc::clone(message),
                        subscription_ids: e.out.subscription_ids.clone(),
                    },
                }
            }
            InflightState::PubRecReceived => Effect::PubRel {
                client: client.clone(),
                conn,
                packet_id: e.packet_id,
            },
        };
        cx.effects.push(effect);
    }
}
