//! The write-ahead log: the Raft log and vote, in append-only segment files with checksummed
//! records, made durable by `fdatasync` with group commit.
//!
//! Rules this module keeps (recovery depends on them):
//! - Records are only ever appended. Truncate, purge, vote and commit point are records too;
//!   replaying the records in order rebuilds the log exactly.
//! - Every segment but the last is fully synced before the next one is created, so damage in
//!   the last segment is a torn write (cut off on open) and damage anywhere else is corruption
//!   (refused on open).
//! - Every segment begins with a header carrying the vote, commit point and purge point, so
//!   whole segments below the purge point can be deleted without losing any of them.
//! - What recovery keeps is always a prefix of what was written: nothing after a bad record
//!   is trusted, and a record is acknowledged only after a sync that covers all before it.

mod flusher;
pub(crate) mod record;
mod segment;
mod stats;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{Entry, LogId, Vote};
use parking_lot::RwLock;
use raftmq_raft::{NodeId, TypeConfig};

use crate::error::StorageError;
use crate::fs_util::{create_dir_durable, sync_dir};
pub(crate) use flusher::Completion;
use flusher::Flusher;
use record::{Meta, OwnedRecord, Record, RecordRef, FORMAT_VERSION};
use segment::{SegmentFile, Tail};
pub use stats::{FsyncObserver, WalStats, WalStatsSnapshot};

/// The entries not yet purged, shared with log readers (replication tasks).
pub(crate) type Entries = Arc<RwLock<BTreeMap<u64, Entry<TypeConfig>>>>;

/// The log as the records describe it. Replay on open and the live operations change it
/// through the same methods, so both always agree.
#[derive(Default)]
struct Content {
    meta: Meta,
    entries: Entries,
}

impl Content {
    /// Apply one replayed record; returns the entry index if it was an entry.
    fn apply(&mut self, rec: OwnedRecord) -> Option<u64> {
        match rec {
            Record::Header { meta, .. } => {
                let purged = meta.purged;
                self.meta = meta;
                if let Some(p) = purged {
                    self.drop_upto(p.index);
                }
                None
            }
            Record::Entry(entry) => {
                let index = entry.log_id.index;
                self.insert(vec![entry]);
                Some(index)
            }
            Record::Truncate { since } => {
                self.truncate(since);
                None
            }
            Record::Purge(upto) => {
                self.purge(upto);
                None
            }
            Record::Vote(vote) => {
                self.meta.vote = Some(vote);
                None
            }
            Record::Committed(committed) => {
                self.meta.committed = committed;
                None
            }
        }
    }

    /// The index the next append must have, if the log constrains it.
    fn next_index(&self) -> Option<u64> {
        let last = self.entries.read().last_key_value().map(|(i, _)| *i);
        last.or(self.meta.purged.map(|p| p.index)).map(|i| i + 1)
    }

    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let last = self.entries.read().last_key_value().map(|(_, e)| e.log_id);
        last.or(self.meta.purged)
    }

    fn insert(&mut self, entries: Vec<Entry<TypeConfig>>) {
        let purged = self.meta.purged.map(|p| p.index);
        let mut map = self.entries.write();
        for entry in entries {
            if purged.is_some_and(|p| entry.log_id.index <= p) {
                continue;
            }
            map.insert(entry.log_id.index, entry);
        }
    }

    fn truncate(&mut self, since: u64) {
        let mut map = self.entries.write();
        drop(map.split_off(&since));
    }

    fn purge(&mut self, upto: LogId<NodeId>) {
        if self.meta.purged >= Some(upto) {
            return;
        }
        self.meta.purged = Some(upto);
        self.drop_upto(upto.index);
    }

    fn drop_upto(&mut self, index: u64) {
        let mut map = self.entries.write();
        let keep = map.split_off(&index.saturating_add(1));
        *map = keep;
    }
}

/// A segment before the active one: fully synced, deletable once purged past.
struct Closed {
    seg: SegmentFile,
    max_index: Option<u64>,
}

/// The segment being appended to.
struct Active {
    seg: SegmentFile,
    file: Arc<File>,
    len: u64,
    max_index: Option<u64>,
}

pub(crate) struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    content: Content,
    closed: VecDeque<Closed>,
    active: Active,
    flusher: Flusher,
    stats: Arc<WalStats>,
    /// Reused encode buffer: all records of one operation go out in one `write`.
    buf: Vec<u8>,
    /// Set when a write or sync failed: what is on disk is unknown until reopened.
    poisoned: Option<String>,
    fresh: bool,
}

impl Wal {
    /// Open (or create) the log in `dir`: replay every segment, cut a torn tail of the last
    /// one at its last good record, and refuse damage anywhere else.
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> Result<Wal, StorageError> {
        create_dir_durable(dir)?;
        let segments = segment::list(dir)?;
        let count = segments.len();
        let mut content = Content::default();
        let mut closed = VecDeque::new();
        let mut last = None;
        for (i, seg) in segments.into_iter().enumerate() {
            let mut max_index: Option<u64> = None;
            let mut first = true;
            let scan = segment::scan(&seg, |rec, _end| {
                if first {
                    check_header(&seg, &rec)?;
                    first = false;
                }
                if let Some(index) = content.apply(rec) {
                    max_index = max_index.max(Some(index));
                }
                Ok(())
            })?;
            if i + 1 < count {
                if let Tail::Torn { detail } = scan.tail {
                    return Err(StorageError::Corrupt {
                        what: "log segment that is not the last",
                        path: seg.path,
                        detail: format!("bad record at offset {}: {detail}", scan.good_len),
                    });
                }
                if scan.good_len == 0 {
                    return Err(StorageError::Corrupt {
                        what: "log segment that is not the last",
                        path: seg.path,
                        detail: "empty".into(),
                    });
                }
                closed.push_back(Closed { seg, max_index });
            } else {
                last = Some((seg, scan, max_index));
            }
        }
        let fresh = content.meta == Meta::default() && content.entries.read().is_empty();
        let active = match last {
            None => {
                let (seg, file) = segment::create(dir, 1)?;
                start_segment(seg, file, &content.meta)?
            }
            Some((seg, scan, max_index)) => {
                if let Tail::Torn { detail } = &scan.tail {
                    tracing::warn!(
                        "wal: torn tail in {}: keeping {} of {} bytes ({detail})",
                        seg.path.display(),
                        scan.good_len,
                        scan.file_len
                    );
                }
                let file = segment::open_for_append(&seg, scan.good_len)?;
                if scan.good_len == 0 {
                    // Cut off before its header was written: give it one now.
                    start_segment(seg, file, &content.meta)?
                } else {
                    Active {
                        seg,
                        file: Arc::new(file),
                        len: scan.good_len,
                        max_index,
                    }
                }
            }
        };
        let stats = Arc::new(WalStats::default());
        let flusher = Flusher::start(Arc::clone(&stats))?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            content,
            closed,
            active,
            flusher,
            stats,
            buf: Vec::new(),
            poisoned: None,
            fresh,
        })
    }

    /// No vote, no entry, no purge point, no commit point was ever recorded.
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh
    }

    pub(crate) fn stats(&self) -> Arc<WalStats> {
        Arc::clone(&self.stats)
    }

    pub(crate) fn entries(&self) -> Entries {
        Arc::clone(&self.content.entries)
    }

    pub(crate) fn vote(&self) -> Option<Vote<NodeId>> {
        self.content.meta.vote
    }

    pub(crate) fn committed(&self) -> Option<LogId<NodeId>> {
        self.content.meta.committed
    }

    pub(crate) fn purged(&self) -> Option<LogId<NodeId>> {
        self.content.meta.purged
    }

    pub(crate) fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.content.last_log_id()
    }

    /// Write `entries` and return; `done` runs once they are on disk. They are readable
    /// (through `entries()`) as soon as this returns. They must continue the log: no hole
    /// and no overwrite without a truncate first.
    pub(crate) async fn append(
        &mut self,
        mut entries: Vec<Entry<TypeConfig>>,
        done: Completion,
    ) -> Result<(), StorageError> {
        self.usable()?;
        if self.active.len >= self.segment_bytes {
            self.roll().await?;
        }
        // Entries at or below the purge point are already covered by it (openraft's suite
        // appends some after purging past them): nothing to keep.
        if let Some(purged) = self.content.meta.purged {
            entries.retain(|e| e.log_id.index > purged.index);
        }
        let mut expected = self.content.next_index();
        for entry in &entries {
            let got = entry.log_id.index;
            if let Some(expected) = expected.filter(|e| *e != got) {
                return Err(StorageError::NotContiguous { expected, got });
            }
            expected = Some(got + 1);
        }
        self.buf.clear();
        for entry in &entries {
            record::encode_into(&Record::Entry(entry), &mut self.buf)?;
        }
        self.write_buf()?;
        if let Some(last) = entries.last() {
            self.active.max_index = self.active.max_index.max(Some(last.log_id.index));
        }
        self.content.insert(entries);
        // Durability: `done` (openraft's flushed callback) runs only after the flusher's next
        // fdatasync of this segment, which covers the bytes just written.
        self.flusher.submit(Arc::clone(&self.active.file), done);
        Ok(())
    }

    /// Record the vote; returns only once it is on disk (a node must never forget a vote it
    /// gave, or it could vote twice in one term).
    pub(crate) async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_record(&Record::Vote(*vote))?;
        self.content.meta.vote = Some(*vote);
        self.sync_active().await
    }

    /// Record the commit point without waiting for a sync: it becomes durable with the next
    /// one. Losing it in a crash only means the restarted node re-applies less on its own
    /// (it learns the rest from the leader); it never claims more than was committed.
    pub(crate) fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        self.write_record(&Record::Committed(committed))?;
        self.content.meta.committed = committed;
        Ok(())
    }

    /// Remove entries with index >= `since`; durable before returning, so a removed entry can
    /// never come back after a crash.
    pub(crate) async fn truncate(&mut self, since: u64) -> Result<(), StorageError> {
        self.write_record(&Record::Truncate { since })?;
        self.content.truncate(since);
        self.sync_active().await
    }

    /// Remove entries up to and including `upto`, then delete whole segments that hold
    /// nothing newer. The purge point is synced before any segment is deleted.
    pub(crate) async fn purge(&mut self, upto: LogId<NodeId>) -> Result<(), StorageError> {
        if self.content.meta.purged >= Some(upto) {
            return Ok(());
        }
        self.write_record(&Record::Purge(upto))?;
        self.content.purge(upto);
        self.sync_active().await?;
        let mut deleted = false;
        while let Some(front) = self.closed.front() {
            if front.max_index.is_some_and(|m| m > upto.index) {
                break;
            }
            // Oldest first: whatever a crash leaves is still a contiguous run of segments.
            fs::remove_file(&front.seg.path)
                .map_err(StorageError::io("remove segment", &front.seg.path))?;
            self.closed.pop_front();
            deleted = true;
        }
        if deleted {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn usable(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(why) => Err(StorageError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn write_record(&mut self, rec: &RecordRef<'_>) -> Result<(), StorageError> {
        self.usable()?;
        self.buf.clear();
        record::encode_into(rec, &mut self.buf)?;
        self.write_buf()
    }

    /// Write the frames in `buf` to the active segment. A failed or short write leaves
    /// unknown bytes that later records would sit behind, so it poisons the log.
    fn write_buf(&mut self) -> Result<(), StorageError> {
        let result = (&*self.active.file).write_all(&self.buf);
        let written = self.buf.len();
        self.buf.clear();
        match result {
            Ok(()) => {
                self.active.len += written as u64;
                self.stats.record_write(written);
                Ok(())
            }
            Err(e) => {
                self.poisoned = Some(format!("write failed: {e}"));
                Err(StorageError::Io {
                    op: "write segment",
                    path: self.active.seg.path.clone(),
                    source: e,
                })
            }
        }
    }

    /// Wait for a sync of the active segment through the flusher (so it stays in order with
    /// the appends' completions).
    async fn sync_active(&mut self) -> Result<(), StorageError> {
        match self.flusher.sync(Arc::clone(&self.active.file)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.poisoned = Some(format!("sync failed: {e}"));
                Err(StorageError::Io {
                    op: "fdatasync segment",
                    path: self.active.seg.path.clone(),
                    source: e,
                })
            }
        }
    }

    /// Close the active segment and start the next one.
    async fn roll(&mut self) -> Result<(), StorageError> {
        // Every segment but the last is fully durable: recovery relies on it to tell a torn
        // tail (last segment) from corruption (anywhere else).
        self.sync_active().await?;
        let (seg, file) = segment::create(&self.dir, self.active.seg.seq + 1)?;
        let next = Active {
            seg,
            file: Arc::new(file),
            len: 0,
            max_index: None,
        };
        let old = std::mem::replace(&mut self.active, next);
        self.closed.push_back(Closed {
            seg: old.seg,
            max_index: old.max_index,
        });
        // The header carries vote, commit and purge points forward, so the older segments can
        // go without losing them. It becomes durable with the next sync, before anything
        // written after it is acknowledged.
        let meta = self.content.meta.clone();
        self.write_record(&Record::Header {
            version: FORMAT_VERSION,
            meta,
        })
    }
}

/// The first record of a segment must be a header of our format.
fn check_header(seg: &SegmentFile, rec: &OwnedRecord) -> Result<(), StorageError> {
    let detail = match rec {
        Record::Header { version, .. } if *version == FORMAT_VERSION => return Ok(()),
        Record::Header { version, .. } => {
            format!("format version {version}, expected {FORMAT_VERSION}")
        }
        _ => "does not start with a header".to_string(),
    };
    Err(StorageError::Corrupt {
        what: "log segment",
        path: seg.path.clone(),
        detail,
    })
}

/// Write a header into an empty segment and sync it (only on open, before any append).
fn start_segment(seg: SegmentFile, mut file: File, meta: &Meta) -> Result<Active, StorageError> {
    let mut buf = Vec::new();
    record::encode_into(
        &Record::Header {
            version: FORMAT_VERSION,
            meta: meta.clone(),
        },
        &mut buf,
    )?;
    file.write_all(&buf)
        .map_err(StorageError::io("write segment", &seg.path))?;
    file.sync_data()
        .map_err(StorageError::io("fdatasync segment", &seg.path))?;
    Ok(Active {
        seg,
        file: Arc::new(file),
        len: buf.len() as u64,
        max_index: None,
    })
}
