//! openraft's `RaftStateMachine` over the replicated `State`: apply entries in order, keep the
//! sled mirror current, build and install snapshots.
//!
//! Locks: `state` (the shared `RwLock<State>`) is taken before `applied`, always, and neither
//! is held across an `.await`. `apply` changes both under the state write lock, so a reader
//! holding the state read lock sees an applied id that matches the state.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError as RaftStorageError, StorageIOError, StoredMembership,
};
use parking_lot::{Mutex, RwLock};
use raftmq_raft::{EffectSink, Member, NodeId, Response, SharedState, State, TypeConfig};

use crate::error::StorageError;
use crate::mirror::{Applied, Mirror};
use crate::snapshot::{Meta, Snapshots};

type RaftResult<T> = Result<T, RaftStorageError<NodeId>>;

/// The state machine. Hand it to `openraft::Raft::new`; keep `state()` for readers.
pub struct StateMachineStore {
    state: SharedState,
    applied: Arc<Mutex<Applied>>,
    mirror: Mirror,
    /// False after a mirror rewrite failed its check: the mirror is then marked untrusted and
    /// left alone until a later rewrite (snapshot install) passes.
    mirror_ok: bool,
    snapshots: Arc<Snapshots>,
    effects: Arc<dyn EffectSink>,
}

/// Builds a snapshot from a consistent view of the state (taken under the state read lock).
pub struct SnapshotBuilder {
    state: SharedState,
    applied: Arc<Mutex<Applied>>,
    snapshots: Arc<Snapshots>,
}

impl StateMachineStore {
    /// Load the state: from the sled mirror when it is at least as new as the snapshot file
    /// and decodes, else from the snapshot file (rewriting the mirror from it). openraft then
    /// re-applies the log from `applied_state()` up to the saved commit point.
    pub(crate) fn open(
        dir: &Path,
        mirror_cache_bytes: u64,
        effects: Arc<dyn EffectSink>,
    ) -> Result<StateMachineStore, StorageError> {
        // sled takes an exclusive lock on open: done first, so a second process on the same
        // data directory fails before it touches anything else.
        let mirror = Mirror::open(&dir.join("mirror"), mirror_cache_bytes)?;
        let (snapshots, saved) = Snapshots::open(&dir.join("snapshots"))?;
        let snap_last = saved.as_ref().and_then(|(meta, _)| meta.last_log_id);
        let (state, applied, mirror_ok) = match from_mirror(&mirror, snap_last) {
            Ok(Some((state, applied))) => (state, applied, true),
            outcome => {
                if let Err(e) = outcome {
                    tracing::warn!("state-machine mirror unusable ({e}); loading the snapshot");
                }
                let (state, applied, bytes) = match saved {
                    Some((meta, data)) => {
                        let state = State::from_snapshot_bytes(&data)?;
                        let applied = Applied {
                            last: meta.last_log_id,
                            membership: meta.last_membership,
                        };
                        (state, applied, data)
                    }
                    None => {
                        let state = State::new();
                        let bytes = state.to_snapshot_bytes()?;
                        (state, Applied::default(), bytes)
                    }
                };
                let ok = rebuild_mirror(&mirror, state.to_mirror(), &applied, &bytes)?;
                (state, applied, ok)
            }
        };
        Ok(StateMachineStore {
            state: Arc::new(RwLock::new(state)),
            applied: Arc::new(Mutex::new(applied)),
            mirror,
            mirror_ok,
            snapshots: Arc::new(snapshots),
            effects,
        })
    }

    /// The state, shared with the broker's readers.
    pub fn state(&self) -> SharedState {
        Arc::clone(&self.state)
    }

    /// Whether nothing was ever applied (no snapshot, nothing in the mirror).
    pub(crate) fn is_empty(&self) -> bool {
        self.applied.lock().last.is_none()
    }

    /// Whether a snapshot file is saved.
    pub(crate) fn has_snapshot(&self) -> bool {
        self.snapshots.exists()
    }
}

/// The mirror's state if it is trusted and at least as new as the snapshot.
fn from_mirror(
    mirror: &Mirror,
    snap_last: Option<LogId<NodeId>>,
) -> Result<Option<(State, Applied)>, StorageError> {
    let Some(applied) = mirror.applied()? else {
        return Ok(None);
    };
    if applied.last < snap_last {
        tracing::info!(
            "mirror at {:?} is behind the snapshot at {snap_last:?}; loading the snapshot",
            applied.last
        );
        return Ok(None);
    }
    Ok(Some((mirror.load_state()?, applied)))
}

/// Rewrite the mirror from a full dump (`State::to_mirror`) of a state whose canonical bytes
/// are `bytes`, then check that the mirror reproduces exactly those bytes. A mismatch marks
/// the mirror untrusted instead of letting a restart load a wrong state; this runs only on
/// the rare paths (snapshot install, mirror rebuild on open), never per apply.
fn rebuild_mirror(
    mirror: &Mirror,
    dump: Vec<raftmq_raft::MirrorWrite>,
    applied: &Applied,
    bytes: &[u8],
) -> Result<bool, StorageError> {
    mirror.rewrite(dump, applied)?;
    let same = match mirror.load_state().and_then(|s| Ok(s.to_snapshot_bytes()?)) {
        Ok(reloaded) => reloaded == bytes,
        Err(e) => {
            tracing::error!("mirror does not load back after a rewrite: {e}");
            false
        }
    };
    if !same {
        tracing::error!(
            "mirror does not reproduce the state it was rewritten from; \
             not using it (restarts load the snapshot and replay the log)"
        );
        mirror.invalidate()?;
    }
    Ok(same)
}

fn snapshot_id(last: Option<LogId<NodeId>>) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let last = last.map_or_else(|| "none".to_string(), |l| l.to_string());
    format!("{last}-{millis}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

fn sm_write_err(e: StorageError) -> RaftStorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> RaftResult<Snapshot<TypeConfig>> {
        let (data, applied) = {
            let state = self.state.read();
            let applied = self.applied.lock().clone();
            (state.to_snapshot_bytes(), applied)
        };
        let data = data.map_err(|e| StorageIOError::read_state_machine(&StorageError::from(e)))?;
        let meta = SnapshotMeta {
            last_log_id: applied.last,
            last_membership: applied.membership,
            snapshot_id: snapshot_id(applied.last),
        };
        let snapshots = Arc::clone(&self.snapshots);
        let saved_meta = meta.clone();
        // The file is fsynced and renamed into place before this returns: openraft purges the
        // log up to a built snapshot, so it must be durable first.
        let data =
            tokio::task::spawn_blocking(move || snapshots.save(&saved_meta, &data).map(|()| data))
                .await
                .map_err(StorageError::from)
                .and_then(|r| r)
                .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> RaftResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>)> {
        let applied = self.applied.lock();
        Ok((applied.last, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> RaftResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let mut effects = Vec::new();
        let (dirty, last, membership) = {
            let mut state = self.state.write();
            let mut applied = self.applied.lock();
            let mut membership_changed = false;
            for entry in entries {
                let reply = match entry.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Normal(cmd) => {
                        let (reply, mut fx) = state.apply(&cmd);
                        effects.append(&mut fx);
                        reply
                    }
                    EntryPayload::Membership(m) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), m);
                        membership_changed = true;
                        Response::default()
                    }
                };
                applied.last = Some(entry.log_id);
                replies.push(reply);
            }
            if replies.is_empty() {
                return Ok(replies);
            }
            let membership = membership_changed.then(|| applied.membership.clone());
            (state.take_dirty(), applied.last, membership)
        };
        // Locks released: the broker's readers are not held up by sled. Apply calls are
        // sequential (`&mut self`), so mirror batches still land in log order.
        if self.mirror_ok {
            self.mirror
                .write(dirty, last, membership.as_ref())
                .map_err(sm_write_err)?;
        }
        if !effects.is_empty() {
            self.effects.emit(effects);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            state: Arc::clone(&self.state),
            applied: Arc::clone(&self.applied),
            snapshots: Arc::clone(&self.snapshots),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> RaftResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> RaftResult<()> {
        let data = snapshot.into_inner();
        let snapshots = Arc::clone(&self.snapshots);
        let saved_meta = meta.clone();
        let write_err =
            |e: StorageError| StorageIOError::write_snapshot(Some(meta.signature()), &e);
        let (state, data, dump) = tokio::task::spawn_blocking(move || {
            // Decode before anything is replaced: bad bytes must not clobber a good snapshot.
            let state = State::from_snapshot_bytes(&data)?;
            // Durable before the state is replaced: the log below it may be purged next.
            snapshots.save(&saved_meta, &data)?;
            let dump = state.to_mirror();
            Ok::<_, StorageError>((state, data, dump))
        })
        .await
        .map_err(StorageError::from)
        .and_then(|r| r)
        .map_err(write_err)?;
        let applied = Applied {
            last: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let old = {
            let mut current = self.state.write();
            *self.applied.lock() = applied.clone();
            std::mem::replace(&mut *current, state)
        };
        // Dropped outside the lock: freeing a large state takes a while.
        drop(old);
        let mirror = self.mirror.clone();
        self.mirror_ok =
            tokio::task::spawn_blocking(move || rebuild_mirror(&mirror, dump, &applied, &data))
                .await
                .map_err(StorageError::from)
                .and_then(|r| r)
                .map_err(write_err)?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> RaftResult<Option<Snapshot<TypeConfig>>> {
        let snapshots = Arc::clone(&self.snapshots);
        let saved = tokio::task::spawn_blocking(move || snapshots.read())
            .await
            .map_err(StorageError::from)
            .and_then(|r| r)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(saved.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
