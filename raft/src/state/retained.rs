//! Retained messages (one per topic, held by reference in the store) and message expiry.

use std::collections::{BTreeSet, Bound};
use std::sync::Arc;

use crate::ids::MessageId;
use crate::message::Message;

use super::mirror::Key;
use super::store::Outgoing;
use super::topic::{literal_prefix, matches};
use super::State;

impl State {
    /// A retained PUBLISH: a non-empty payload replaces the topic's retained message, an
    /// empty one deletes it (MQTT 3.3.1.3).
    pub(super) fn set_retained(&mut self, out: &mut Outgoing) {
        let topic = out.message.topic.clone();
        let set = !out.message.payload.is_empty();
        let old = if set {
            let id = self.store.hold(out, &mut self.dirty);
            self.retained.insert(topic.clone(), id)
        } else {
            self.retained.remove(&topic)
        };
        if let Some(old) = old {
            self.store.release(old, &mut self.dirty);
        }
        if set || old.is_some() {
            self.dirty.mark(Key::Retained(topic));
        }
    }

    /// The unexpired retained messages a plain filter matches, in topic order. Only the
    /// topics that start with the filter's literal prefix are looked at.
    pub(super) fn retained_matching(
        &self,
        filter: &str,
        now_ms: u64,
    ) -> Vec<(MessageId, Arc<Message>)> {
        let ids: Vec<MessageId> = match literal_prefix(filter) {
            None => self.retained.get(filter).copied().into_iter().collect(),
            Some(prefix) => self
                .retained
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(topic, _)| topic.starts_with(prefix))
                .filter(|(topic, _)| matches(filter, topic))
                .map(|(_, id)| *id)
                .collect(),
        };
        ids.into_iter()
            .filter_map(|id| {
                let message = self.store.get(id)?;
                (!message.expired(now_ms)).then(|| (id, Arc::clone(message)))
            })
            .collect()
    }

    /// Drops messages whose expiry passed from the retained map and from every queue. In
    /// flight ones stay: the client may already have them, and the broker sends the
    /// remaining (zero) expiry interval on redelivery.
    pub(super) fn expire_messages(&mut self, now_ms: u64) {
        let due = self.store.take_expired(now_ms);
        if due.is_empty() {
            return;
        }
        let before = self.totals.expired_messages;
        for &id in &due {
            let Some(topic) = self.store.get(id).map(|m| m.topic.clone()) else {
                continue;
            };
            if self.retained.get(&topic) == Some(&id) {
                self.retained.remove(&topic);
                self.store.release(id, &mut self.dirty);
                self.totals.expired_messages += 1;
                self.dirty.mark(Key::Retained(topic));
            }
        }
        let due: BTreeSet<MessageId> = due.into_iter().collect();
        for (client, s) in &mut self.sessions {
            if !s.queue.iter().any(|q| due.contains(&q.message)) {
                continue;
            }
            s.queue.retain(|q| {
                if !due.contains(&q.message) {
                    return true;
                }
                self.dirty.mark(Key::Out(client.clone(), q.seq));
                self.store.release(q.message, &mut self.dirty);
                self.totals.expired_messages += 1;
                false
            });
            s.recount_queued_bytes();
        }
        if self.totals.expired_messages != before {
            self.dirty.mark(Key::Globals);
        }
    }
}
