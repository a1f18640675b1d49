//! Small durable-filesystem helpers: directory fsync, durable directory creation and
//! write-then-rename file replacement.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::StorageError;

/// fsync a directory, so that entries created, renamed or removed in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io("fsync directory", dir))
}

/// Create `dir` (and missing parents) if it does not exist; a created directory is made
/// durable by fsyncing its parent.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(StorageError::io("create directory", dir))?;
    sync_dir(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Replace `dir/name` with the concatenation of `parts`, atomically and durably: write
/// `dir/name.tmp`, fsync it, rename it over `dir/name`, fsync `dir`. After a crash the file
/// holds either the old or the new bytes, never a mix.
pub(crate) fn write_atomic(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(StorageError::io("create", &tmp))?;
    for part in parts {
        file.write_all(part)
            .map_err(StorageError::io("write", &tmp))?;
    }
    // The data must be on disk before the rename can make it visible under the real name.
    file.sync_all().map_err(StorageError::io("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, &dst).map_err(StorageError::io("rename", &dst))?;
    // The rename itself is durable only once the directory is fsynced.
    sync_dir(dir)
}
