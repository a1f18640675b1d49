//! Snapshot files: the latest snapshot, kept in `<dir>/snapshots/snapshot.bin`, replaced
//! atomically (write, fsync, rename, fsync directory), so there is only ever one and it is
//! always whole.
//!
//! Layout: `magic (8) | meta length: u32 LE | meta (bincode) | state bytes | crc32: u32 LE`,
//! the checksum covering everything before it. The state bytes are exactly what openraft
//! streams to followers (`State::to_snapshot_bytes`); the meta travels beside them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use openraft::SnapshotMeta;
use parking_lot::Mutex;
use raftmq_raft::{Member, NodeId};

use crate::error::StorageError;
use crate::fs_util::{create_dir_durable, write_atomic};

pub(crate) type Meta = SnapshotMeta<NodeId, Member>;

/// A saved snapshot: its meta and the state bytes.
pub(crate) type Saved = (Meta, Vec<u8>);

const FILE: &str = "snapshot.bin";
const MAGIC: &[u8; 8] = b"RMQSNAP1";

pub(crate) struct Snapshots {
    dir: PathBuf,
    /// Meta of the saved snapshot. Held while saving, so a slow build can never replace a
    /// newer snapshot installed meanwhile.
    current: Mutex<Option<Meta>>,
}

impl Snapshots {
    /// Open the snapshot directory; returns the saved snapshot (meta, state bytes) if any.
    pub(crate) fn open(dir: &Path) -> Result<(Snapshots, Option<Saved>), StorageError> {
        create_dir_durable(dir)?;
        let saved = read_file(&dir.join(FILE))?;
        let snapshots = Snapshots {
            dir: dir.to_path_buf(),
            current: Mutex::new(saved.as_ref().map(|(meta, _)| meta.clone())),
        };
        Ok((snapshots, saved))
    }

    /// Whether a snapshot is saved.
    pub(crate) fn exists(&self) -> bool {
        self.current.lock().is_some()
    }

    /// The saved snapshot, if any.
    pub(crate) fn read(&self) -> Result<Option<Saved>, StorageError> {
        // No lock needed: a save replaces the file by rename, so this sees old or new, whole.
        read_file(&self.dir.join(FILE))
    }

    /// Save a snapshot unless a newer one is saved already. Durable when this returns: only
    /// then may the log be purged up to it.
    pub(crate) fn save(&self, meta: &Meta, data: &[u8]) -> Result<(), StorageError> {
        let mut current = self.current.lock();
        if let Some(cur) = current.as_ref() {
            if cur.last_log_id > meta.last_log_id {
                tracing::info!(
                    "snapshot {} not saved: {} is newer",
                    meta.snapshot_id,
                    cur.snapshot_id
                );
                return Ok(());
            }
        }
        let meta_bytes =
            bincode::serde::encode_to_vec(meta, bincode::config::standard()).map_err(|source| {
                StorageError::Encode {
                    what: "snapshot meta",
                    source,
                }
            })?;
        let meta_len = u32::try_from(meta_bytes.len()).map_err(|_| StorageError::Encode {
            what: "snapshot meta",
            source: bincode::error::EncodeError::Other("meta larger than 4 GiB"),
        })?;
        let meta_len = meta_len.to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        for part in [&MAGIC[..], &meta_len, &meta_bytes, data] {
            crc.update(part);
        }
        let crc = crc.finalize().to_le_bytes();
        // Written to a temporary file, fsynced, renamed over the old one, directory fsynced.
        write_atomic(
            &self.dir,
            FILE,
            &[MAGIC, &meta_len, &meta_bytes, data, &crc],
        )?;
        *current = Some(meta.clone());
        Ok(())
    }
}

fn corrupt(path: &Path, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        what: "snapshot file",
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn read_file(path: &Path) -> Result<Option<Saved>, StorageError> {
    let mut bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("read", path)(e)),
    };
    let fixed = MAGIC.len() + 4 + 4;
    if bytes.len() < fixed || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(path, "not a raftmq snapshot"));
    }
    let body_len = bytes.len() - 4;
    let want = u32::from_le_bytes([
        bytes[body_len],
        bytes[body_len + 1],
        bytes[body_len + 2],
        bytes[body_len + 3],
    ]);
    if crc32fast::hash(&bytes[..body_len]) != want {
        return Err(corrupt(path, "checksum mismatch"));
    }
    let m = MAGIC.len();
    let meta_len = u32::from_le_bytes([bytes[m], bytes[m + 1], bytes[m + 2], bytes[m + 3]]);
    let meta_start = m + 4;
    let meta_end = meta_start + meta_len as usize;
    if meta_end > body_len {
        return Err(corrupt(path, "meta runs past the end"));
    }
    let (meta, used) = bincode::serde::decode_from_slice::<Meta, _>(
        &bytes[meta_start..meta_end],
        bincode::config::standard(),
    )
    .map_err(|e| corrupt(path, format!("meta: {e}")))?;
    if used != meta_end - meta_start {
        return Err(corrupt(path, "meta has trailing bytes"));
    }
    // Keep only the state bytes, in place.
    bytes.truncate(body_len);
    bytes.drain(..meta_end);
    Ok(Some((meta, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};
    use std::collections::BTreeSet;

    fn meta(index: u64, id: &str) -> Meta {
        let log_id = LogId::new(CommittedLeaderId::new(2, NodeId(1)), index);
        Meta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::new(
                Some(log_id),
                Membership::new(vec![BTreeSet::from([NodeId(1)])], ()),
            ),
            snapshot_id: id.into(),
        }
    }

    #[test]
    fn saved_snapshot_reads_back_and_older_ones_never_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let (snaps, saved) = Snapshots::open(dir.path()).unwrap();
        assert!(saved.is_none());
        snaps.save(&meta(10, "a"), b"state-10").unwrap();
        snaps.save(&meta(5, "b"), b"state-5").unwrap();
        let (m, data) = snaps.read().unwrap().unwrap();
        assert_eq!(m, meta(10, "a"));
        assert_eq!(data, b"state-10");

        let (_, saved) = Snapshots::open(dir.path()).unwrap();
        assert_eq!(saved, Some((meta(10, "a"), b"state-10".to_vec())));
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "only the latest snapshot is kept");
    }

    #[test]
    fn damaged_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (snaps, _) = Snapshots::open(dir.path()).unwrap();
        snaps.save(&meta(3, "x"), b"some state").unwrap();
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            Snapshots::open(dir.path()),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
