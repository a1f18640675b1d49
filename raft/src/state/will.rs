//! Wills and the timers of offline sessions (a delayed will firing, a session ending), and
//! `Tick`, which runs them. The timers are derived from the sessions' cores and rebuilt on
//! load; each `(deadline, client)` entry mirrors one `Core` field, kept in step here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::effect::Effect;
use crate::ids::ClientId;
use crate::message::{Message, Will};

use super::mirror::Key;
use super::session::{Core, Session};
use super::topic::valid_topic_name;
use super::State;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    wills: BTreeSet<(u64, ClientId)>,
    expiries: BTreeSet<(u64, ClientId)>,
}

fn set(
    timers: &mut BTreeSet<(u64, ClientId)>,
    client: &ClientId,
    field: &mut Option<u64>,
    at: Option<u64>,
) {
    if *field == at {
        return;
    }
    if let Some(old) = field.take() {
        timers.remove(&(old, client.clone()));
    }
    if let Some(at) = at {
        timers.insert((at, client.clone()));
    }
    *field = at;
}

fn pop_due(timers: &mut BTreeSet<(u64, ClientId)>, now_ms: u64) -> Option<ClientId> {
    match timers.first() {
        Some((at, _)) if *at <= now_ms => timers.pop_first().map(|(_, client)| client),
        _ => None,
    }
}

impl Timers {
    pub fn set_will_at(&mut self, client: &ClientId, core: &mut Core, at: Option<u64>) {
        set(&mut self.wills, client, &mut core.will_at_ms, at);
    }

    pub fn set_expires_at(&mut self, client: &ClientId, core: &mut Core, at: Option<u64>) {
        set(&mut self.expiries, client, &mut core.expires_at_ms, at);
    }

    /// Drops both timers of a session being removed.
    pub fn forget(&mut self, client: &ClientId, core: &Core) {
        if let Some(at) = core.will_at_ms {
            self.wills.remove(&(at, client.clone()));
        }
        if let Some(at) = core.expires_at_ms {
            self.expiries.remove(&(at, client.clone()));
        }
    }

    pub fn rebuild(&mut self, sessions: &BTreeMap<ClientId, Session>) {
        *self = Timers::default();
        for (client, s) in sessions {
            if let Some(at) = s.core.will_at_ms {
                self.wills.insert((at, client.clone()));
            }
            if let Some(at) = s.core.expires_at_ms {
                self.expiries.insert((at, client.clone()));
            }
        }
    }
}

/// `secs` after `now_ms`, saturating (`u32::MAX` seconds is far beyond any real deadline).
pub(crate) fn after(now_ms: u64, secs: u32) -> u64 {
    now_ms.saturating_add(u64::from(secs) * 1000)
}

/// The message a will publishes at `now_ms`: from its client, stamped now. A stored will
/// keeps its 5.0 message expiry interval relative, in ms, in `expires_at_ms` (the broker
/// cannot know when it will fire); it becomes absolute here, counted from the firing.
fn will_message(client: &ClientId, will: Will, now_ms: u64) -> Message {
    let mut m = will.message;
    m.expires_at_ms = m
        .expires_at_ms
        .map(|interval| now_ms.saturating_add(interval));
    m.received_ms = now_ms;
    m.publisher = Some(client.clone());
    m
}

impl State {
    /// Publishes a will now, with the routing and retained rules of any publish.
    pub(super) fn fire_will(
        &mut self,
        client: &ClientId,
        will: Will,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let message = will_message(client, will, now_ms);
        if valid_topic_name(&message.topic) {
            self.publish_message(Arc::new(message), now_ms, effects);
        }
    }

    /// Takes a session's will (pending or not) and cancels its timer.
    pub(super) fn take_will(&mut self, client: &ClientId) -> Option<Will> {
        let s = self.sessions.get_mut(client)?;
        self.timers.set_will_at(client, &mut s.core, None);
        let will = s.core.will.take();
        self.dirty.mark(Key::Session(client.clone()));
        will
    }

    /// Fires due delayed wills, ends sessions whose expiry passed (their pending wills fire:
    /// the session ended before the delay), then drops expired messages.
    pub(super) fn tick(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        while let Some(client) = pop_due(&mut self.timers.wills, now_ms) {
            let Some(s) = self.sessions.get_mut(&client) else {
                continue;
            };
            s.core.will_at_ms = None;
            let will = s.core.will.take();
            self.dirty.mark(Key::Session(client.clone()));
            if let Some(will) = will {
                self.fire_will(&client, will, now_ms, effects);
            }
        }
        while let Some(client) = pop_due(&mut self.timers.expiries, now_ms) {
            if let Some(s) = self.sessions.get_mut(&client) {
                s.core.expires_at_ms = None;
            }
            self.end_session(&client, now_ms, effects);
        }
        self.expire_messages(now_ms);
        self.expire_bans(now_ms);
    }
}
