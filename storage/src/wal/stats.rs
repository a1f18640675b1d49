//! Cheap counters about the write-ahead log, for metrics: relaxed atomics, read at scrape time.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Told the duration of every successful `fdatasync` on the flusher thread, e.g. to fill a
/// latency histogram: this crate knows no metrics library. It must return quickly.
pub type FsyncObserver = Box<dyn Fn(Duration) + Send + Sync>;

/// Live counters, shared between the log (writer), its flusher thread and whoever scrapes.
#[derive(Default)]
pub struct WalStats {
    fsyncs: AtomicU64,
    fsync_micros_total: AtomicU64,
    fsync_micros_last: AtomicU64,
    fsync_micros_max: AtomicU64,
    bytes_written: AtomicU64,
    completions: AtomicU64,
    observer: OnceLock<FsyncObserver>,
}

impl fmt::Debug for WalStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalStats")
            .field("snapshot", &self.snapshot())
            .field("observed", &self.observer.get().is_some())
            .finish()
    }
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStatsSnapshot {
    /// `fdatasync` calls on segments by the flusher (group commits and explicit syncs).
    pub fsyncs: u64,
    pub fsync_micros_total: u64,
    pub fsync_micros_last: u64,
    pub fsync_micros_max: u64,
    /// Bytes written to segments (frames included).
    pub bytes_written: u64,
    /// Appends and explicit syncs acknowledged by the flusher; `completions / fsyncs` is the
    /// average size of a group commit.
    pub completions: u64,
}

impl WalStats {
    pub fn snapshot(&self) -> WalStatsSnapshot {
        WalStatsSnapshot {
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            fsync_micros_total: self.fsync_micros_total.load(Ordering::Relaxed),
            fsync_micros_last: self.fsync_micros_last.load(Ordering::Relaxed),
            fsync_micros_max: self.fsync_micros_max.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            completions: self.completions.load(Ordering::Relaxed),
        }
    }

    /// Have `observer` told every fsync's duration from now on. Only the first observer
    /// set is kept; a second call returns false.
    pub fn observe_fsyncs(&self, observer: FsyncObserver) -> bool {
        self.observer.set(observer).is_ok()
    }

    pub(crate) fn record_fsync(&self, took: Duration) {
        if let Some(observe) = self.observer.get() {
            observe(took);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.fsync_micros_last.store(micros, Ordering::Relaxed);
        self.fsync_micros_max.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn record_write(&self, bytes: usize) {
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_completions(&self, n: usize) {
        self.completions.fetch_add(n as u64, Ordering::Relaxed);
    }
}
