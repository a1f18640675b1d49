//! The raft crate's error enum.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RaftError {
    /// Snapshot or mirror bytes that do not decode: the caller must rebuild from elsewhere.
    #[error("corrupt state bytes ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A backup file that is not whole, not ours or of another format version.
    #[error("backup refused: {0}")]
    Backup(String),
    #[error("cannot encode state ({what}): {detail}")]
    Encode { what: &'static str, detail: String },
}
