//! What one WAL record holds and how it is framed on disk.
//!
//! Frame: `len: u32 LE | crc: u32 LE | payload (len bytes)`, where `crc` is crc32 over the
//! four length bytes followed by the payload, so a damaged length is caught too. The payload
//! is a `Record` encoded with bincode 2 (serde, standard config).

use openraft::{Entry, LogId, Vote};
use raftmq_raft::{NodeId, TypeConfig};
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// Bytes in a frame header (length + checksum).
pub(crate) const FRAME_HEADER: usize = 8;

/// The on-disk format version written in every segment header.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The non-entry state of the log. Every segment starts with a copy of it (see `Record`), so
/// deleting older segments never loses a vote, the purge point or the committed id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub vote: Option<Vote<NodeId>>,
    pub committed: Option<LogId<NodeId>>,
    pub purged: Option<LogId<NodeId>>,
}

/// One record. Generic over the entry so that appends encode `Record<&Entry>` without cloning
/// and recovery decodes `Record<Entry>`: serde gives both the same bytes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Record<E> {
    /// First record of every segment: the format version and the state as of its creation.
    Header {
        version: u32,
        meta: Meta,
    },
    Entry(E),
    /// Entries with index >= `since` are gone.
    Truncate {
        since: u64,
    },
    /// Entries up to and including this id are gone; it becomes the purge point.
    Purge(LogId<NodeId>),
    Vote(Vote<NodeId>),
    Committed(Option<LogId<NodeId>>),
}

pub(crate) type OwnedRecord = Record<Entry<TypeConfig>>;
pub(crate) type RecordRef<'a> = Record<&'a Entry<TypeConfig>>;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Append one framed record to `buf`.
pub(crate) fn encode_into(rec: &RecordRef<'_>, buf: &mut Vec<u8>) -> Result<(), StorageError> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER]);
    let encoded = bincode::serde::encode_into_std_write(rec, buf, config());
    let payload_len = match encoded {
        Ok(n) => n,
        Err(source) => {
            buf.truncate(start);
            return Err(StorageError::Encode {
                what: "log record",
                source,
            });
        }
    };
    let Ok(len) = u32::try_from(payload_len) else {
        buf.truncate(start);
        return Err(StorageError::Encode {
            what: "log record",
            source: bincode::error::EncodeError::Other("record larger than 4 GiB"),
        });
    };
    let len = len.to_le_bytes();
    let crc = checksum(len, &buf[start + FRAME_HEADER..]);
    buf[start..start + 4].copy_from_slice(&len);
    buf[start + 4..start + FRAME_HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Split a frame header into (payload length, expected checksum).
pub(crate) fn parse_header(h: &[u8; FRAME_HEADER]) -> (u32, u32) {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (len, crc)
}

/// Whether `payload` matches the checksum of its frame.
pub(crate) fn checksum_ok(len: u32, crc: u32, payload: &[u8]) -> bool {
    checksum(len.to_le_bytes(), payload) == crc
}

/// Decode a payload whose checksum already matched. A failure here is not a torn write (the
/// checksum proves the bytes are what was written): it is a format mismatch or a bug.
pub(crate) fn decode(payload: &[u8]) -> Result<OwnedRecord, String> {
    match bincode::serde::decode_from_slice::<OwnedRecord, _>(payload, config()) {
        Ok((rec, used)) if used == payload.len() => Ok(rec),
        Ok((_, used)) => Err(format!(
            "record decoded from {used} of its {} bytes",
            payload.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};
    use raftmq_raft::Command;

    fn frame(rec: &RecordRef<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_into(rec, &mut buf).unwrap();
        buf
    }

    fn open_frame(buf: &[u8]) -> OwnedRecord {
        let header: [u8; FRAME_HEADER] = buf[..FRAME_HEADER].try_into().unwrap();
        let (len, crc) = parse_header(&header);
        let payload = &buf[FRAME_HEADER..];
        assert_eq!(len as usize, payload.len());
        assert!(checksum_ok(len, crc, payload));
        decode(payload).unwrap()
    }

    #[test]
    fn entry_round_trips_through_a_borrowed_encoding() {
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(3, NodeId(2)), 17),
            payload: EntryPayload::Normal(Command {
                now_ms: 99,
                ops: Vec::new(),
            }),
        };
        match open_frame(&frame(&Record::Entry(&entry))) {
            Record::Entry(got) => assert_eq!(got, entry),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn any_flipped_bit_fails_the_checksum() {
        let meta = Meta {
            vote: Some(Vote::new(4, NodeId(1))),
            ..Meta::default()
        };
        let buf = frame(&Record::Header {
            version: FORMAT_VERSION,
            meta,
        });
        for byte in 0..buf.len() {
            let mut bad = buf.clone();
            bad[byte] ^= 0x10;
            let header: [u8; FRAME_HEADER] = bad[..FRAME_HEADER].try_into().unwrap();
            let (len, crc) = parse_header(&header);
            let ok = len as usize == bad.len() - FRAME_HEADER
                && checksum_ok(len, crc, &bad[FRAME_HEADER..]);
            assert!(!ok, "flip in byte {byte} went unnoticed");
        }
    }
}
