//! Determinism and persistence of the state machine under a long mixed workload: two states
//! fed the same log stay byte-identical; the snapshot and the mirror (written from
//! `take_dirty` at irregular intervals) rebuild the same state, and a rebuilt state goes on
//! answering exactly like the one that never stopped. Plus packet id wrapping and the
//! refusal of corrupt bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use raftmq_raft::{
    Ack, AckKind, BanKind, BanTarget, ClientId, Command, ConnId, Connect, Effect, Message, NodeId,
    Op, PacketId, QoS, QueuePolicy, Reply, State, SubOptions, SubscribeRequest, Will,
};

/// xorshift64*: a fixed, seedable sequence, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TOPICS: &[&str] = &["a", "a/b", "a/c", "b/x", "$SYS/s", "s/1", "s/2"];
const FILTERS: &[&str] = &[
    "a/#",
    "a/+",
    "#",
    "+/x",
    "a/b",
    "s/1",
    "$SYS/#",
    "$share/g/a/#",
    "$share/g/s/+",
    "$share/h/#",
];

fn qos(n: usize) -> QoS {
    QoS::from_u8((n % 3) as u8).unwrap_or_default()
}

/// Makes commands that are mostly valid (current connections, delivered packet ids) with
/// some stale and unknown ones mixed in.
struct Workload {
    rng: Rng,
    now: u64,
    next_conn: u64,
    conns: BTreeMap<String, ConnId>,
    /// (client, conn, packet id, qos or PUBREL seen) from effects, to acknowledge later.
    unacked: Vec<(ClientId, ConnId, PacketId, AckKind)>,
}

impl Workload {
    fn client(&mut self) -> String {
        format!("c{}", self.rng.below(6))
    }

    fn conn_of(&mut self, client: &str) -> ConnId {
        let stale = ConnId {
            node: NodeId(9),
            epoch: 0,
            seq: self.rng.below(3) as u64,
        };
        match self.conns.get(client) {
            Some(c) if !self.rng.chance(5) => *c,
            _ => stale,
        }
    }

    fn message(&mut self, client: &str) -> Message {
        let payload_len = if self.rng.chance(15) {
            0
        } else {
            self.rng.below(40)
        };
        Message {
            topic: (*self.rng.pick(TOPICS)).to_owned(),
            payload: Bytes::from(vec![b'x'; payload_len]),
            qos: qos(self.rng.below(3)),
            retain: self.rng.chance(20),
            publisher: Some(ClientId::from(client)),
            received_ms: self.now,
            expires_at_ms: self
                .rng
                .chance(20)
                .then(|| self.now + self.rng.below(5000) as u64),
            ..Message::default()
        }
    }

    fn op(&mut self) -> Op {
        let name = self.client();
        let client = ClientId::from(name.as_str());
        match self.rng.below(100) {
            0..=7 => {
                self.next_conn += 1;
                let conn = ConnId {
                    node: NodeId(1),
                    epoch: 1,
                    seq: self.next_conn,
                };
                self.conns.insert(name.clone(), conn);
                let will = self.rng.chance(40).then(|| {
                    let mut message = self.message(&name);
                    // A will keeps its expiry interval relative until it fires.
                    message.expires_at_ms = message.expires_at_ms.map(|at| at - self.now);
                    Will {
                        message,
                        delay_secs: *self.rng.pick(&[0, 0, 2, 4]),
                    }
                });
                Op::Connect(Connect {
                    client,
                    conn,
                    clean_start: self.rng.chance(10),
                    session_expiry: *self.rng.pick(&[0, 3, 8, u32::MAX, u32::MAX]),
                    receive_maximum: 1 + self.rng.below(4) as u16,
                    maximum_packet_size: self.rng.chance(10).then_some(40),
                    max_queued: self.rng.below(6) as u32,
                    max_queued_bytes: *self.rng.pick(&[30, 200, u64::MAX]),
                    queue_policy: *self
                        .rng
                        .pick(&[QueuePolicy::DropNewest, QueuePolicy::DropOldest]),
                    will,
                    protocol: *self.rng.pick(&[4, 5]),
                })
            }
            8..=11 => {
                let conn = self.conn_of(&name);
                Op::Disconnect {
                    client,
                    conn,
                    graceful: self.rng.chance(50),
                    session_expiry: self
                        .rng
                        .chance(20)
                        .then(|| *self.rng.pick(&[0, 5, u32::MAX])),
                }
            }
            12..=49 => {
                let conn = self.conn_of(&name);
                let message = self.message(&name);
                Op::Publish {
                    client,
                    conn,
                    packet_id: Some(PacketId(1 + self.rng.below(4) as u16)),
                    message,
                }
            }
            50..=54 => {
                let conn = self.conn_of(&name);
                Op::PubRel {
                    client,
                    conn,
                    packet_id: PacketId(1 + self.rng.below(4) as u16),
                }
            }
            55..=66 => {
                let conn = self.conn_of(&name);
                let requests = (0..1 + self.rng.below(2))
                    .map(|_| SubscribeRequest {
                        filter: (*self.rng.pick(FILTERS)).to_owned(),
                        options: SubOptions {
                            qos: qos(self.rng.below(3)),
                            no_local: self.rng.chance(20),
                            retain_as_published: self.rng.chance(30),
                            retain_handling: self.rng.below(3) as u8,
                            subscription_id: self
                                .rng
                                .chance(30)
                                .then(|| 1 + self.rng.below(3) as u32),
                        },
                    })
                    .collect();
                Op::Subscribe {
                    client,
                    conn,
                    requests,
                }
            }
            67..=69 => {
                let conn = self.conn_of(&name);
                Op::Unsubscribe {
                    client,
                    conn,
                    filters: vec![(*self.rng.pick(FILTERS)).to_owned()],
                }
            }
            70..=95 => {
                let n = self.unacked.len().min(1 + self.rng.below(4));
                let mut acks: Vec<Ack> = (0..n)
                    .map(|_| {
                        let i = self.rng.below(self.unacked.len());
                        let (client, conn, packet_id, kind) = self.unacked.swap_remove(i);
                        Ack {
                            client,
                            conn,
                            packet_id,
                            kind,
                        }
                    })
                    .collect();
                if self.rng.chance(10) {
                    acks.push(Ack {
                        client,
                        conn: self.conn_of(&name),
                        packet_id: PacketId(1 + self.rng.below(9) as u16),
                        kind: *self
                            .rng
                            .pick(&[AckKind::PubAck, AckKind::PubRec, AckKind::PubComp]),
                    });
                }
                Op::Acks(acks)
            }
            _ if self.rng.chance(90) => Op::Tick,
            _ if self.rng.chance(50) => Op::Ban {
                target: BanTarget {
                    kind: *self.rng.pick(&[BanKind::ClientId, BanKind::Ip]),
                    value: name.clone(),
                },
                until_ms: self.now + self.rng.below(5000) as u64,
                reason: "test".into(),
            },
            _ if self.rng.chance(50) => Op::Unban {
                target: BanTarget {
                    kind: BanKind::ClientId,
                    value: name.clone(),
                },
            },
            _ => Op::ResetConnections,
        }
    }

    fn command(&mut self) -> Command {
        self.now += self.rng.below(1500) as u64;
        let ops = (0..1 + self.rng.below(5)).map(|_| self.op()).collect();
        Command {
            now_ms: self.now,
            ops,
        }
    }

    fn observe(&mut self, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::Deliver {
                    client,
                    conn,
                    delivery,
                } => {
                    let kind = match delivery.qos {
                        QoS::AtMostOnce => continue,
                        QoS::AtLeastOnce => AckKind::PubAck,
                        QoS::ExactlyOnce => AckKind::PubRec,
                    };
                    if let Some(pid) = delivery.packet_id {
                        self.unacked.push((client.clone(), *conn, pid, kind));
                    }
                }
                Effect::PubRel {
                    client,
                    conn,
                    packet_id,
                } => self
                    .unacked
                    .push((client.clone(), *conn, *packet_id, AckKind::PubComp)),
                Effect::Close { .. } => {}
            }
        }
    }
}

fn apply_mirror(mirror: &mut BTreeMap<Vec<u8>, Vec<u8>>, state: &mut State) {
    for w in state.take_dirty() {
        match w.value {
            Some(v) => mirror.insert(w.key, v),
            None => mirror.remove(&w.key),
        };
    }
}

fn bytes(state: &State) -> Vec<u8> {
    state.to_snapshot_bytes().expect("encodes")
}

#[test]
fn long_mixed_workload_is_deterministic_and_persists() {
    for seed in [1u64, 7, 42, 1234] {
        let mut w = Workload {
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            now: 1_000_000,
            next_conn: 0,
            conns: BTreeMap::new(),
            unacked: Vec::new(),
        };
        let mut a = State::new();
        let mut b = State::new();
        let mut mirror = BTreeMap::new();
        let mut delivered = 0usize;
        for step in 0..3000 {
            let cmd = w.command();
            let out_a = a.apply(&cmd);
            let out_b = b.apply(&cmd);
            assert_eq!(
                out_a, out_b,
                "seed {seed} step {step}: same log, same answers"
            );
            assert_eq!(out_a.0.replies.len(), cmd.ops.len());
            delivered += out_a
                .1
                .iter()
                .filter(|e| matches!(e, Effect::Deliver { .. }))
                .count();
            w.observe(&out_a.1);
            if w.rng.chance(30) {
                apply_mirror(&mut mirror, &mut a);
            }
            if step % 97 == 0 {
                apply_mirror(&mut mirror, &mut a);
                let snapshot = bytes(&a);
                assert!(
                    snapshot == bytes(&b),
                    "seed {seed} step {step}: replicas diverged"
                );
                let restored = State::from_snapshot_bytes(&snapshot).expect("snapshot loads");
                assert!(
                    bytes(&restored) == snapshot,
                    "seed {seed} step {step}: snapshot round trip"
                );
                let loaded = State::from_mirror(mirror.clone()).expect("mirror loads");
                assert!(
                    bytes(&loaded) == snapshot,
                    "seed {seed} step {step}: mirror round trip"
                );
                assert_eq!(loaded.stats(), a.stats());
                // The replica restarts from the mirror and must go on exactly alike.
                b = loaded;
            }
        }
        assert!(
            delivered > 500,
            "seed {seed}: the workload delivers ({delivered})"
        );
        leaves_nothing_behind(&mut a, &mut w, &mut mirror);
    }
}

/// Ends every session; then only retained messages may still be stored.
fn leaves_nothing_behind(
    state: &mut State,
    w: &mut Workload,
    mirror: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) {
    let clients: Vec<ClientId> = state.sessions().map(|s| s.client.clone()).collect();
    let mut ops = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let conn = ConnId {
            node: NodeId(2),
            epoch: 0,
            seq: i as u64,
        };
        ops.push(Op::Connect(Connect {
            client: client.clone(),
            conn,
            clean_start: true,
            session_expiry: 0,
            receive_maximum: 1,
            maximum_packet_size: None,
            max_queued: 0,
            max_queued_bytes: u64::MAX,
            queue_policy: raftmq_raft::QueuePolicy::DropNewest,
            will: None,
            protocol: 5,
        }));
        ops.push(Op::Disconnect {
            client,
            conn,
            graceful: true,
            session_expiry: None,
        });
    }
    state.apply(&Command { now_ms: w.now, ops });
    let stats = state.stats();
    assert_eq!(stats.sessions, 0);
    assert_eq!(
        stats.stored_messages, stats.retained,
        "only retained messages stay stored"
    );
    apply_mirror(mirror, state);
    let loaded = State::from_mirror(mirror.clone()).expect("mirror loads");
    assert!(bytes(&loaded) == bytes(state));
    let keys: Vec<_> = mirror
        .keys()
        .filter(|k| !k.starts_with(b"m/") && !k.starts_with(b"r/"))
        .collect();
    assert!(
        keys.iter()
            .all(|k| k.as_slice() == b"g" || k.starts_with(b"c/")),
        "no session keys left: {keys:?}"
    );
}

fn connect(client: &str, seq: u64, receive_maximum: u16) -> Op {
    Op::Connect(Connect {
        client: ClientId::from(client),
        conn: ConnId {
            node: NodeId(1),
            epoch: 0,
            seq,
        },
        clean_start: false,
        session_expiry: u32::MAX,
        receive_maximum,
        maximum_packet_size: None,
        max_queued: 10,
        max_queued_bytes: u64::MAX,
        queue_policy: raftmq_raft::QueuePolicy::DropNewest,
        will: None,
        protocol: 5,
    })
}

fn delivered_ids(effects: &[Effect]) -> Vec<u16> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { delivery, .. } => delivery.packet_id.map(|p| p.0),
            _ => None,
        })
        .collect()
}

#[test]
fn packet_ids_wrap_and_skip_ids_in_flight() {
    let conn = |seq| ConnId {
        node: NodeId(1),
        epoch: 0,
        seq,
    };
    let publish = |n: usize| Op::Publish {
        client: ClientId::from("p"),
        conn: conn(2),
        packet_id: None,
        message: Message {
            topic: "t".into(),
            payload: Bytes::from(format!("m{n}")),
            qos: QoS::AtLeastOnce,
            ..Message::default()
        },
    };
    let ack = |pid: u16| Ack {
        client: ClientId::from("s"),
        conn: conn(1),
        packet_id: PacketId(pid),
        kind: AckKind::PubAck,
    };
    let mut s = State::new();
    s.apply(&Command {
        now_ms: 0,
        ops: vec![
            connect("s", 1, 2),
            connect("p", 2, 2),
            Op::Subscribe {
                client: ClientId::from("s"),
                conn: conn(1),
                requests: vec![SubscribeRequest {
                    filter: "t".into(),
                    options: SubOptions {
                        qos: QoS::AtLeastOnce,
                        ..SubOptions::default()
                    },
                }],
            },
        ],
    });
    // Packet id 1 stays in flight the whole time.
    let (_, effects) = s.apply(&Command {
        now_ms: 0,
        ops: vec![publish(0)],
    });
    assert_eq!(delivered_ids(&effects), [1]);
    let mut ids = Vec::new();
    for n in 1..=65536usize {
        let (_, effects) = s.apply(&Command {
            now_ms: 0,
            ops: vec![publish(n)],
        });
        let got = delivered_ids(&effects);
        assert_eq!(got.len(), 1);
        ids.push(got[0]);
        s.apply(&Command {
            now_ms: 0,
            ops: vec![Op::Acks(vec![ack(got[0])])],
        });
    }
    assert_eq!(ids[..2], [2, 3]);
    assert_eq!(ids[65533], 65535);
    // After 65535 comes 1, which is in flight, so 2; never 0.
    assert_eq!(ids[65534..], [2, 3]);
    assert!(!ids.contains(&0) && !ids.contains(&1));
}

#[test]
fn empty_state_round_trips() {
    let s = State::new();
    assert!(s.to_mirror().is_empty());
    let loaded = State::from_mirror(Vec::new()).expect("empty mirror loads");
    assert!(bytes(&loaded) == bytes(&s));
    let restored = State::from_snapshot_bytes(&bytes(&s)).expect("loads");
    assert!(bytes(&restored) == bytes(&s));
}

#[test]
fn transient_routing_changes_nothing_persistent() {
    let mut s = State::new();
    let (response, _) = s.apply(&Command {
        now_ms: 5,
        ops: vec![
            connect("a", 1, 4),
            Op::Subscribe {
                client: ClientId::from("a"),
                conn: ConnId {
                    node: NodeId(1),
                    epoch: 0,
                    seq: 1,
                },
                requests: vec![SubscribeRequest {
                    filter: "$share/g/t".into(),
                    options: SubOptions::default(),
                }],
            },
        ],
    });
    assert!(matches!(response.replies[1], Reply::Subscribed(_)));
    s.take_dirty();
    let before = bytes(&s);
    let message = Arc::new(Message {
        topic: "t".into(),
        payload: Bytes::from_static(b"x"),
        ..Message::default()
    });
    for _ in 0..3 {
        assert_eq!(s.route_transient(&message).len(), 1);
    }
    assert!(bytes(&s) == before);
    assert!(s.take_dirty().is_empty());
}

#[test]
fn corrupt_bytes_are_refused() {
    let mut s = State::new();
    let (_, _) = s.apply(&Command {
        now_ms: 5,
        ops: vec![connect("a", 1, 4)],
    });
    let good = bytes(&s);
    assert!(State::from_snapshot_bytes(&good[..good.len() - 1]).is_err());
    let mut other_format = good.clone();
    other_format[0] = 99;
    assert!(State::from_snapshot_bytes(&other_format).is_err());
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(State::from_snapshot_bytes(&trailing).is_err());

    let mirror: Vec<(Vec<u8>, Vec<u8>)> = s
        .take_dirty()
        .into_iter()
        .filter_map(|w| Some((w.key, w.value?)))
        .collect();
    assert!(State::from_mirror(mirror.clone()).is_ok());
    let unknown = mirror.iter().cloned().chain([(b"zz".to_vec(), vec![])]);
    assert!(State::from_mirror(unknown).is_err());
    let only_core = mirror
        .iter()
        .filter(|(k, _)| !k.starts_with(b"n/"))
        .cloned();
    assert!(
        State::from_mirror(only_core).is_err(),
        "a session without its counters"
    );
    let orphan = mirror
        .iter()
        .cloned()
        .chain([(b"m/\0\0\0\0\0\0\0\x05".to_vec(), vec![0; 4])]);
    assert!(
        State::from_mirror(orphan).is_err(),
        "a message nobody holds"
    );
}
