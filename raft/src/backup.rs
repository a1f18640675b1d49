//! The backup file: the replicated state (`State::to_snapshot_bytes`) behind a versioned
//! header and followed by a SHA-256 of everything before it. It carries no membership, no
//! vote and no log ids, so it seeds a cluster of any node ids and addresses.
//!
//! Layout (integers little-endian):
//! `magic "RAFTMQBK" (8) | version: u32 | created_ms: u64 | applied_index: u64 |
//!  state length: u64 | state bytes | sha256 (32)`.
//! A truncated, padded or altered file fails the length or digest check before its state
//! bytes are decoded.

use ring::digest::{digest, SHA256, SHA256_OUTPUT_LEN};

use crate::error::RaftError;
use crate::state::State;

const MAGIC: &[u8; 8] = b"RAFTMQBK";
/// Bumped when the layout or the meaning of the state bytes changes incompatibly.
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8;

/// A backup as taken from the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// Wall-clock time the leader took it (milliseconds since the Unix epoch).
    pub created_ms: u64,
    /// The source cluster's applied log index when it was taken; for the operator only.
    pub applied_index: u64,
    /// `State::to_snapshot_bytes` of the source.
    pub state: Vec<u8>,
}

fn refused(detail: impl Into<String>) -> RaftError {
    RaftError::Backup(detail.into())
}

impl Backup {
    /// The bytes of the backup file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.state.len() + SHA256_OUTPUT_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.created_ms.to_le_bytes());
        out.extend_from_slice(&self.applied_index.to_le_bytes());
        out.extend_from_slice(&(self.state.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.state);
        let sum = digest(&SHA256, &out);
        out.extend_from_slice(sum.as_ref());
        out
    }

    /// Check and split a backup file. The state bytes are checked by the digest only;
    /// `state()` decodes them.
    pub fn decode(bytes: &[u8]) -> Result<Backup, RaftError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(refused("not a raftmq backup file (wrong magic bytes)"));
        }
        if bytes.len() < HEADER_LEN + SHA256_OUTPUT_LEN {
            return Err(refused(format!(
                "truncated: {} bytes, shorter than the header",
                bytes.len()
            )));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let mut v = [0u8; 4];
        v.copy_from_slice(&bytes[8..12]);
        let version = u32::from_le_bytes(v);
        if version != VERSION {
            return Err(refused(format!(
                "format version {version}; this raftmq reads version {VERSION}"
            )));
        }
        let created_ms = u64_at(12);
        let applied_index = u64_at(20);
        let state_len = u64_at(28);
        let expected = usize::try_from(state_len)
            .ok()
            .and_then(|n| n.checked_add(HEADER_LEN + SHA256_OUTPUT_LEN));
        if expected != Some(bytes.len()) {
            return Err(refused(format!(
                "{} bytes, but its header announces {state_len} bytes of state: the file is \
                 truncated or has trailing bytes",
                bytes.len()
            )));
        }
        let body_end = bytes.len() - SHA256_OUTPUT_LEN;
        if digest(&SHA256, &bytes[..body_end]).as_ref() != &bytes[body_end..] {
            return Err(refused("checksum mismatch: the file is corrupt"));
        }
        Ok(Backup {
            created_ms,
            applied_index,
            state: bytes[HEADER_LEN..body_end].to_vec(),
        })
    }

    /// Decode the state it holds.
    pub fn state(&self) -> Result<State, RaftError> {
        State::from_snapshot_bytes(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Backup {
        Backup {
            created_ms: 1_700_000_000_000,
            applied_index: 42,
            state: State::new().to_snapshot_bytes().unwrap(),
        }
    }

    #[test]
    fn round_trips() {
        let b = sample();
        let back = Backup::decode(&b.encode()).unwrap();
        assert_eq!(back, b);
        back.state().unwrap();
    }

    #[test]
    fn truncated_padded_or_altered_files_are_refused() {
        let bytes = sample().encode();
        for cut in [0, 5, HEADER_LEN, bytes.len() - 1] {
            let err = Backup::decode(&bytes[..cut]).unwrap_err().to_string();
            assert!(err.contains("backup"), "{cut}: {err}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(Backup::decode(&padded)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
        for at in [HEADER_LEN, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            let err = Backup::decode(&bad).unwrap_err().to_string();
            assert!(err.contains("checksum"), "{at}: {err}");
        }
        let mut other_version = bytes;
        other_version[8] = 9;
        assert!(Backup::decode(&other_version)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
    }
}
