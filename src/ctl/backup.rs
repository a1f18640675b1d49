//! `raftmq ctl backup FILE`: fetch `GET /cluster/backup` from the leader (following a 421
//! leader hint like the other commands), check it whole, and write it to FILE durably
//! (temporary file, fsync, rename, fsync of the directory), so FILE is either the old one or
//! the complete new backup.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use raftmq_raft::Backup;
use reqwest::Method;

use super::{at_leader, Api, CtlError};

const ROUTE: &str = "/cluster/backup";

pub(super) async fn run(api: &Api, base: &str, file: &Path) -> Result<String, CtlError> {
    let (bytes, from) = at_leader(base, |b| async move {
        api.request(&b, Method::GET, ROUTE, None).await
    })
    .await?;
    let bad = |reason: String| CtlError::BadAnswer {
        url: format!("{from}{ROUTE}"),
        reason,
    };
    let backup = Backup::decode(&bytes).map_err(|e| bad(e.to_string()))?;
    let stats = backup.state().map_err(|e| bad(e.to_string()))?.stats();
    write_durably(file, &bytes).map_err(|reason| CtlError::File {
        path: file.to_path_buf(),
        reason,
    })?;
    Ok(format!(
        "backup of {from} (applied index {}) written to {}: {} bytes; {} sessions, {} \
         subscriptions, {} retained messages, {} queued and {} in-flight messages\n",
        backup.applied_index,
        file.display(),
        bytes.len(),
        stats.sessions,
        stats.subscriptions,
        stats.retained,
        stats.queued_messages,
        stats.inflight_messages,
    ))
}

fn write_durably(file: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .ok_or_else(|| "not a file name".to_owned())?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".partial");
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, file)?;
        File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        e.to_string()
    })
}
