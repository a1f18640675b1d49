//! raftmq's disk. The only crate that touches files or knows sled.
//!
//! A data directory holds:
//! - `wal/`: the Raft log and vote, our own segmented write-ahead log. Acknowledged means
//!   `fdatasync`ed (group commit); a torn tail is cut off on open.
//! - `snapshots/snapshot.bin`: the latest snapshot, replaced atomically and fsynced.
//! - `mirror/`: a sled database mirroring the state machine, so a restart loads the state
//!   instead of replaying the log. Never trusted alone: checked against the snapshot on open.
//!
//! # Layout
//! - `error`: `StorageError`, this crate's error enum.
//! - `fs_util`: directory fsync, durable directory creation, atomic file replacement.
//! - `wal`: the write-ahead log (`record` framing, `segment` files, `flusher` group commit,
//!   `stats` counters).
//! - `log_store`: `LogStore`, openraft's `RaftLogStorage` over the WAL, and its `LogReader`.
//! - `mirror`: the sled mirror of the state machine.
//! - `snapshot`: snapshot files.
//! - `restore`: seeding a new data directory from a backup file.
//! - `state_machine`: `StateMachineStore`, openraft's `RaftStateMachine`, and its
//!   `SnapshotBuilder`.

mod error;
mod fs_util;
mod log_store;
mod mirror;
mod restore;
mod snapshot;
mod state_machine;
mod wal;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raftmq_raft::{EffectSink, SharedState};

pub use error::StorageError;
pub use log_store::{LogReader, LogStore};
pub use restore::restore;
pub use state_machine::{SnapshotBuilder, StateMachineStore};
pub use wal::{FsyncObserver, WalStats, WalStatsSnapshot};

/// Tuning of the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// A log segment is closed and a new one started once it reaches this size. Purging
    /// deletes whole segments, so this is also the granularity of reclaiming disk.
    pub segment_bytes: u64,
    /// sled's page cache for the mirror.
    pub mirror_cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_bytes: 64 << 20,
            mirror_cache_bytes: 64 << 20,
        }
    }
}

/// An opened store. Give `log` and `state_machine` to `openraft::Raft::new`; keep `state`
/// for readers and `log.stats()` (before moving `log`) for metrics.
pub struct Store {
    pub log: LogStore,
    pub state_machine: StateMachineStore,
    pub state: SharedState,
    fresh: bool,
    restored: bool,
}

impl Store {
    /// True when nothing was ever recorded (no vote, no log entry, no applied state): a node
    /// that has never been part of a cluster, e.g. to decide whether to initialize a one-node
    /// cluster on first start.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// True when the directory was seeded by `restore` and has not joined a cluster yet:
    /// fresh, but with the backup's state in a snapshot file.
    pub fn is_restored(&self) -> bool {
        self.restored
    }
}

/// Open (or create) the store in `dir`. Effects of applied commands go to `effects`, once
/// per apply call, in log order.
pub async fn open(
    dir: &Path,
    opts: StoreOptions,
    effects: Arc<dyn EffectSink>,
) -> Result<Store, StorageError> {
    let dir: PathBuf = dir.to_path_buf();
    // Opening scans and may repair files: blocking work, kept off the async threads.
    tokio::task::spawn_blocking(move || open_blocking(&dir, &opts, effects)).await?
}

fn open_blocking(
    dir: &Path,
    opts: &StoreOptions,
    effects: Arc<dyn EffectSink>,
) -> Result<Store, StorageError> {
    fs_util::create_dir_durable(dir)?;
    let state_machine = StateMachineStore::open(dir, opts.mirror_cache_bytes, effects)?;
    let log = LogStore::open(&dir.join("wal"), opts.segment_bytes)?;
    let fresh = log.is_fresh() && state_machine.is_empty();
    Ok(Store {
        fresh,
        restored: fresh && state_machine.has_snapshot(),
        state: state_machine.state(),
        log,
        state_machine,
    })
}
