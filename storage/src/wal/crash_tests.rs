//! kill -9 at random points. The test binary runs itself as a child (selected by an
//! environment variable) that opens the WAL and appends in a loop with many appends in flight
//! (so kills land inside group commits and segment rollovers too), printing `ACK n` only
//! from the flush completion. The parent kills it after a random number of lines, reopens the
//! log and checks: open never fails, every acknowledged entry is there and intact, the log is
//! contiguous, and the vote and purge point the child reported are kept.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

use super::tests::{all, entry};
use super::*;

const CHILD_DIR: &str = "RAFTMQ_WAL_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "RAFTMQ_WAL_CRASH_CHILD_ROUND";
const CHILD_TEST: &str = "wal::crash_tests::crash_child";
const SEGMENT_BYTES: u64 = 256 << 10;
const IN_FLIGHT: usize = 64;
const ROUNDS: u64 = 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The child: runs only when the parent sets `CHILD_DIR`, otherwise passes at once.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(child(Path::new(&dir), round));
}

async fn child(dir: &Path, round: u64) {
    let mut wal = Wal::open(dir, SEGMENT_BYTES).unwrap();
    wal.save_vote(&Vote::new(round, NodeId(1))).await.unwrap();
    say(format!("VOTE {round}"));
    let mut rng = Rng(round.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let window = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut next = wal.last_log_id().map_or(1, |l| l.index + 1);
    loop {
        let permit = Arc::clone(&window).acquire_owned().await.unwrap();
        let n = 1 + rng.next() % 4;
        let batch: Vec<_> = (next..next + n).map(|i| entry(1, i)).collect();
        let last = next + n - 1;
        wal.append(
            batch,
            Box::new(move |r| {
                if r.is_ok() {
                    say(format!("ACK {last}"));
                }
                drop(permit);
            }),
        )
        .await
        .unwrap();
        next += n;
        if rng.next() % 300 == 7 && next > 500 {
            let upto = next - 400;
            wal.purge(super::tests::log_id(1, upto)).await.unwrap();
            say(format!("PURGE {upto}"));
        }
    }
}

/// What the parent learned from one child's output.
#[derive(Default)]
struct Seen {
    vote: Option<u64>,
    acked: u64,
    purged: u64,
}

fn run_child(dir: &Path, round: u64, kill_after: u64, seen: &mut Seen) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = 0;
    let mut killed = false;
    loop {
        // A stuck child fails the test instead of hanging it.
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("round {round}: child silent for 30 s");
            }
        };
        let mut words = line.split_whitespace();
        let (Some(word), Some(Ok(n))) = (words.next(), words.next().map(str::parse::<u64>)) else {
            continue;
        };
        match word {
            "VOTE" => seen.vote = Some(n),
            "ACK" => seen.acked = seen.acked.max(n),
            "PURGE" => seen.purged = seen.purged.max(n),
            _ => continue,
        }
        lines += 1;
        if lines >= kill_after && !killed {
            // SIGKILL: no destructors, no flush; lines already printed stay in the pipe and
            // are still read above until EOF.
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(killed, "round {round}: child exited by itself: {status}");
}

/// Simulate a power cut on top of the kill: the page cache after the last acknowledged sync
/// is lost, so cut the last segment at a random offset (inside a record or not) anywhere
/// after the last record known to be durable.
fn lose_unsynced_tail(dir: &Path, round: u64, seen: &Seen, acked: u64, rng: &mut Rng) {
    let Some(last) = segment::list(dir).unwrap().pop() else {
        return;
    };
    let mut durable_end = 0;
    let scan = segment::scan(&last, |rec, end| {
        let known_durable = match &rec {
            Record::Entry(e) => e.log_id.index <= acked,
            Record::Vote(v) => seen.vote.is_some() && *v == Vote::new(round, NodeId(1)),
            // Kept whether reported or not: a purge deletes segments only after its record
            // is synced, so losing the record once segments are gone cannot happen.
            Record::Purge(_) => true,
            _ => false,
        };
        if known_durable {
            durable_end = end;
        }
        Ok(())
    })
    .unwrap();
    if scan.file_len > durable_end {
        let cut = durable_end + rng.next() % (scan.file_len - durable_end + 1);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&last.path)
            .unwrap()
            .set_len(cut)
            .unwrap();
    }
}

#[test]
fn kill_9_never_loses_an_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut acked = 0;
    let mut purged = 0;
    for round in 1..=ROUNDS {
        let mut seen = Seen::default();
        let kill_after = 1 + rng.next() % 1500;
        run_child(dir.path(), round, kill_after, &mut seen);
        acked = acked.max(seen.acked);
        purged = purged.max(seen.purged);
        if rng.next() % 2 == 1 {
            lose_unsynced_tail(dir.path(), round, &seen, acked, &mut rng);
        }

        let wal = Wal::open(dir.path(), SEGMENT_BYTES)
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): open failed: {e}"));
        if seen.vote.is_some() {
            assert_eq!(
                wal.vote(),
                Some(Vote::new(round, NodeId(1))),
                "round {round}"
            );
        }
        let got_purged = wal.purged().map_or(0, |p| p.index);
        assert!(got_purged >= purged, "round {round}: purge point went back");
        let got = all(&wal);
        let first = got.first().map_or(got_purged + 1, |e| e.log_id.index);
        assert_eq!(
            first,
            got_purged + 1,
            "round {round}: entries left below the purge point"
        );
        for (i, e) in got.iter().enumerate() {
            let index = first + i as u64;
            assert_eq!(
                e,
                &entry(1, index),
                "round {round} (seed {seed}): entry {index}"
            );
        }
        let last = first + got.len() as u64;
        assert!(
            last > acked || acked <= got_purged,
            "round {round} (seed {seed}): acknowledged up to {acked}, log ends before {last}"
        );
        drop(wal);
    }
    println!(
        "{ROUNDS} kill -9 rounds in {:?}; {acked} entries acknowledged",
        started.elapsed()
    );
}
