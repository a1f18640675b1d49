//! Connections coming and going: CONNECT (takeover, clean start, resume), the end of a
//! connection (DISCONNECT or not), a new leader's reset of every connection, and the end of a
//! session.

use crate::command::Connect;
use crate::effect::{CloseReason, Effect};
use crate::ids::{ClientId, ConnId};
use crate::message::Will;
use crate::response::Reply;

use super::mirror::Key;
use super::session::{Core, Session};
use super::subscribe::unindex;
use super::will::after;
use super::{Ctx, State};

impl State {
    pub(super) fn connect(&mut self, c: &Connect, now_ms: u64, effects: &mut Vec<Effect>) -> Reply {
        let client = &c.client;
        let mut session_present = false;
        if let Some(old) = self.sessions.get_mut(client) {
            let old_conn = old.core.conn;
            // The same CONNECT applied again (same connection) takes nothing over.
            let taken_over = old_conn.filter(|conn| *conn != c.conn);
            if let Some(conn) = taken_over {
                effects.push(Effect::Close {
                    client: client.clone(),
                    conn,
                    reason: CloseReason::SessionTakenOver,
                });
            }
            // The session ends here if the client asks for a clean start, if it was offline
            // past its expiry (no Tick ran since), or if it lived only as long as the
            // connection being taken over.
            let lapsed =
                old_conn.is_none() && old.core.expires_at_ms.is_some_and(|at| now_ms >= at);
            let ends =
                c.clean_start || lapsed || (taken_over.is_some() && old.core.expiry_secs == 0);
            // A taken-over connection ended without DISCONNECT: its will fires now unless it
            // has a delay and the session goes on, in which case this connection cancels it
            // (MQTT 3.1.3.2.2). A pending will of an offline session fires only if the
            // session ends; a resumed session cancels it.
            let undelayed = old.core.will.as_ref().is_some_and(|w| w.delay_secs == 0);
            let fires = ends || (taken_over.is_some() && undelayed);
            old.core.conn = None;
            let will = self.take_will(client);
            if ends {
                self.remove_session(client);
            } else {
                session_present = true;
            }
            if let (true, Some(will)) = (fires, will) {
                self.fire_will(client, will, now_ms, effects);
            }
        }
        let core = Core::from_connect(c);
        let session = match self.sessions.get_mut(client) {
            Some(s) => {
                self.timers.set_expires_at(client, &mut s.core, None);
                s.core = core;
                s
            }
            None => {
                self.dirty.mark(Key::Counters(client.clone()));
                self.sessions
                    .entry(client.clone())
                    .or_insert(Session::new(core))
            }
        };
        self.dirty.mark(Key::Session(client.clone()));
        let mut cx = Ctx {
            now_ms,
            store: &mut self.store,
            totals: &mut self.totals,
            dirty: &mut self.dirty,
            effects,
        };
        session.resume(client, &mut cx);
        Reply::Connected { session_present }
    }

    pub(super) fn disconnect(
        &mut self,
        client: &ClientId,
        conn: ConnId,
        graceful: bool,
        session_expiry: Option<u32>,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) -> Reply {
        let Some(s) = self.sessions.get_mut(client).filter(|s| s.owned_by(conn)) else {
            return Reply::NotOwner;
        };
        if let Some(expiry) = session_expiry {
            s.core.expiry_secs = expiry;
        }
        s.core.conn = None;
        // A normal DISCONNECT discards the will (MQTT 3.1.2.5).
        let will = s.core.will.take().filter(|_| !graceful);
        self.dirty.mark(Key::Session(client.clone()));
        self.went_offline(client, will, now_ms, effects);
        Reply::Disconnected
    }

    /// `client`'s session has just lost its connection: schedule or fire its will and start
    /// its expiry (a session with expiry 0 ends now).
    fn went_offline(
        &mut self,
        client: &ClientId,
        will: Option<Will>,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(s) = self.sessions.get_mut(client) else {
            return;
        };
        let expiry = s.core.expiry_secs;
        let mut fire_now = None;
        if let Some(will) = will {
            // The will waits its delay, but never past the end of the session (3.1.3.2.2).
            let delay = will.delay_secs.min(expiry);
            if delay == 0 {
                fire_now = Some(will);
            } else {
                s.core.will = Some(will);
                self.timers
                    .set_will_at(client, &mut s.core, Some(after(now_ms, delay)));
            }
        }
        match expiry {
            0 => self.remove_session(client),
            u32::MAX => {}
            secs => {
                self.timers
                    .set_expires_at(client, &mut s.core, Some(after(now_ms, secs)));
            }
        }
        if let Some(will) = fire_now {
            self.fire_will(client, will, now_ms, effects);
        }
    }

    /// Every session still marked online was online on an old leader: its connection is
    /// gone, without DISCONNECT.
    pub(super) fn reset_connections(&mut self, now_ms: u64, effects: &mut Vec<Effect>) -> Reply {
        let online: Vec<(ClientId, ConnId)> = self
            .sessions
            .iter()
            .filter_map(|(client, s)| s.core.conn.map(|conn| (client.clone(), conn)))
            .collect();
        for (client, conn) in &online {
            self.disconnect(client, *conn, false, None, now_ms, effects);
        }
        Reply::ConnectionsReset {
            count: u32::try_from(online.len()).unwrap_or(u32::MAX),
        }
    }

    /// The session ends (expired): its pending will fires, after it is gone, so the will
    /// is never queued for the session it came from.
    pub(super) fn end_session(
        &mut self,
        client: &ClientId,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let will = self.take_will(client);
        self.remove_session(client);
        if let Some(will) = will {
            self.fire_will(client, will, now_ms, effects);
        }
    }

    /// Removes a session and everything it holds; its mirror keys become deletes.
    pub(super) fn remove_session(&mut self, client: &ClientId) {
        let Some(s) = self.sessions.remove(client) else {
            return;
        };
        s.mark_all(client, &mut self.dirty);
        for full in s.subscriptions.keys() {
            unindex(
                &mut self.trie,
                &mut self.share_counters,
                &mut self.dirty,
                client,
                full,
            );
        }
        for id in s.held_messages() {
            self.store.release(id, &mut self.dirty);
        }
        self.timers.forget(client, &s.core);
    }
}
