//! Segment files: naming, listing, creating, and scanning one file record by record.
//!
//! A segment is `<seq>.wal` (`seq` zero-padded to 20 digits, so names sort by number). It is
//! only ever appended to; the last one is the active segment.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::fs_util::sync_dir;
use crate::wal::record::{self, OwnedRecord, FRAME_HEADER};

const SUFFIX: &str = ".wal";

#[derive(Clone, Debug)]
pub(crate) struct SegmentFile {
    pub seq: u64,
    pub path: PathBuf,
}

pub(crate) fn path_of(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SUFFIX}"))
}

/// Every segment in `dir`, by sequence number. Other files are left alone.
pub(crate) fn list(dir: &Path) -> Result<Vec<SegmentFile>, StorageError> {
    let mut segments = Vec::new();
    for item in fs::read_dir(dir).map_err(StorageError::io("read directory", dir))? {
        let item = item.map_err(StorageError::io("read directory", dir))?;
        let name = item.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push(SegmentFile {
            seq,
            path: item.path(),
        });
    }
    segments.sort_by_key(|s| s.seq);
    Ok(segments)
}

/// Create a new, empty segment and make its directory entry durable.
pub(crate) fn create(dir: &Path, seq: u64) -> Result<(SegmentFile, File), StorageError> {
    let path = path_of(dir, seq);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(StorageError::io("create segment", &path))?;
    // A new file exists after a crash only once its directory entry is synced.
    sync_dir(dir)?;
    Ok((SegmentFile { seq, path }, file))
}

/// Open an existing segment for appending, first cutting it to `len` bytes (durably) when it
/// is longer (a torn tail).
pub(crate) fn open_for_append(seg: &SegmentFile, len: u64) -> Result<File, StorageError> {
    let file = OpenOptions::new()
        .append(true)
        .open(&seg.path)
        .map_err(StorageError::io("open segment", &seg.path))?;
    let on_disk = file
        .metadata()
        .map_err(StorageError::io("stat segment", &seg.path))?
        .len();
    if on_disk > len {
        file.set_len(len)
            .map_err(StorageError::io("truncate segment", &seg.path))?;
        // The shorter length must be durable before anything new is appended after it.
        file.sync_all()
            .map_err(StorageError::io("fsync segment", &seg.path))?;
    }
    Ok(file)
}

/// How a scan ended.
#[derive(Debug)]
pub(crate) enum Tail {
    /// Every byte belongs to a good record.
    Clean,
    /// The bytes from `good_len` on are not a whole, checksummed record: a write that was cut
    /// short or damaged. Only acceptable in the last segment.
    Torn { detail: String },
}

#[derive(Debug)]
pub(crate) struct Scan {
    /// Offset just past the last good record.
    pub good_len: u64,
    pub file_len: u64,
    pub tail: Tail,
}

/// Read every good record of a segment, in order, into `on_record` (with the offset just
/// past it). Stops at the first frame
/// that is incomplete or fails its checksum (reported as a torn tail); a frame whose checksum
/// matches but that does not decode is an error (the bytes are what was written, so the
/// format is not ours).
pub(crate) fn scan(
    seg: &SegmentFile,
    mut on_record: impl FnMut(OwnedRecord, u64) -> Result<(), StorageError>,
) -> Result<Scan, StorageError> {
    let file = File::open(&seg.path).map_err(StorageError::io("open segment", &seg.path))?;
    let file_len = file
        .metadata()
        .map_err(StorageError::io("stat segment", &seg.path))?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut payload = Vec::new();
    let mut pos = 0u64;
    let torn = |pos: u64, detail: String| Scan {
        good_len: pos,
        file_len,
        tail: Tail::Torn { detail },
    };
    loop {
        let left = file_len - pos;
        if left == 0 {
            return Ok(Scan {
                good_len: pos,
                file_len,
                tail: Tail::Clean,
            });
        }
        if left < FRAME_HEADER as u64 {
            return Ok(torn(pos, format!("{left} bytes, less than a frame header")));
        }
        let mut header = [0u8; FRAME_HEADER];
        reader
            .read_exact(&mut header)
            .map_err(StorageError::io("read segment", &seg.path))?;
        let (len, crc) = record::parse_header(&header);
        if u64::from(len) > left - FRAME_HEADER as u64 {
            return Ok(torn(pos, format!("a {len}-byte record runs past the end")));
        }
        payload.resize(len as usize, 0);
        reader
            .read_exact(&mut payload)
            .map_err(StorageError::io("read segment", &seg.path))?;
        if !record::checksum_ok(len, crc, &payload) {
            return Ok(torn(pos, "checksum mismatch".into()));
        }
        let rec = record::decode(&payload).map_err(|detail| StorageError::Corrupt {
            what: "log record",
            path: seg.path.clone(),
            detail: format!("at offset {pos}: {detail}"),
        })?;
        pos += FRAME_HEADER as u64 + u64::from(len);
        on_record(rec, pos)?;
    }
}
