//! The storage crate's error enum. I/O failures, corruption found on disk and failures of the
//! state machine are kept apart, so the caller (and the operator reading the log) can tell
//! "the disk said no" from "the bytes on disk are wrong".

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    /// A system call failed (`op` names it: open, write, fdatasync, rename, ...).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Bytes on disk that cannot be trusted and cannot be repaired by truncating a torn tail
    /// (a bad record in the middle of the log, a snapshot file whose checksum fails).
    #[error("corrupt {what} in {}: {detail}", path.display())]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: bincode::error::EncodeError,
    },
    /// The sled mirror failed (it is only a cache of the state; see `mirror`).
    #[error("state-machine mirror (sled): {0}")]
    Mirror(#[from] sled::Error),
    /// The replicated state refused to encode or decode its bytes.
    #[error("state machine: {0}")]
    State(#[from] raftmq_raft::RaftError),
    /// An append that would leave a hole in the log (or overwrite without a truncate): a bug
    /// in the caller, refused so that the log on disk stays contiguous.
    #[error("append of log index {got} where index {expected} was expected")]
    NotContiguous { expected: u64, got: u64 },
    /// An earlier write or sync of the log failed: what reached the disk is unknown, so the
    /// log refuses all further work until it is reopened (and its tail checked).
    #[error("write-ahead log unusable after an earlier failure: {0}")]
    Poisoned(String),
    /// A restore into a data directory that already holds something (without `force`).
    #[error("data directory {} is not empty: a restore seeds a brand-new node (use --force to replace what it holds)", .0.display())]
    NotEmpty(PathBuf),
    /// A background thread or blocking task died or went away.
    #[error("background task: {0}")]
    Task(String),
}

impl StorageError {
    /// `map_err` helper: `file.sync_data().map_err(StorageError::io("fdatasync", &path))`.
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.to_path_buf();
        move |source| StorageError::Io { op, path, source }
    }
}

impl From<tokio::task::JoinError> for StorageError {
    fn from(e: tokio::task::JoinError) -> Self {
        StorageError::Task(e.to_string())
    }
}
