//! The key/value form of the state for the storage crate's mirror, and dirty tracking.
//!
//! Keys (client ids and topics are raw UTF-8; `u32be` length prefixes keep a client's keys
//! apart from a longer client id that starts the same way):
//! - `g`: globals (next message id, drop and expiry counters).
//! - `c/<$share/group/filter>`: a shared group's round-robin counter.
//! - `m/<id u64be>`: a stored message.
//! - `r/<topic>`: the retained message id of a topic.
//! - `s/<client>`: a session's core (connection, expiry, will, limits).
//! - `n/<client>`: a session's counters (next packet id, next outbound seq).
//! - `u/<len u32be><client><filter>`: one subscription's options.
//! - `o/<len u32be><client><seq u64be>`: one outbound entry, in flight or queued.
//! - `i/<len u32be><client><packet id u16be>`: an inbound QoS 2 packet id awaiting PUBREL.
//! - `b/<kind byte><value>`: a ban (kind `c` client id, `i` IP, `u` user name).
//!
//! Values are bincode 2 (`config::standard()`) with serde.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ban::{BanKind, BanTarget};
use crate::error::RaftError;
use crate::ids::{ClientId, MessageId, PacketId};
use crate::message::{Message, SubOptions};

use super::session::{Core, Counters, OutboundEntry, Session};
use super::{MirrorWrite, State, Totals};

/// A mirror key, before encoding. Dirty tracking keeps these, and the value written for a
/// key is whatever the state holds at `take_dirty` time (nothing: a delete).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Globals,
    ShareCounter(String),
    Message(MessageId),
    Retained(String),
    Session(ClientId),
    Counters(ClientId),
    Sub(ClientId, String),
    Out(ClientId, u64),
    Inbound(ClientId, PacketId),
    Ban(BanTarget),
}

/// Keys changed since the last `take_dirty`.
#[derive(Debug, Default)]
pub(crate) struct Dirty(BTreeSet<Key>);

impl Dirty {
    pub fn mark(&mut self, key: Key) {
        self.0.insert(key);
    }
}

/// The mirror's globals record (`g`).
#[derive(Serialize, Deserialize)]
struct Globals {
    next_message_id: u64,
    totals: Totals,
}

fn client_prefixed(tag: &[u8], client: &ClientId) -> Vec<u8> {
    let mut k = Vec::with_capacity(tag.len() + 4 + client.0.len() + 8);
    k.extend_from_slice(tag);
    k.extend_from_slice(&(client.0.len() as u32).to_be_bytes());
    k.extend_from_slice(client.0.as_bytes());
    k
}

fn tagged(tag: &[u8], rest: &[u8]) -> Vec<u8> {
    [tag, rest].concat()
}

impl Key {
    fn encode(&self) -> Vec<u8> {
        match self {
            Key::Globals => b"g".to_vec(),
            Key::ShareCounter(f) => tagged(b"c/", f.as_bytes()),
            Key::Message(id) => tagged(b"m/", &id.0.to_be_bytes()),
            Key::Retained(t) => tagged(b"r/", t.as_bytes()),
            Key::Session(c) => tagged(b"s/", c.0.as_bytes()),
            Key::Counters(c) => tagged(b"n/", c.0.as_bytes()),
            Key::Sub(c, f) => [client_prefixed(b"u/", c), f.as_bytes().to_vec()].concat(),
            Key::Out(c, seq) => [client_prefixed(b"o/", c), seq.to_be_bytes().to_vec()].concat(),
            Key::Inbound(c, p) => [client_prefixed(b"i/", c), p.0.to_be_bytes().to_vec()].concat(),
            Key::Ban(t) => [b"b/".as_slice(), &[t.kind.tag()], t.value.as_bytes()].concat(),
        }
    }
}

fn corrupt(detail: String) -> RaftError {
    RaftError::Corrupt {
        what: "mirror",
        detail,
    }
}

/// Encodes a mirror value. Every value type here is plain data with known lengths, and
/// bincode's serde encoder fails only on sequences without one, so this cannot fail.
fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("mirror values are plain data that bincode always encodes")
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, RaftError> {
    match bincode::serde::decode_from_slice(bytes, bincode::config::standard()) {
        Ok((value, used)) if used == bytes.len() => Ok(value),
        Ok(_) => Err(corrupt(format!("trailing bytes in value of {key:?}"))),
        Err(e) => Err(corrupt(format!("value of {key:?}: {e}"))),
    }
}

fn utf8(key: &[u8], bytes: &[u8]) -> Result<String, RaftError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(format!("non UTF-8 key {key:?}")))
}

/// Splits `<len u32be><client><rest>`.
fn split_client<'a>(key: &[u8], bytes: &'a [u8]) -> Result<(ClientId, &'a [u8]), RaftError> {
    let bad = || corrupt(format!("bad client in key {key:?}"));
    let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad());
    }
    let (client, rest) = rest.split_at(len);
    Ok((ClientId(utf8(key, client)?), rest))
}

fn fixed<const N: usize>(key: &[u8], bytes: &[u8]) -> Result<[u8; N], RaftError> {
    bytes
        .try_into()
        .map_err(|_| corrupt(format!("bad fixed-size part in key {key:?}")))
}

impl State {
    /// The value of `key` now, `None` when it no longer exists.
    fn value_of(&self, key: &Key) -> Option<Vec<u8>> {
        match key {
            // Absent until something moves, like every other key of an empty state.
            Key::Globals if self.store.next_id == 0 && self.totals == Totals::default() => None,
            Key::Globals => Some(encode(&Globals {
                next_message_id: self.store.next_id,
                totals: self.totals.clone(),
            })),
            Key::ShareCounter(f) => self.share_counters.get(f).map(encode),
            Key::Message(id) => self.store.get(*id).map(|m| encode(&**m)),
            Key::Retained(t) => self.retained.get(t).map(encode),
            Key::Session(c) => self.sessions.get(c).map(|s| encode(&s.core)),
            Key::Counters(c) => self.sessions.get(c).map(|s| encode(&s.counters)),
            Key::Sub(c, f) => self.sessions.get(c)?.subscriptions.get(f).map(encode),
            Key::Out(c, seq) => self.sessions.get(c)?.outbound(*seq).map(|o| encode(&o)),
            Key::Inbound(c, p) => self
                .sessions
                .get(c)?
                .inbound_qos2
                .contains(p)
                .then(|| encode(&())),
            Key::Ban(t) => self.bans.get(t).map(encode),
        }
    }

    pub(super) fn take_dirty_writes(&mut self) -> Vec<MirrorWrite> {
        let keys = std::mem::take(&mut self.dirty.0);
        keys.into_iter()
            .map(|key| MirrorWrite {
                value: self.value_of(&key),
                key: key.encode(),
            })
            .collect()
    }

    /// Every key the state has now.
    fn all_keys(&self) -> Vec<Key> {
        let mut keys = vec![Key::Globals];
        keys.extend(self.share_counters.keys().cloned().map(Key::ShareCounter));
        keys.extend(self.store.messages.keys().copied().map(Key::Message));
        keys.extend(self.retained.keys().cloned().map(Key::Retained));
        keys.extend(self.bans.keys().cloned().map(Key::Ban));
        let mut dirty = Dirty::default();
        for (client, s) in &self.sessions {
            s.mark_all(client, &mut dirty);
        }
        keys.extend(dirty.0);
        keys
    }

    pub(super) fn mirror_writes(&self) -> Vec<MirrorWrite> {
        self.all_keys()
            .into_iter()
            .filter_map(|key| {
                let value = self.value_of(&key)?;
                Some(MirrorWrite {
                    key: key.encode(),
                    value: Some(value),
                })
            })
            .collect()
    }

    pub(super) fn load_mirror<I>(entries: I) -> Result<State, RaftError>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let mut state = State::default();
        let mut parts: BTreeMap<ClientId, Parts> = BTreeMap::new();
        for (key, value) in entries {
            let k = key.as_slice();
            let (tag, rest) = k.split_at(k.len().min(2));
            match tag {
                b"g" if rest.is_empty() => {
                    let g: Globals = decode(k, &value)?;
                    state.store.next_id = g.next_message_id;
                    state.totals = g.totals;
                }
                b"c/" => {
                    let counter = decode(k, &value)?;
                    state.share_counters.insert(utf8(k, rest)?, counter);
                }
                b"m/" => {
                    let id = MessageId(u64::from_be_bytes(fixed(k, rest)?));
                    let message: Message = decode(k, &value)?;
                    state.store.messages.insert(id, message.into());
                }
                b"r/" => {
                    state.retained.insert(utf8(k, rest)?, decode(k, &value)?);
                }
                b"s/" => {
                    parts.entry(ClientId(utf8(k, rest)?)).or_default().core =
                        Some(decode(k, &value)?)
                }
                b"n/" => {
                    parts.entry(ClientId(utf8(k, rest)?)).or_default().counters =
                        Some(decode(k, &value)?)
                }
                b"u/" => {
                    let (client, filter) = split_client(k, rest)?;
                    let options: SubOptions = decode(k, &value)?;
                    let filter = utf8(k, filter)?;
                    parts
                        .entry(client)
                        .or_default()
                        .subs
                        .insert(filter, options);
                }
                b"o/" => {
                    let (client, seq) = split_client(k, rest)?;
                    let seq = u64::from_be_bytes(fixed(k, seq)?);
                    let entry: OutboundEntry = decode(k, &value)?;
                    parts.entry(client).or_default().outbound.insert(seq, entry);
                }
                b"i/" => {
                    let (client, pid) = split_client(k, rest)?;
                    let pid = PacketId(u16::from_be_bytes(fixed(k, pid)?));
                    parts.entry(client).or_default().inbound.insert(pid);
                }
                b"b/" => {
                    let (&tag, value_bytes) = rest
                        .split_first()
                        .ok_or_else(|| corrupt(format!("ban key without a kind {k:?}")))?;
                    let kind = BanKind::from_tag(tag)
                        .ok_or_else(|| corrupt(format!("unknown ban kind in key {k:?}")))?;
                    let target = BanTarget {
                        kind,
                        value: utf8(k, value_bytes)?,
                    };
                    state.bans.insert(target, decode(k, &value)?);
                }
                _ => return Err(corrupt(format!("unknown key {k:?}"))),
            }
        }
        for (client, p) in parts {
            let session = p.assemble(&client)?;
            state.sessions.insert(client, session);
        }
        state.rebuild()?;
        Ok(state)
    }
}

/// A session's keys gathered while loading.
#[derive(Default)]
struct Parts {
    core: Option<Core>,
    counters: Option<Counters>,
    subs: BTreeMap<String, SubOptions>,
    outbound: BTreeMap<u64, OutboundEntry>,
    inbound: BTreeSet<PacketId>,
}

impl Parts {
    fn assemble(self, client: &ClientId) -> Result<Session, RaftError> {
        let (Some(core), Some(counters)) = (self.core, self.counters) else {
            return Err(corrupt(format!(
                "session {client} lacks its core or counters"
            )));
        };
        let mut session = Session::new(core);
        session.counters = counters;
        session.subscriptions = self.subs;
        session.inbound_qos2 = self.inbound;
        // Ascending seq puts in-flight entries before queued ones (see `Session`).
        for (seq, entry) in self.outbound {
            match entry {
                OutboundEntry::Inflight(e) if e.out.seq == seq && session.queue.is_empty() => {
                    session.inflight.push_back(e)
                }
                OutboundEntry::Queued(q) if q.seq == seq => session.enqueue(q),
                _ => {
                    return Err(corrupt(format!(
                        "outbound entry {seq} of {client} out of order"
                    )))
                }
            }
        }
        Ok(session)
    }
}
