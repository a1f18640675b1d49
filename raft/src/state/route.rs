//! Routing a message to subscriptions: the PUBLISH op, the replicated path (QoS 1/2 and
//! retained, through windows and queues) and the leader's in-memory QoS 0 path.
//!
//! Rules (as Mosquitto applies them, for 3.1.1 and 5.0 alike): overlapping subscriptions of
//! one session give one delivery at the highest granted QoS carrying every matching
//! subscription identifier; no-local drops a client's own messages; each matching shared
//! group gives one more delivery, to one member, round robin, preferring online members.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::effect::{Delivery, Effect};
use crate::ids::{ClientId, ConnId, PacketId};
use crate::message::{Message, QoS, SubOptions, TopicAlias};
use crate::response::Reply;

use super::mirror::Key;
use super::outbound::Grant;
use super::session::Session;
use super::store::Outgoing;
use super::topic::valid_topic_name;
use super::trie::{Group, SubTrie};
use super::{Ctx, State};

/// What a session's overlapping subscriptions add up to.
struct Overlap {
    qos: QoS,
    retain_as_published: bool,
    subscription_ids: Vec<u32>,
}

impl Overlap {
    fn grant(self, message: &Message) -> Grant {
        Grant {
            qos: message.qos.min(self.qos),
            retain: message.retain && self.retain_as_published,
            subscription_ids: self.subscription_ids,
        }
    }
}

fn shared_grant(message: &Message, options: &SubOptions) -> Grant {
    Grant {
        qos: message.qos.min(options.qos),
        retain: message.retain && options.retain_as_published,
        subscription_ids: options.subscription_id.into_iter().collect(),
    }
}

/// The subscriptions a message matches.
struct Matches<'a> {
    /// By client, so deliveries go out in client id order.
    normal: BTreeMap<&'a ClientId, Overlap>,
    /// (`$share/group/filter`, members), by key.
    shared: Vec<(&'a str, &'a Group)>,
    /// Matching non-shared subscriptions (after no-local).
    count: u32,
}

impl<'a> Matches<'a> {
    fn collect(trie: &'a SubTrie, message: &Message) -> Matches<'a> {
        let mut m = Matches {
            normal: BTreeMap::new(),
            shared: Vec::new(),
            count: 0,
        };
        trie.for_each_match(&message.topic, |leaf| {
            for (client, o) in &leaf.normal {
                if o.no_local && message.publisher.as_ref() == Some(client) {
                    continue;
                }
                m.count += 1;
                let overlap = m.normal.entry(client).or_insert(Overlap {
                    qos: QoS::AtMostOnce,
                    retain_as_published: false,
                    subscription_ids: Vec::new(),
                });
                overlap.qos = overlap.qos.max(o.qos);
                overlap.retain_as_published |= o.retain_as_published;
                overlap.subscription_ids.extend(o.subscription_id);
            }
            m.shared
                .extend(leaf.shared.iter().map(|(k, g)| (k.as_str(), g)));
        });
        for overlap in m.normal.values_mut() {
            overlap.subscription_ids.sort_unstable();
            overlap.subscription_ids.dedup();
        }
        m.shared.sort_unstable_by_key(|(key, _)| *key);
        m
    }
}

/// The member whose turn it is: among the online members if any (or if `online_only`),
/// else among all (an offline member keeps QoS 1/2 messages in its queue).
fn pick<F>(
    group: &Group,
    online: F,
    turn: u64,
    online_only: bool,
) -> Option<(&ClientId, &SubOptions)>
where
    F: Fn(&ClientId) -> bool,
{
    let up = group.keys().filter(|c| online(c)).count();
    let nth = |n: usize| (turn % n as u64) as usize;
    if up > 0 {
        group.iter().filter(|(c, _)| online(c)).nth(nth(up))
    } else if online_only || group.is_empty() {
        None
    } else {
        group.iter().nth(nth(group.len()))
    }
}

fn is_online(sessions: &BTreeMap<ClientId, Session>, client: &ClientId) -> bool {
    sessions.get(client).is_some_and(|s| s.core.conn.is_some())
}

impl State {
    pub(super) fn publish(
        &mut self,
        client: &ClientId,
        conn: ConnId,
        packet_id: Option<PacketId>,
        message: &Message,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) -> Reply {
        let Some(s) = self.sessions.get_mut(client).filter(|s| s.owned_by(conn)) else {
            return Reply::NotOwner;
        };
        if !valid_topic_name(&message.topic) {
            return Reply::Published { matched: 0 };
        }
        if let (QoS::ExactlyOnce, Some(pid)) = (message.qos, packet_id) {
            if !s.inbound_qos2.insert(pid) {
                return Reply::Duplicate;
            }
            self.dirty.mark(Key::Inbound(client.clone(), pid));
        }
        let mut message = message.clone();
        message.publisher = Some(client.clone());
        let matched = self.publish_message(Arc::new(message), now_ms, effects);
        Reply::Published { matched }
    }

    /// Retained update and routing of one message (a PUBLISH or a will). Returns how many
    /// subscriptions it matched (shared groups count once).
    pub(super) fn publish_message(
        &mut self,
        message: Arc<Message>,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) -> u32 {
        let mut out = Outgoing::new(message);
        if out.message.retain {
            self.set_retained(&mut out);
        }
        self.route(&mut out, now_ms, effects)
    }

    fn route(&mut self, out: &mut Outgoing, now_ms: u64, effects: &mut Vec<Effect>) -> u32 {
        let State {
            sessions,
            trie,
            store,
            totals,
            dirty,
            share_counters,
            ..
        } = self;
        let message = Arc::clone(&out.message);
        let matches = Matches::collect(trie, &message);
        let mut cx = Ctx {
            now_ms,
            store,
            totals,
            dirty,
            effects,
        };
        let mut matched = matches.count;
        for (client, overlap) in matches.normal {
            if let Some(s) = sessions.get_mut(client) {
                s.offer(client, out, overlap.grant(&message), &mut cx);
            }
        }
        for (key, group) in matches.shared {
            let turn = share_counters.get(key).copied().unwrap_or(0);
            let Some((client, options)) = pick(group, |c| is_online(sessions, c), turn, false)
            else {
                continue;
            };
            match share_counters.get_mut(key) {
                Some(next) => *next = turn.wrapping_add(1),
                None => {
                    share_counters.insert(key.to_owned(), 1);
                }
            }
            cx.dirty.mark(Key::ShareCounter(key.to_owned()));
            matched += 1;
            if let Some(s) = sessions.get_mut(client) {
                s.offer(client, out, shared_grant(&message, options), &mut cx);
            }
        }
        matched
    }

    pub(super) fn transient(&self, message: &Arc<Message>) -> Vec<(ClientId, ConnId, Delivery)> {
        let matches = Matches::collect(&self.trie, message);
        let mut deliveries = Vec::with_capacity(matches.normal.len() + matches.shared.len());
        let mut push = |client: &ClientId, grant: Grant| {
            let Some(s) = self.sessions.get(client) else {
                return;
            };
            let Some(conn) = s.core.conn else {
                return;
            };
            if let Some(max) = s.core.maximum_packet_size {
                let size = message.publish_size(
                    QoS::AtMostOnce,
                    &grant.subscription_ids,
                    TopicAlias::None,
                );
                if size > u64::from(max) {
                    return;
                }
            }
            let delivery = Delivery {
                packet_id: None,
                qos: QoS::AtMostOnce,
                dup: false,
                retain: grant.retain,
                message: Arc::clone(message),
                subscription_ids: grant.subscription_ids,
            };
            deliveries.push((client.clone(), conn, delivery));
        };
        for (client, overlap) in matches.normal {
            push(client, overlap.grant(message));
        }
        for (_, group) in matches.shared {
            // Not replicated, so the turn comes from a local counter; any member is right.
            let turn = self.transient_turns.fetch_add(1, Ordering::Relaxed);
            if let Some((client, options)) =
                pick(group, |c| is_online(&self.sessions, c), turn, true)
            {
                push(client, shared_grant(message, options));
            }
        }
        deliveries
    }
}
