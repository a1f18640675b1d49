//! The sled mirror of the state machine: every key the state reports dirty, plus the last
//! applied log id and membership, written in one sled batch per apply call. It lets a
//! restart load the state instead of replaying the log from the last snapshot.
//!
//! sled is never the place where durability is promised (its flush is not power-safe). Its
//! batches are atomic and crash recovery yields a prefix of them, so whatever survives is a
//! consistent state *as of its own applied id*, which `open` checks against the snapshot.
//! A missing applied id means "do not trust this mirror" (it is removed first when the mirror
//! is rewritten, and put back last).

use std::fs;
use std::path::{Path, PathBuf};

use openraft::{LogId, StoredMembership};
use raftmq_raft::{Member, MirrorWrite, NodeId, State};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StorageError;

const APPLIED: &[u8] = b"\x00applied";
const MEMBERSHIP: &[u8] = b"\x00membership";
/// State keys live under this prefix, apart from the meta keys above.
const STATE: u8 = 0x01;

/// What the mirror says it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub last: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, Member>,
}

#[derive(Clone)]
pub(crate) struct Mirror {
    path: PathBuf,
    db: sled::Db,
}

impl Mirror {
    /// Open the sled database at `path`. One that sled itself finds corrupt is deleted and
    /// started afresh: it holds nothing the snapshot and the log cannot rebuild. (sled also
    /// takes an exclusive lock here, so a second process on the same data dir fails.)
    pub(crate) fn open(path: &Path, cache_bytes: u64) -> Result<Mirror, StorageError> {
        let config = || sled::Config::new().path(path).cache_capacity(cache_bytes);
        let db = match config().open() {
            Ok(db) => db,
            Err(sled::Error::Corruption { at, .. }) => {
                tracing::warn!(
                    "mirror {} is corrupt (at {at:?}); rebuilding it from the snapshot and log",
                    path.display()
                );
                fs::remove_dir_all(path).map_err(StorageError::io("remove", path))?;
                config().open()?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Mirror {
            path: path.to_path_buf(),
            db,
        })
    }

    /// The applied id and membership the mirror holds, or `None` if it must not be trusted
    /// (never written, or a rewrite did not finish).
    pub(crate) fn applied(&self) -> Result<Option<Applied>, StorageError> {
        let Some(last) = self.db.get(APPLIED)? else {
            return Ok(None);
        };
        let last = self.decode("applied log id", &last)?;
        let membership = match self.db.get(MEMBERSHIP)? {
            Some(m) => self.decode("membership", &m)?,
            None => StoredMembership::default(),
        };
        Ok(Some(Applied { last, membership }))
    }

    /// Rebuild the state from every mirrored key.
    pub(crate) fn load_state(&self) -> Result<State, StorageError> {
        let mut failed = None;
        let entries = self.db.scan_prefix([STATE]).map_while(|item| match item {
            Ok((k, v)) => Some((k[1..].to_vec(), v.to_vec())),
            Err(e) => {
                failed = Some(e);
                None
            }
        });
        let state = State::from_mirror(entries);
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(state?)
    }

    /// Write one apply call's changes and the new applied id (and membership, when it
    /// changed) in ONE atomic batch. No flush: sled's background flush is enough for a
    /// mirror that is checked against the snapshot on open.
    pub(crate) fn write(
        &self,
        writes: Vec<MirrorWrite>,
        last: Option<LogId<NodeId>>,
        membership: Option<&StoredMembership<NodeId, Member>>,
    ) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for w in writes {
            let key = state_key(&w.key);
            match w.value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        batch.insert(APPLIED, encode("applied log id", &last)?);
        if let Some(m) = membership {
            batch.insert(MEMBERSHIP, encode("membership", m)?);
        }
        Ok(self.db.apply_batch(batch)?)
    }

    /// Replace the whole content with `dump` (every key of a state) as of `applied`. The
    /// applied id is removed first and written last, so a crash midway leaves a mirror that
    /// `applied()` reports as untrusted.
    pub(crate) fn rewrite(
        &self,
        dump: Vec<MirrorWrite>,
        applied: &Applied,
    ) -> Result<(), StorageError> {
        self.invalidate()?;
        self.db.clear()?;
        self.write(dump, applied.last, Some(&applied.membership))
    }

    /// Mark the mirror untrusted: the next open rebuilds from the snapshot and the log.
    pub(crate) fn invalidate(&self) -> Result<(), StorageError> {
        self.db.remove(APPLIED)?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(
        &self,
        what: &'static str,
        bytes: &[u8],
    ) -> Result<T, StorageError> {
        match bincode::serde::decode_from_slice(bytes, bincode::config::standard()) {
            Ok((v, used)) if used == bytes.len() => Ok(v),
            Ok(_) => Err(self.corrupt(what, "trailing bytes".into())),
            Err(e) => Err(self.corrupt(what, e.to_string())),
        }
    }

    fn corrupt(&self, what: &'static str, detail: String) -> StorageError {
        StorageError::Corrupt {
            what,
            path: self.path.clone(),
            detail,
        }
    }
}

fn state_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(STATE);
    k.extend_from_slice(key);
    k
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|source| StorageError::Encode { what, source })
}
