//! WAL behaviour across reopen: what was appended comes back exactly; vote, truncate and
//! purge survive; a torn or damaged tail is cut at the last good record; segments roll over
//! and are deleted by purge.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::{CommittedLeaderId, EntryPayload, Membership};
use parking_lot::Mutex;
use raftmq_raft::{ClientId, Command, ConnId, Op};
use tokio::sync::oneshot;

use super::*;

pub(super) fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, NodeId(1)), index)
}

/// A normal entry whose content (and size, 0..3 KB) is a function of its index.
pub(super) fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    let size = (index * 7919 % 3000) as usize;
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Command {
            now_ms: index,
            ops: vec![Op::Unsubscribe {
                client: ClientId(format!("client-{index}")),
                conn: ConnId::default(),
                filters: vec![char::from(b'a' + (index % 26) as u8)
                    .to_string()
                    .repeat(size)],
            }],
        }),
    }
}

fn entries(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<Entry<TypeConfig>> {
    range.map(|i| entry(term, i)).collect()
}

/// Append and wait for the flush completion.
pub(super) async fn append(wal: &mut Wal, entries: Vec<Entry<TypeConfig>>) {
    let (tx, rx) = oneshot::channel();
    wal.append(
        entries,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )
    .await
    .unwrap();
    rx.await.unwrap().unwrap();
}

pub(super) fn all(wal: &Wal) -> Vec<Entry<TypeConfig>> {
    wal.entries().read().values().cloned().collect()
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    segment::list(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        fs::copy(item.path(), to.join(item.file_name())).unwrap();
    }
}

const BIG: u64 = 64 << 20;

#[tokio::test]
async fn reopen_returns_exactly_what_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    assert!(wal.is_fresh());
    let mut want = vec![Entry::<TypeConfig>::new_blank(log_id(1, 1))];
    want.push(Entry::new_membership(
        log_id(1, 2),
        Membership::new(vec![BTreeSet::from([NodeId(1), NodeId(2)])], ()),
    ));
    want.extend(entries(1, 3..=50));
    append(&mut wal, want[..2].to_vec()).await;
    for chunk in want[2..].chunks(7) {
        append(&mut wal, chunk.to_vec()).await;
    }
    wal.save_committed(Some(log_id(1, 40))).unwrap();
    assert_eq!(all(&wal), want);
    drop(wal);

    let wal = Wal::open(dir.path(), BIG).unwrap();
    assert!(!wal.is_fresh());
    assert_eq!(all(&wal), want);
    assert_eq!(wal.last_log_id(), Some(log_id(1, 50)));
    assert_eq!(wal.committed(), Some(log_id(1, 40)));
    assert_eq!(wal.purged(), None);
}

#[tokio::test]
async fn vote_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    wal.save_vote(&Vote::new(3, NodeId(2))).await.unwrap();
    wal.save_vote(&Vote::new(4, NodeId(1))).await.unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), BIG).unwrap();
    assert!(!wal.is_fresh(), "a node that voted is not fresh");
    assert_eq!(wal.vote(), Some(Vote::new(4, NodeId(1))));
}

#[tokio::test]
async fn truncate_and_purge_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    append(&mut wal, entries(1, 1..=20)).await;
    wal.truncate(15).await.unwrap();
    append(&mut wal, entries(2, 15..=17)).await;
    wal.purge(log_id(1, 5)).await.unwrap();
    let mut want = entries(1, 6..=14);
    want.extend(entries(2, 15..=17));
    assert_eq!(all(&wal), want);
    drop(wal);

    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    assert_eq!(all(&wal), want);
    assert_eq!(wal.purged(), Some(log_id(1, 5)));

    // Purging past the end leaves no entry; the purge point is then the last log id.
    wal.purge(log_id(2, 30)).await.unwrap();
    drop(wal);
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    assert!(all(&wal).is_empty());
    assert_eq!(wal.last_log_id(), Some(log_id(2, 30)));
    append(&mut wal, entries(2, 31..=31)).await;
    assert_eq!(all(&wal), entries(2, 31..=31));
}

#[tokio::test]
async fn appends_must_be_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    append(&mut wal, entries(1, 4..=5)).await;
    let gap = wal.append(entries(1, 7..=7), Box::new(|_| {})).await;
    assert!(matches!(
        gap,
        Err(StorageError::NotContiguous {
            expected: 6,
            got: 7
        })
    ));
    let overwrite = wal.append(entries(1, 5..=5), Box::new(|_| {})).await;
    assert!(matches!(overwrite, Err(StorageError::NotContiguous { .. })));
    append(&mut wal, entries(1, 6..=6)).await;
    assert_eq!(all(&wal), entries(1, 4..=6));
}

#[tokio::test]
async fn segments_roll_over_and_purge_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 8 << 10).unwrap();
    for i in 1..=200 {
        append(&mut wal, vec![entry(1, i)]).await;
    }
    wal.save_vote(&Vote::new(1, NodeId(1))).await.unwrap();
    wal.save_committed(Some(log_id(1, 190))).unwrap();
    let before = segment_files(dir.path()).len();
    assert!(before > 10, "only {before} segments");
    drop(wal);

    let mut wal = Wal::open(dir.path(), 8 << 10).unwrap();
    assert_eq!(all(&wal), entries(1, 1..=200));
    wal.purge(log_id(1, 150)).await.unwrap();
    let after = segment_files(dir.path()).len();
    assert!(after < before / 2, "{after} of {before} segments left");
    drop(wal);

    // The vote and commit point lived in deleted segments: the headers carried them over.
    let mut wal = Wal::open(dir.path(), 8 << 10).unwrap();
    assert_eq!(all(&wal), entries(1, 151..=200));
    assert_eq!(wal.purged(), Some(log_id(1, 150)));
    assert_eq!(wal.vote(), Some(Vote::new(1, NodeId(1))));
    assert_eq!(wal.committed(), Some(log_id(1, 190)));
    append(&mut wal, entries(1, 201..=201)).await;
    drop(wal);
    let wal = Wal::open(dir.path(), 8 << 10).unwrap();
    assert_eq!(all(&wal), entries(1, 151..=201));
}

/// Build a log of 1..=10 then 11 in one record; returns the file length before record 11.
async fn log_with_last_record(dir: &Path) -> (u64, u64) {
    let mut wal = Wal::open(dir, BIG).unwrap();
    append(&mut wal, entries(1, 1..=10)).await;
    let before = wal.active.len;
    append(&mut wal, vec![entry(1, 11)]).await;
    let after = wal.active.len;
    drop(wal);
    (before, after)
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    segment_files(dir).pop().unwrap()
}

#[tokio::test]
async fn a_cut_tail_is_truncated_at_the_last_good_record() {
    let base = tempfile::tempdir().unwrap();
    let (before, after) = log_with_last_record(base.path()).await;
    for cut in [
        before + 1,
        before + 4,
        before + 8,
        before + 9,
        (before + after) / 2,
        after - 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let seg = last_segment(dir.path());
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let mut wal = Wal::open(dir.path(), BIG).unwrap();
        assert_eq!(all(&wal), entries(1, 1..=10), "cut at {cut}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), before);
        // The log goes on from there, and survives another reopen.
        append(&mut wal, vec![entry(2, 11)]).await;
        drop(wal);
        let wal = Wal::open(dir.path(), BIG).unwrap();
        let mut want = entries(1, 1..=10);
        want.push(entry(2, 11));
        assert_eq!(all(&wal), want);
    }
}

#[tokio::test]
async fn damaged_or_garbage_tail_is_truncated_at_the_last_good_record() {
    let base = tempfile::tempdir().unwrap();
    let (before, after) = log_with_last_record(base.path()).await;
    let flip = |at: u64| {
        move |bytes: &mut Vec<u8>| {
            bytes[at as usize] ^= 0x5a;
        }
    };
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: Vec<Damage> = vec![
        Box::new(flip(before)),
        Box::new(flip(before + 5)),
        Box::new(flip(before + 20)),
        Box::new(flip(after - 1)),
        Box::new(|b: &mut Vec<u8>| b.extend_from_slice(&[0u8; 4096])),
        Box::new(|b: &mut Vec<u8>| b.extend_from_slice(&[0xffu8; 3])),
    ];
    for (i, damage) in damages.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let seg = last_segment(dir.path());
        let mut bytes = fs::read(&seg).unwrap();
        damage(&mut bytes);
        fs::write(&seg, &bytes).unwrap();
        let wal = Wal::open(dir.path(), BIG).unwrap();
        let want = if i >= 4 {
            entries(1, 1..=11)
        } else {
            entries(1, 1..=10)
        };
        assert_eq!(all(&wal), want, "damage {i}");
    }
}

#[tokio::test]
async fn damage_before_the_last_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 4 << 10).unwrap();
    for i in 1..=40 {
        append(&mut wal, vec![entry(1, i)]).await;
    }
    drop(wal);
    let first = segment_files(dir.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    fs::write(&first, bytes).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), 4 << 10),
        Err(StorageError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn a_segment_cut_before_its_header_gets_one_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    wal.save_vote(&Vote::new(2, NodeId(1))).await.unwrap();
    append(&mut wal, entries(1, 1..=3)).await;
    drop(wal);
    // A crash right after a rollover created the next segment: an empty last file.
    let next = segment::path_of(dir.path(), 2);
    fs::write(&next, b"").unwrap();
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    assert_eq!(all(&wal), entries(1, 1..=3));
    append(&mut wal, entries(1, 4..=4)).await;
    drop(wal);
    let wal = Wal::open(dir.path(), BIG).unwrap();
    assert_eq!(all(&wal), entries(1, 1..=4));
    assert_eq!(wal.vote(), Some(Vote::new(2, NodeId(1))));
}

#[tokio::test]
async fn group_commit_acknowledges_in_order_with_fewer_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), BIG).unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let n = 500;
    let (tx, rx) = oneshot::channel();
    let mut tx = Some(tx);
    for i in 1..=n {
        let acked = Arc::clone(&acked);
        let tx = if i == n { tx.take() } else { None };
        wal.append(
            vec![entry(1, i)],
            Box::new(move |r| {
                r.unwrap();
                acked.lock().push(i);
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
            }),
        )
        .await
        .unwrap();
    }
    rx.await.unwrap();
    assert_eq!(*acked.lock(), (1..=n).collect::<Vec<_>>());
    let stats = wal.stats().snapshot();
    assert_eq!(stats.completions, n);
    assert!(stats.fsyncs >= 1 && stats.fsyncs <= n, "{stats:?}");
}
