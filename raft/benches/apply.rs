//! Throughput of `apply` for replicated QoS 1 traffic: one publisher, one subscriber, the
//! leader's batching (many publishes per command, acks batched), and `take_dirty` after
//! every command as the storage does, among 10,000 other sessions each subscribed to its
//! own topics (a publish must not cost per session). Prints messages per second; run with
//! `cargo bench -p raftmq-raft --bench apply`.

use std::time::Instant;

use bytes::Bytes;
use raftmq_raft::{
    Ack, AckKind, ClientId, Command, ConnId, Connect, Effect, Message, NodeId, Op, QoS, State,
    SubOptions, SubscribeRequest,
};

const MESSAGES: usize = 400_000;
const BATCH: usize = 64;
const IDLE_SESSIONS: u64 = 10_000;

fn conn(seq: u64) -> ConnId {
    ConnId {
        node: NodeId(1),
        epoch: 0,
        seq,
    }
}

fn connect(client: &str, seq: u64) -> Op {
    Op::Connect(Connect {
        client: ClientId::from(client),
        conn: conn(seq),
        clean_start: true,
        session_expiry: u32::MAX,
        receive_maximum: 1000,
        maximum_packet_size: None,
        max_queued: 10_000,
        max_queued_bytes: u64::MAX,
        queue_policy: raftmq_raft::QueuePolicy::DropNewest,
        will: None,
        protocol: 5,
    })
}

fn main() {
    let mut state = State::new();
    let subscribe = Op::Subscribe {
        client: ClientId::from("sub"),
        conn: conn(1),
        requests: vec![SubscribeRequest {
            filter: "bench/+/data".into(),
            options: SubOptions {
                qos: QoS::AtLeastOnce,
                ..SubOptions::default()
            },
        }],
    };
    let mut setup = vec![connect("sub", 1), connect("pub", 2), subscribe];
    for i in 0..IDLE_SESSIONS {
        let client = format!("idle-{i}");
        setup.push(connect(&client, 10 + i));
        setup.push(Op::Subscribe {
            client: ClientId::from(client.as_str()),
            conn: conn(10 + i),
            requests: vec![SubscribeRequest {
                filter: format!("devices/{i}/#"),
                options: SubOptions::default(),
            }],
        });
    }
    state.apply(&Command {
        now_ms: 1,
        ops: setup,
    });
    state.take_dirty();
    let payload = Bytes::from(vec![b'x'; 64]);
    let publisher = ClientId::from("pub");
    let mut acks = Vec::new();
    let mut mirror_bytes = 0usize;
    let start = Instant::now();
    for batch in 0..MESSAGES / BATCH {
        let mut ops: Vec<Op> = (0..BATCH)
            .map(|_| Op::Publish {
                client: publisher.clone(),
                conn: conn(2),
                packet_id: None,
                message: Message {
                    topic: "bench/1/data".into(),
                    payload: payload.clone(),
                    qos: QoS::AtLeastOnce,
                    publisher: Some(publisher.clone()),
                    received_ms: batch as u64,
                    ..Message::default()
                },
            })
            .collect();
        // The subscriber's acks of the previous batch ride along, as the leader batches them.
        ops.push(Op::Acks(std::mem::take(&mut acks)));
        let (_, effects) = state.apply(&Command {
            now_ms: batch as u64,
            ops,
        });
        for e in effects {
            if let Effect::Deliver {
                client,
                conn,
                delivery,
            } = e
            {
                if let Some(packet_id) = delivery.packet_id {
                    acks.push(Ack {
                        client,
                        conn,
                        packet_id,
                        kind: AckKind::PubAck,
                    });
                }
            }
        }
        mirror_bytes += state
            .take_dirty()
            .iter()
            .map(|w| w.key.len() + w.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = state.stats();
    println!(
        "{MESSAGES} QoS 1 messages through apply + take_dirty in {secs:.2} s: {:.0} msg/s, \
         {:.0} mirror bytes per message (in flight at the end: {})",
        MESSAGES as f64 / secs,
        mirror_bytes as f64 / MESSAGES as f64,
        stats.inflight_messages
    );
}
