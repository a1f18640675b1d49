//! Group commit: a dedicated thread that makes appends durable. Writers hand it a completion
//! after their bytes are written; it takes every queued completion at once, does ONE
//! `fdatasync` per segment file they touched, then runs all of them in submission order.
//! Completions therefore fire only after the sync that covers their bytes.
//!
//! After a failed sync the state of the file on disk is unknown (a later successful sync
//! does not mean the earlier pages made it), so the flusher fails every completion from then
//! on; the log must be reopened, which checks the tail.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::error::StorageError;
use crate::wal::stats::WalStats;

/// What to run once a sync finished (or failed).
pub(crate) type Completion = Box<dyn FnOnce(io::Result<()>) + Send>;

struct Job {
    /// The segment the bytes were written to.
    file: Arc<File>,
    done: Completion,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(crate) fn start(stats: Arc<WalStats>) -> Result<Flusher, StorageError> {
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("raftmq-wal-flush".into())
            .spawn(move || run(&worker, &stats))
            .map_err(|e| StorageError::Task(format!("cannot start the WAL flusher: {e}")))?;
        Ok(Flusher {
            shared,
            thread: Some(thread),
        })
    }

    /// Run `done` after a sync of `file` that starts after this call, so it covers every byte
    /// written to `file` before the call.
    pub(crate) fn submit(&self, file: Arc<File>, done: Completion) {
        self.shared.queue.lock().jobs.push(Job { file, done });
        self.shared.wake.notify_one();
    }

    /// Wait until everything written to `file` so far is on disk (and every earlier
    /// submission has completed).
    pub(crate) async fn sync(&self, file: Arc<File>) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(
            file,
            Box::new(move |result| {
                // The waiter may have given up (its future dropped); nothing to tell then.
                let _ = tx.send(result);
            }),
        );
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("the WAL flusher stopped")))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread drains what is queued (syncing it) before it exits.
            if thread.join().is_err() {
                tracing::error!("the WAL flusher thread panicked");
            }
        }
    }
}

fn run(shared: &Shared, stats: &WalStats) {
    let mut failed: Option<(io::ErrorKind, String)> = None;
    loop {
        let batch = {
            let mut queue = shared.queue.lock();
            while queue.jobs.is_empty() && !queue.closed {
                shared.wake.wait(&mut queue);
            }
            if queue.jobs.is_empty() {
                return;
            }
            std::mem::take(&mut queue.jobs)
        };
        let result = sync_batch(&batch, stats, &mut failed);
        stats.record_completions(batch.len());
        for job in batch {
            let r = match &result {
                Ok(()) => Ok(()),
                Err((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            };
            (job.done)(r);
        }
    }
}

/// One `fdatasync` per distinct file in the batch, oldest segment first (a batch spans two
/// files only around a segment rollover).
fn sync_batch(
    batch: &[Job],
    stats: &WalStats,
    failed: &mut Option<(io::ErrorKind, String)>,
) -> Result<(), (io::ErrorKind, String)> {
    if let Some(f) = failed {
        return Err(f.clone());
    }
    let mut synced: Vec<&Arc<File>> = Vec::with_capacity(2);
    for job in batch {
        if synced.iter().any(|f| Arc::ptr_eq(f, &job.file)) {
            continue;
        }
        let started = Instant::now();
        // One fdatasync covers every append written to this file before the batch was taken;
        // only after it returns do the completions (openraft's "flushed" callbacks) fire.
        if let Err(e) = job.file.sync_data() {
            let f = (e.kind(), format!("fdatasync of a WAL segment failed: {e}"));
            tracing::error!("{}; the log refuses further work until reopened", f.1);
            *failed = Some(f.clone());
            return Err(f);
        }
        stats.record_fsync(started.elapsed());
        synced.push(&job.file);
    }
    Ok(())
}
