//! SUBSCRIBE and UNSUBSCRIBE, with retained messages sent on subscribe.

use crate::command::SubscribeRequest;
use crate::effect::Effect;
use crate::ids::{ClientId, ConnId};
use crate::message::SubOptions;
use crate::response::{Reply, SubResult};

use std::collections::BTreeMap;

use super::mirror::{Dirty, Key};
use super::outbound::Grant;
use super::store::Outgoing;
use super::topic::parse_filter;
use super::trie::{Removal, SubTrie};
use super::{Ctx, State};

/// Takes a subscription out of the index. A shared group's round-robin turn goes with its
/// last member, so counters of groups that come and go do not pile up.
pub(super) fn unindex(
    trie: &mut SubTrie,
    share_counters: &mut BTreeMap<String, u64>,
    dirty: &mut Dirty,
    client: &ClientId,
    full: &str,
) {
    let Some(filter) = parse_filter(full) else {
        return;
    };
    if trie.remove(client, full, &filter) == Removal::LastOfGroup
        && share_counters.remove(full).is_some()
    {
        dirty.mark(Key::ShareCounter(full.to_owned()));
    }
}

/// The largest 5.0 subscription identifier (a variable byte integer, 3.3.2.3.8).
const MAX_SUBSCRIPTION_ID: u32 = 268_435_455;

impl State {
    pub(super) fn subscribe(
        &mut self,
        client: &ClientId,
        conn: ConnId,
        requests: &[SubscribeRequest],
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) -> Reply {
        if !self.sessions.get(client).is_some_and(|s| s.owned_by(conn)) {
            return Reply::NotOwner;
        }
        let results = requests
            .iter()
            .map(|r| self.subscribe_one(client, r, now_ms, effects))
            .collect();
        Reply::Subscribed(results)
    }

    fn subscribe_one(
        &mut self,
        client: &ClientId,
        r: &SubscribeRequest,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) -> SubResult {
        let Some(filter) = parse_filter(&r.filter) else {
            return SubResult::Invalid;
        };
        let o = &r.options;
        let valid = o.retain_handling <= 2
            && o.subscription_id
                .is_none_or(|id| (1..=MAX_SUBSCRIPTION_ID).contains(&id))
            && !(filter.share.is_some() && o.no_local);
        let Some(s) = self.sessions.get_mut(client).filter(|_| valid) else {
            return SubResult::Invalid;
        };
        let existed = s
            .subscriptions
            .insert(r.filter.clone(), o.clone())
            .is_some();
        self.trie.insert(client, &r.filter, &filter, o);
        self.dirty.mark(Key::Sub(client.clone(), r.filter.clone()));
        // Shared subscriptions never get retained messages (MQTT 4.8.2).
        let send_retained = filter.share.is_none()
            && match o.retain_handling {
                0 => true,
                1 => !existed,
                _ => false,
            };
        if send_retained {
            self.send_retained(client, filter.filter, o, now_ms, effects);
        }
        SubResult::Granted(o.qos)
    }

    /// Retained messages for a new subscription: RETAIN set, QoS capped by the granted one,
    /// through the window and queue like any delivery.
    fn send_retained(
        &mut self,
        client: &ClientId,
        filter: &str,
        o: &SubOptions,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let found = self.retained_matching(filter, now_ms);
        let Some(s) = self.sessions.get_mut(client) else {
            return;
        };
        let mut cx = Ctx {
            now_ms,
            store: &mut self.store,
            totals: &mut self.totals,
            dirty: &mut self.dirty,
            effects,
        };
        for (id, message) in found {
            let grant = Grant {
                qos: message.qos.min(o.qos),
                retain: true,
                subscription_ids: o.subscription_id.into_iter().collect(),
            };
            let mut out = Outgoing {
                message,
                id: Some(id),
            };
            s.offer(client, &mut out, grant, &mut cx);
        }
    }

    pub(super) fn unsubscribe(
        &mut self,
        client: &ClientId,
        conn: ConnId,
        filters: &[String],
    ) -> Reply {
        let Some(s) = self.sessions.get_mut(client).filter(|s| s.owned_by(conn)) else {
            return Reply::NotOwner;
        };
        let existed = filters
            .iter()
            .map(|full| {
                let existed = s.subscriptions.remove(full).is_some();
                if existed {
                    unindex(
                        &mut self.trie,
                        &mut self.share_counters,
                        &mut self.dirty,
                        client,
                        full,
                    );
                    self.dirty.mark(Key::Sub(client.clone(), full.clone()));
                }
                existed
            })
            .collect();
        Reply::Unsubscribed(existed)
    }
}
