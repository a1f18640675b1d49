//! Drives the replicated state machine with a fuzz input and checks it.
//!
//! A `Sequence` becomes `Command`s the way the session layer and the leader build them
//! (current or stale connection ids, QoS 0 non-retained publishes routed in memory instead
//! of proposed, acks naming packet ids the broker actually sent). Checked:
//! - after every command: no panic; one reply per op, of the op's kind; every delivery has a
//!   packet id exactly when its QoS is above 0, at most the message's QoS; per session, the
//!   in-flight packet ids are unique and non-zero, and no more deliveries are outstanding on
//!   the current connection than its receive maximum;
//! - determinism: the same commands applied to a fresh state give the same replies, effects
//!   and snapshot bytes after every command;
//! - persistence: at the end, the snapshot and the mirror (fed from `take_dirty` after every
//!   command) each rebuild a state with the same bytes and stats, which then answers one more
//!   command (every connection reset, a tick hours later) exactly like the live state.
//!
//! # Layout
//! - `mod.rs`: `run`, building commands from steps and tracking connections.
//! - `input`: the `Arbitrary` input types and their tables.
//! - `check`: the invariants.

mod check;
mod input;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use raftmq_raft::{
    Ack, BanTarget, ClientId, Command, ConnId, Connect, Effect, Message, NodeId, Op, PacketId, QoS,
    State, SubOptions, SubscribeRequest, Will,
};

pub use input::Sequence;
use input::{qos, queue_policy, Action, ConnectSpec, Name, PacketRef, PublishSpec, CLIENTS};

/// Leader time at the first command (ms since the Unix epoch).
const START_MS: u64 = 1_700_000_000_000;

/// Ops per input at most, so one run stays fast whatever the input's size.
const MAX_OPS: usize = 512;

/// Ban values: the client ids, an address, a user name.
const BAN_VALUES: &[&str] = &["c0", "c1", "c2", "c3", "127.0.0.1", "alice"];

/// One applied command and what it gave, for the replay.
struct Applied {
    command: Command,
    outcome: check::Outcome,
}

/// Runs one input: record while checking, then replay for determinism, then persistence.
pub fn run(sequence: &Sequence) {
    let mut driver = Driver::new();
    let mut ops_left = MAX_OPS;
    for batch in &sequence.batches {
        if ops_left == 0 {
            break;
        }
        driver.now += batch.advance.millis();
        let ops: Vec<Op> = batch
            .steps
            .iter()
            .take(ops_left)
            .filter_map(|step| driver.op(step.client, step.stale, &step.action))
            .collect();
        ops_left = ops_left.saturating_sub(batch.steps.len());
        driver.apply(Command {
            now_ms: driver.now,
            ops,
        });
    }
    replay(&driver.log);
    check::persistence(&mut driver.state, &driver.mirror, driver.now);
}

/// A fresh state fed the recorded commands answers and serializes identically.
fn replay(log: &[Applied]) {
    let mut state = State::new();
    for applied in log {
        let outcome = check::Outcome::of(&mut state, &applied.command);
        assert_eq!(
            outcome, applied.outcome,
            "replaying {:?} diverged",
            applied.command
        );
    }
}

struct Driver {
    state: State,
    now: u64,
    next_seq: u64,
    /// Each client's newest connection.
    current: [Option<ConnId>; CLIENTS],
    /// A connection of each client that does not own its session (the one before the
    /// current, or one that never connected).
    stale: [ConnId; CLIENTS],
    /// The CONNECT each connection made (one per connection, ever).
    connects: BTreeMap<ConnId, Connect>,
    /// Packet ids the state sent (PUBLISH or PUBREL) on each connection.
    sent: BTreeMap<ConnId, BTreeSet<PacketId>>,
    /// The storage mirror, as `take_dirty` describes it.
    mirror: BTreeMap<Vec<u8>, Vec<u8>>,
    log: Vec<Applied>,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            state: State::new(),
            now: START_MS,
            next_seq: 0,
            current: [None; CLIENTS],
            stale: std::array::from_fn(|i| ConnId {
                node: NodeId(2),
                epoch: 0,
                seq: i as u64,
            }),
            connects: BTreeMap::new(),
            sent: BTreeMap::new(),
            mirror: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn apply(&mut self, command: Command) {
        let outcome = check::Outcome::of(&mut self.state, &command);
        check::replies(&command, &outcome.response);
        for effect in &outcome.effects {
            check::effect(effect);
            match effect {
                Effect::Deliver { conn, delivery, .. } => {
                    if let Some(id) = delivery.packet_id {
                        self.sent.entry(*conn).or_default().insert(id);
                    }
                }
                Effect::PubRel {
                    conn, packet_id, ..
                } => {
                    self.sent.entry(*conn).or_default().insert(*packet_id);
                }
                Effect::Close { .. } => {}
            }
        }
        check::windows(&self.state, &self.sent);
        for write in self.state.take_dirty() {
            match write.value {
                Some(value) => self.mirror.insert(write.key, value),
                None => self.mirror.remove(&write.key),
            };
        }
        self.log.push(Applied { command, outcome });
    }

    fn conn(&self, index: usize, stale: bool) -> ConnId {
        match self.current[index] {
            Some(conn) if !stale => conn,
            _ => self.stale[index],
        }
    }

    /// The op a step proposes, or `None` for a QoS 0 non-retained publish, which the leader
    /// routes in memory (checked here against the state as it is), and for a repeated
    /// CONNECT of a client that never connected.
    fn op(&mut self, client: u8, stale: bool, action: &Action) -> Option<Op> {
        let index = usize::from(client) % CLIENTS;
        let name = ClientId(format!("c{index}"));
        let conn = self.conn(index, stale);
        let op = match action {
            Action::Connect(spec) => match self.current[index] {
                // A stale CONNECT is the current connection's own applied again.
                Some(current) if stale => match self.connects.get(&current) {
                    Some(c) => Op::Connect(c.clone()),
                    None => return None,
                },
                _ => {
                    let conn = self.new_conn(index);
                    let connect = self.connect(name, conn, spec);
                    self.connects.insert(conn, connect.clone());
                    Op::Connect(connect)
                }
            },
            Action::Disconnect { graceful, expiry } => Op::Disconnect {
                client: name,
                conn,
                graceful: *graceful,
                session_expiry: expiry.map(|e| e.secs()),
            },
            Action::Publish(spec) => return self.publish(name, conn, spec),
            Action::PubRel(id) => Op::PubRel {
                client: name,
                conn,
                packet_id: PacketId(u16::from(id % 9)),
            },
            Action::Subscribe(filters) => Op::Subscribe {
                client: name,
                conn,
                requests: filters
                    .iter()
                    .map(|(filter, o)| SubscribeRequest {
                        filter: filter.pick(input::FILTERS),
                        options: SubOptions {
                            qos: qos(o.qos),
                            no_local: o.no_local,
                            retain_as_published: o.retain_as_published,
                            // 3 is never on the wire; apply must cope anyway.
                            retain_handling: o.retain_handling % 4,
                            subscription_id: o.subscription_id.map(u32::from),
                        },
                    })
                    .collect(),
            },
            Action::Unsubscribe(filters) => Op::Unsubscribe {
                client: name,
                conn,
                filters: filters.iter().map(|f| f.pick(input::FILTERS)).collect(),
            },
            Action::Ack(kind, target) => {
                let packet_id = self.packet_id(&name, conn, *target);
                Op::Acks(vec![Ack {
                    client: name,
                    conn,
                    packet_id,
                    kind: (*kind).into(),
                }])
            }
            Action::Tick => Op::Tick,
            Action::ResetConnections => Op::ResetConnections,
            Action::Ban {
                kind,
                value,
                seconds,
            } => Op::Ban {
                target: ban_target(*kind, value),
                until_ms: self.now + u64::from(*seconds) * 1000,
                reason: "fuzz".to_owned(),
            },
            Action::Unban { kind, value } => Op::Unban {
                target: ban_target(*kind, value),
            },
        };
        Some(op)
    }

    fn new_conn(&mut self, index: usize) -> ConnId {
        self.next_seq += 1;
        let conn = ConnId {
            node: NodeId(1),
            epoch: 1,
            seq: self.next_seq,
        };
        if let Some(old) = self.current[index].replace(conn) {
            self.stale[index] = old;
        }
        conn
    }

    /// As `session::connect` builds it: 3.1.1 maps clean session to an expiry of 0 or
    /// never, and has no maximum packet size.
    fn connect(&self, client: ClientId, conn: ConnId, spec: &ConnectSpec) -> Connect {
        let session_expiry = match (spec.v5, spec.clean_start) {
            (true, _) => spec.expiry.secs(),
            (false, true) => 0,
            (false, false) => u32::MAX,
        };
        let will = spec.will.as_ref().map(|w| {
            let mut message = self.message(&client, w.topic.pick(input::TOPICS), w.qos, 0);
            message.retain = w.retain;
            // A will keeps its expiry interval relative until it fires.
            message.expires_at_ms = w.expiry_secs.map(|s| u64::from(s) * 1000);
            Will {
                message,
                delay_secs: u32::from(w.delay_secs),
            }
        });
        Connect {
            client,
            conn,
            clean_start: spec.clean_start,
            session_expiry,
            receive_maximum: u16::from(spec.receive_maximum),
            maximum_packet_size: spec.maximum_packet_size.filter(|_| spec.v5).map(u32::from),
            max_queued: u32::from(spec.max_queued),
            max_queued_bytes: u64::from(spec.max_queued_bytes) * 16,
            queue_policy: queue_policy(spec.drop_oldest),
            will,
            protocol: if spec.v5 { 5 } else { 4 },
        }
    }

    fn message(&self, client: &ClientId, topic: String, qos_byte: u8, payload: u8) -> Message {
        Message {
            topic,
            payload: Bytes::from(vec![b'x'; usize::from(payload % 64)]),
            qos: qos(qos_byte),
            publisher: Some(client.clone()),
            received_ms: self.now,
            ..Message::default()
        }
    }

    fn publish(&self, client: ClientId, conn: ConnId, spec: &PublishSpec) -> Option<Op> {
        let mut message = self.message(
            &client,
            spec.topic.pick(input::TOPICS),
            spec.qos,
            spec.payload_len,
        );
        message.retain = spec.retain;
        message.expires_at_ms = spec.expiry_secs.map(|s| self.now + u64::from(s) * 1000);
        if message.qos == QoS::AtMostOnce && !message.retain {
            let deliveries = self.state.route_transient(&Arc::new(message));
            check::transient(&self.state, &deliveries);
            return None;
        }
        Some(Op::Publish {
            client,
            conn,
            packet_id: (message.qos == QoS::ExactlyOnce)
                .then_some(PacketId(u16::from(spec.packet_id % 8) + 1)),
            message,
        })
    }

    /// A packet id the state sent this connection and still has in flight, or a raw one.
    fn packet_id(&self, client: &ClientId, conn: ConnId, target: PacketRef) -> PacketId {
        match target {
            PacketRef::Sent(i) => {
                let sent = self.sent.get(&conn);
                let open: Vec<PacketId> = self
                    .state
                    .inflight_ids(client)
                    .into_iter()
                    .filter(|id| sent.is_some_and(|s| s.contains(id)))
                    .collect();
                match open.len() {
                    0 => PacketId(u16::from(i)),
                    n => open[usize::from(i) % n],
                }
            }
            PacketRef::Raw(id) => PacketId(id),
        }
    }
}

fn ban_target(kind: input::BanSpec, value: &Name) -> BanTarget {
    BanTarget {
        kind: kind.into(),
        value: value.pick(BAN_VALUES),
    }
}
