//! Messages stored once and shared by reference count between outbound windows, queues and
//! the retained map. The count itself is derived (recounted on load from the holders), so
//! taking or dropping a reference never rewrites the stored message.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::MessageId;
use crate::message::Message;

use super::mirror::{Dirty, Key};

/// A message on its way to holders: stored (given an id) only when the first holder takes it,
/// so a publish nobody keeps costs no store entry.
pub(crate) struct Outgoing {
    pub message: Arc<Message>,
    pub id: Option<MessageId>,
}

impl Outgoing {
    pub fn new(message: Arc<Message>) -> Outgoing {
        Outgoing { message, id: None }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Store {
    pub next_id: u64,
    pub messages: BTreeMap<MessageId, Arc<Message>>,
    #[serde(skip)]
    refs: HashMap<MessageId, u32>,
    /// (expires_at_ms, id) of stored messages with an expiry, soonest first.
    #[serde(skip)]
    expiring: BTreeSet<(u64, MessageId)>,
}

impl Store {
    pub fn get(&self, id: MessageId) -> Option<&Arc<Message>> {
        self.messages.get(&id)
    }

    /// Takes one reference, storing the message first if it has no id yet.
    pub fn hold(&mut self, out: &mut Outgoing, dirty: &mut Dirty) -> MessageId {
        let id = match out.id {
            Some(id) => id,
            None => {
                let id = MessageId(self.next_id);
                self.next_id += 1;
                self.index(id, &out.message);
                self.messages.insert(id, Arc::clone(&out.message));
                dirty.mark(Key::Message(id));
                dirty.mark(Key::Globals);
                out.id = Some(id);
                id
            }
        };
        *self.refs.entry(id).or_insert(0) += 1;
        id
    }

    /// Drops one reference; the message is freed with its last one.
    pub fn release(&mut self, id: MessageId, dirty: &mut Dirty) {
        let Some(count) = self.refs.get_mut(&id) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        self.refs.remove(&id);
        if let Some(message) = self.messages.remove(&id) {
            if let Some(at) = message.expires_at_ms {
                self.expiring.remove(&(at, id));
            }
            dirty.mark(Key::Message(id));
        }
    }

    /// Removes and returns the ids of stored messages that have expired at `now_ms`.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<MessageId> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.expiring.first() {
            if at > now_ms {
                break;
            }
            self.expiring.pop_first();
            due.push(id);
        }
        due
    }

    fn index(&mut self, id: MessageId, message: &Message) {
        if let Some(at) = message.expires_at_ms {
            self.expiring.insert((at, id));
        }
    }

    /// Rebuilds the derived parts from the holders' references (on load).
    pub fn rebuild<I: IntoIterator<Item = MessageId>>(&mut self, holders: I) {
        self.refs.clear();
        self.expiring.clear();
        for id in holders {
            *self.refs.entry(id).or_insert(0) += 1;
        }
        for (id, message) in &self.messages {
            if let Some(at) = message.expires_at_ms {
                self.expiring.insert((at, *id));
            }
        }
    }

    /// The first referenced id that is not stored, or stored id nobody references: either
    /// means the bytes it was loaded from are inconsistent.
    pub fn inconsistency(&self) -> Option<MessageId> {
        let missing = self.refs.keys().find(|id| !self.messages.contains_key(id));
        let unused = self.messages.keys().find(|id| !self.refs.contains_key(id));
        // Sorted pick so the reported id does not depend on hash order.
        missing.into_iter().chain(unused).min().copied()
    }
}
