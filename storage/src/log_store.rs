//! openraft's `RaftLogStorage` over the write-ahead log, and the log reader that replication
//! tasks use (it reads the in-memory copy of the unpurged entries, never the disk).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError as RaftStorageError,
    StorageIOError, Vote,
};
use raftmq_raft::{NodeId, TypeConfig};

use crate::error::StorageError;
use crate::wal::{Entries, Wal, WalStats};

type RaftResult<T> = Result<T, RaftStorageError<NodeId>>;

/// The Raft log and vote. Hand it to `openraft::Raft::new`.
pub struct LogStore {
    wal: Wal,
    reader: LogReader,
}

/// A cheap, cloneable reader of the log entries.
#[derive(Clone)]
pub struct LogReader {
    entries: Entries,
}

impl LogStore {
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> Result<LogStore, StorageError> {
        let wal = Wal::open(dir, segment_bytes)?;
        let reader = LogReader {
            entries: wal.entries(),
        };
        Ok(LogStore { wal, reader })
    }

    pub(crate) fn is_fresh(&self) -> bool {
        self.wal.is_fresh()
    }

    /// fsync and write counters of this log.
    pub fn stats(&self) -> Arc<WalStats> {
        self.wal.stats()
    }
}

impl LogReader {
    fn range<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry<TypeConfig>> {
        let start = match range.start_bound() {
            Bound::Included(s) => Bound::Included(*s),
            Bound::Excluded(s) => Bound::Excluded(*s),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => Bound::Included(*e),
            Bound::Excluded(e) => Bound::Excluded(*e),
            Bound::Unbounded => Bound::Unbounded,
        };
        if is_empty(start, end) {
            // BTreeMap::range panics on an inverted range.
            return Vec::new();
        }
        self.entries
            .read()
            .range((start, end))
            .map(|(_, e)| e.clone())
            .collect()
    }
}

fn is_empty(start: Bound<u64>, end: Bound<u64>) -> bool {
    let first = match start {
        Bound::Included(s) => s,
        Bound::Excluded(s) => match s.checked_add(1) {
            Some(s) => s,
            None => return true,
        },
        Bound::Unbounded => 0,
    };
    match end {
        Bound::Included(e) => first > e,
        Bound::Excluded(e) => first >= e,
        Bound::Unbounded => false,
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> RaftResult<Vec<Entry<TypeConfig>>> {
        Ok(self.range(range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> RaftResult<Vec<Entry<TypeConfig>>> {
        Ok(self.reader.range(range))
    }
}

fn write_err(e: StorageError) -> RaftStorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> RaftResult<LogState<TypeConfig>> {
        Ok(LogState {
            last_purged_log_id: self.wal.purged(),
            last_log_id: self.wal.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> RaftResult<()> {
        // The vote is fsynced before this returns.
        self.wal
            .save_vote(vote)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> RaftResult<Option<Vote<NodeId>>> {
        Ok(self.wal.vote())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> RaftResult<()> {
        self.wal.save_committed(committed).map_err(write_err)
    }

    async fn read_committed(&mut self) -> RaftResult<Option<LogId<NodeId>>> {
        Ok(self.wal.committed())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> RaftResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        // The callback fires from the flusher thread, after the fdatasync covering these
        // entries (group commit: one sync for every append written since the last one).
        let done = Box::new(move |result| callback.log_io_completed(result));
        self.wal.append(entries, done).await.map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> RaftResult<()> {
        self.wal.truncate(log_id.index).await.map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> RaftResult<()> {
        self.wal.purge(log_id).await.map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::is_empty;
    use std::ops::Bound::{Excluded, Included, Unbounded};

    #[test]
    fn empty_ranges_are_recognised() {
        assert!(is_empty(Included(3), Excluded(3)));
        assert!(is_empty(Included(5), Included(4)));
        assert!(is_empty(Excluded(u64::MAX), Unbounded));
        assert!(!is_empty(Included(3), Included(3)));
        assert!(!is_empty(Unbounded, Excluded(1)));
        assert!(!is_empty(Excluded(2), Unbounded));
    }
}
