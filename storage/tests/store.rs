//! The state-machine store across restarts: the state comes back byte for byte (from the
//! sled mirror, or from the snapshot and the log when the mirror is gone, behind or broken),
//! snapshots round-trip between stores, and effects reach the sink in log order.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, StorageHelper,
    Vote,
};
use parking_lot::Mutex;
use raftmq_raft::{
    Ack, AckKind, ClientId, Command, ConnId, Connect, DropEffects, Effect, EffectSink, Message,
    NodeId, Op, PacketId, QoS, State, SubOptions, SubscribeRequest, TypeConfig,
};
use raftmq_storage::{Store, StoreOptions};

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, NodeId(1)), index)
}

fn conn(seq: u64) -> ConnId {
    ConnId {
        node: NodeId(1),
        epoch: 7,
        seq,
    }
}

fn connect(client: &str, seq: u64) -> Op {
    Op::Connect(Connect {
        client: ClientId::from(client),
        conn: conn(seq),
        clean_start: false,
        session_expiry: u32::MAX,
        receive_maximum: 10,
        maximum_packet_size: None,
        max_queued: 100,
        max_queued_bytes: u64::MAX,
        queue_policy: raftmq_raft::QueuePolicy::DropNewest,
        will: None,
        protocol: 5,
    })
}

fn publish(client: &str, seq: u64, topic: &str, packet_id: u16, retain: bool, now: u64) -> Op {
    Op::Publish {
        client: ClientId::from(client),
        conn: conn(seq),
        packet_id: Some(PacketId(packet_id)),
        message: Message {
            topic: topic.into(),
            payload: format!("payload of {topic} #{packet_id}")
                .into_bytes()
                .into(),
            qos: QoS::AtLeastOnce,
            retain,
            publisher: Some(ClientId::from(client)),
            received_ms: now,
            ..Message::default()
        },
    }
}

/// A small MQTT history: a subscriber, a publisher, retained and queued messages, acks, an
/// unclean disconnect and a tick. Command `i` is stamped with time `1000 * i`.
fn commands() -> Vec<Command> {
    let ops: Vec<Vec<Op>> = vec![
        vec![connect("sub", 1)],
        vec![Op::Subscribe {
            client: ClientId::from("sub"),
            conn: conn(1),
            requests: vec![SubscribeRequest {
                filter: "a/+".into(),
                options: SubOptions {
                    qos: QoS::AtLeastOnce,
                    ..SubOptions::default()
                },
            }],
        }],
        vec![connect("pub", 2)],
        vec![publish("pub", 2, "a/b", 1, true, 3000)],
        vec![
            publish("pub", 2, "a/c", 2, false, 4000),
            publish("pub", 2, "a/d", 3, false, 4000),
        ],
        vec![Op::Acks(vec![Ack {
            client: ClientId::from("sub"),
            conn: conn(1),
            packet_id: PacketId(1),
            kind: AckKind::PubAck,
        }])],
        vec![Op::Disconnect {
            client: ClientId::from("sub"),
            conn: conn(1),
            graceful: false,
            session_expiry: None,
        }],
        vec![publish("pub", 2, "a/e", 4, false, 7000)],
        vec![Op::Tick],
        vec![publish("pub", 2, "a/b", 5, true, 9000)],
    ];
    ops.into_iter()
        .enumerate()
        .map(|(i, ops)| Command {
            now_ms: 1000 * i as u64,
            ops,
        })
        .collect()
}

/// The log from index 0 (as openraft starts it): a membership entry, a blank entry, then
/// one entry per command.
fn entries() -> Vec<Entry<TypeConfig>> {
    let mut all = vec![
        Entry::new_membership(
            log_id(1, 0),
            Membership::new(vec![BTreeSet::from([NodeId(1)])], ()),
        ),
        Entry::new_blank(log_id(1, 1)),
    ];
    for (i, cmd) in commands().into_iter().enumerate() {
        all.push(Entry {
            log_id: log_id(1, 2 + i as u64),
            payload: EntryPayload::Normal(cmd),
        });
    }
    all
}

/// The state after applying `commands()[..n]` to a fresh `State`, and its effects.
fn reference(n: usize) -> (Vec<u8>, Vec<Effect>) {
    let mut state = State::new();
    let mut effects = Vec::new();
    for cmd in &commands()[..n] {
        effects.extend(state.apply(cmd).1);
    }
    (state.to_snapshot_bytes().unwrap(), effects)
}

/// Open the store in `dir`. sled releases its directory lock from a background thread
/// shortly after the previous in-process `Store` is dropped (a new process never waits), so
/// a reopen in the same process retries that one error for a bounded time.
async fn open(dir: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match raftmq_storage::open(dir, StoreOptions::default(), Arc::new(DropEffects)).await {
            Ok(store) => return store,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "sled lock never released: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => panic!("open failed: {e}"),
        }
    }
}

fn bytes(store: &Store) -> Vec<u8> {
    store.state.read().to_snapshot_bytes().unwrap()
}

/// Append to the log, wait for the flush, apply, record the commit point: what openraft does.
async fn commit(store: &mut Store, entries: &[Entry<TypeConfig>]) {
    store.log.blocking_append(entries.to_vec()).await.unwrap();
    store.state_machine.apply(entries.to_vec()).await.unwrap();
    let last = entries.last().map(|e| e.log_id);
    store.log.save_committed(last).await.unwrap();
}

/// Re-apply the committed log tail the way openraft does on start-up.
async fn recover(store: &mut Store) {
    StorageHelper::new(&mut store.log, &mut store.state_machine)
        .get_initial_state()
        .await
        .unwrap();
}

#[tokio::test]
async fn state_and_applied_id_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let all = entries();
    let mut store = open(dir.path()).await;
    assert!(store.is_fresh());
    commit(&mut store, &all[..5]).await;
    commit(&mut store, &all[5..]).await;
    let want = bytes(&store);
    assert_eq!(want, reference(commands().len()).0, "apply is State::apply");
    let applied = store.state_machine.applied_state().await.unwrap();
    assert_eq!(applied.0, all.last().map(|e| e.log_id));
    drop(store);

    let mut store = open(dir.path()).await;
    assert!(!store.is_fresh());
    assert_eq!(store.state_machine.applied_state().await.unwrap(), applied);
    assert_eq!(bytes(&store), want);
}

#[tokio::test]
async fn snapshot_build_and_install_round_trip() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let all = entries();
    let mut leader = open(leader_dir.path()).await;
    commit(&mut leader, &all[..8]).await;
    let snap = leader
        .state_machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(all[7].log_id));
    assert_eq!(snap.snapshot.get_ref(), &bytes(&leader));

    let mut follower = open(follower_dir.path()).await;
    let mut incoming = follower
        .state_machine
        .begin_receiving_snapshot()
        .await
        .unwrap();
    *incoming = *snap.snapshot.clone();
    follower
        .state_machine
        .install_snapshot(&snap.meta, incoming)
        .await
        .unwrap();
    assert_eq!(bytes(&follower), bytes(&leader));
    assert_eq!(
        follower.state_machine.applied_state().await.unwrap(),
        (snap.meta.last_log_id, snap.meta.last_membership.clone())
    );
    let current = follower
        .state_machine
        .get_current_snapshot()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.meta, snap.meta);
    assert_eq!(current.snapshot.get_ref(), snap.snapshot.get_ref());

    // Both go on from there identically, and the follower restarts into the same state.
    follower.log.purge(all[7].log_id).await.unwrap();
    commit(&mut leader, &all[8..]).await;
    commit(&mut follower, &all[8..]).await;
    assert_eq!(bytes(&follower), bytes(&leader));
    let want = bytes(&follower);
    drop(follower);
    let follower = open(follower_dir.path()).await;
    assert_eq!(bytes(&follower), want);
}

#[tokio::test]
async fn deleted_mirror_is_rebuilt_from_snapshot_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let all = entries();
    let mut store = open(dir.path()).await;
    commit(&mut store, &all[..6]).await;
    let snap = store
        .state_machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    store.log.purge(all[3].log_id).await.unwrap();
    commit(&mut store, &all[6..]).await;
    let want = bytes(&store);
    drop(store);

    fs::remove_dir_all(dir.path().join("mirror")).unwrap();
    let mut store = open(dir.path()).await;
    let (applied, _) = store.state_machine.applied_state().await.unwrap();
    assert_eq!(applied, snap.meta.last_log_id, "loaded from the snapshot");
    recover(&mut store).await;
    let (applied, _) = store.state_machine.applied_state().await.unwrap();
    assert_eq!(applied, all.last().map(|e| e.log_id));
    assert_eq!(bytes(&store), want);
    drop(store);

    // The rebuilt mirror is current again: the next start needs no replay.
    let mut store = open(dir.path()).await;
    let (applied, _) = store.state_machine.applied_state().await.unwrap();
    assert_eq!(applied, all.last().map(|e| e.log_id));
    assert_eq!(bytes(&store), want);
}

#[tokio::test]
async fn mirror_behind_the_snapshot_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let old_mirror = tempfile::tempdir().unwrap();
    let all = entries();
    let mut store = open(dir.path()).await;
    commit(&mut store, &all[..4]).await;
    drop(store);
    copy_dir(&dir.path().join("mirror"), old_mirror.path());

    let mut store = open(dir.path()).await;
    commit(&mut store, &all[4..8]).await;
    store
        .state_machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    commit(&mut store, &all[8..]).await;
    let want = bytes(&store);
    drop(store);

    // sled lost its recent batches (its flush is not power-safe): it is at entry 4.
    fs::remove_dir_all(dir.path().join("mirror")).unwrap();
    copy_dir(old_mirror.path(), &dir.path().join("mirror"));
    let mut store = open(dir.path()).await;
    let (applied, _) = store.state_machine.applied_state().await.unwrap();
    assert_eq!(applied, Some(all[7].log_id), "loaded from the snapshot");
    recover(&mut store).await;
    assert_eq!(bytes(&store), want);
}

#[tokio::test]
async fn undecodable_mirror_falls_back_to_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let all = entries();
    let mut store = open(dir.path()).await;
    commit(&mut store, &all[..7]).await;
    store
        .state_machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    commit(&mut store, &all[7..]).await;
    let want = bytes(&store);
    drop(store);

    {
        let db = sled::open(dir.path().join("mirror")).unwrap();
        db.insert(b"\x00applied", &[0xff, 0xff, 0xff][..]).unwrap();
        db.flush().unwrap();
    }
    let mut store = open(dir.path()).await;
    let (applied, _) = store.state_machine.applied_state().await.unwrap();
    assert_eq!(applied, Some(all[6].log_id), "loaded from the snapshot");
    recover(&mut store).await;
    assert_eq!(bytes(&store), want);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Vec<Effect>>>);

impl EffectSink for Recorder {
    fn emit(&self, effects: Vec<Effect>) {
        self.0.lock().push(effects);
    }
}

#[tokio::test]
async fn effects_reach_the_sink_in_log_order_once_per_apply_call() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recorder::default());
    let mut store = raftmq_storage::open(dir.path(), StoreOptions::default(), sink.clone())
        .await
        .unwrap();
    let all = entries();
    let calls = [&all[..4], &all[4..9], &all[9..]];
    for entries in calls {
        store.state_machine.apply(entries.to_vec()).await.unwrap();
    }
    let emitted = sink.0.lock().clone();
    assert!(emitted.len() <= calls.len());
    assert!(emitted.iter().all(|batch| !batch.is_empty()));
    let flat: Vec<Effect> = emitted.into_iter().flatten().collect();
    assert!(!flat.is_empty(), "the online subscriber gets deliveries");
    assert_eq!(flat, reference(commands().len()).1);
}

#[tokio::test]
async fn a_node_that_voted_is_not_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path()).await;
    assert!(store.is_fresh());
    store.log.save_vote(&Vote::new(1, NodeId(1))).await.unwrap();
    drop(store);
    let mut store = open(dir.path()).await;
    assert!(!store.is_fresh());
    assert_eq!(
        store.log.read_vote().await.unwrap(),
        Some(Vote::new(1, NodeId(1)))
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let dst = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &dst);
        } else {
            fs::copy(item.path(), dst).unwrap();
        }
    }
}
