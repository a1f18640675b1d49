//! Seeding a new node's data directory from a backup (`raftmq restore`).
//!
//! The backup's state becomes the snapshot file, with no log id and no membership: to
//! openraft the node is still uninitialized (`Store::is_fresh`), so it forms a cluster from
//! its `--peers` like any new node, and its first log entry (index 0, that membership)
//! applies on top of the restored state. Every member restored from the same file starts
//! from the same state, which keeps them identical.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use openraft::{SnapshotMeta, StoredMembership};
use raftmq_raft::{Backup, DropEffects, Stats};

use crate::error::StorageError;
use crate::fs_util::{create_dir_durable, sync_dir};
use crate::snapshot::Snapshots;
use crate::state_machine::StateMachineStore;

/// What a data directory holds that a restore replaces (with `force`).
const OWNED: [&str; 3] = ["wal", "mirror", "snapshots"];

/// Write `backup` into the data directory `dir` (created if missing). A directory that holds
/// anything is refused unless `force`, which deletes the log, mirror and snapshots first.
/// Returns the counts of the restored state, read back from the directory.
pub fn restore(dir: &Path, backup: &Backup, force: bool) -> Result<Stats, StorageError> {
    // Decoded before anything on disk is touched: a bad backup must not cost the old data.
    let state = backup.state()?;
    let expected = state.stats();
    drop(state);
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                if !force {
                    return Err(StorageError::NotEmpty(dir.to_path_buf()));
                }
                for name in OWNED {
                    remove_all(&dir.join(name))?;
                }
                sync_dir(dir)?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io("read directory", dir)(e)),
    }
    create_dir_durable(dir)?;
    let (snapshots, _) = Snapshots::open(&dir.join("snapshots"))?;
    let meta = SnapshotMeta {
        last_log_id: None,
        last_membership: StoredMembership::default(),
        snapshot_id: format!(
            "restore-{}-index-{}",
            backup.created_ms, backup.applied_index
        ),
    };
    snapshots.save(&meta, &backup.state)?;
    drop(snapshots);
    // Open it as the broker will: this builds the mirror and proves the directory loads.
    let sm = StateMachineStore::open(dir, 8 << 20, Arc::new(DropEffects))?;
    let loaded = sm.state().read().stats();
    if !sm.is_empty() || loaded != expected {
        return Err(StorageError::Corrupt {
            what: "restored data directory",
            path: dir.to_path_buf(),
            detail: format!("reads back as {loaded:?}, expected {expected:?}"),
        });
    }
    Ok(loaded)
}

fn remove_all(path: &Path) -> Result<(), StorageError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftmq_raft::State;

    fn backup() -> Backup {
        Backup {
            created_ms: 1,
            applied_index: 7,
            state: State::new().to_snapshot_bytes().unwrap(),
        }
    }

    #[test]
    fn refuses_a_used_directory_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("something"), b"x").unwrap();
        assert!(matches!(
            restore(dir.path(), &backup(), false),
            Err(StorageError::NotEmpty(_))
        ));
        restore(dir.path(), &backup(), true).unwrap();
        restore(dir.path(), &backup(), true).unwrap();
    }

    #[tokio::test]
    async fn a_restored_directory_is_fresh_and_marked_restored() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        restore(&target, &backup(), false).unwrap();
        let store = crate::open(&target, Default::default(), Arc::new(DropEffects))
            .await
            .unwrap();
        assert!(store.is_fresh());
        assert!(store.is_restored());
    }
}
