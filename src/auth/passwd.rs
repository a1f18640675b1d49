//! `raftmq passwd [-c] [-b] [-D] [-I N] FILE USER [PASSWORD]`: add, change or delete a user
//! in a Mosquitto password file, as `mosquitto_passwd` does; the file stays usable by
//! Mosquitto. Comments and other users' lines are kept as they are. The file is replaced
//! atomically (written beside it, then renamed); a new file is readable by its owner only.
//!
//! Without `-b` the password is read from standard input (one line), which must not be a
//! terminal: raftmq does not prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::password::{self, DEFAULT_ITERATIONS};

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Create a new file (overwriting an existing one) holding only this user.
    #[arg(short = 'c', conflicts_with = "delete")]
    pub create: bool,
    /// Batch mode: the password is the last argument.
    #[arg(short = 'b', conflicts_with = "delete")]
    pub batch: bool,
    /// Delete the user.
    #[arg(short = 'D')]
    pub delete: bool,
    /// PBKDF2 iterations of the new hash.
    #[arg(short = 'I', value_name = "N", default_value_t = NonZeroU32::new(DEFAULT_ITERATIONS).unwrap_or(NonZeroU32::MIN))]
    pub iterations: NonZeroU32,
    /// The password file.
    pub file: PathBuf,
    pub username: String,
    /// With -b only.
    pub password: Option<String>,
}

pub fn run(args: PasswdArgs) -> ExitCode {
    match edit(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftmq passwd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn edit(args: &PasswdArgs) -> Result<(), String> {
    let user = args.username.as_str();
    if user.is_empty() || user.contains(':') || user.trim() != user {
        return Err(format!(
            "invalid username {user:?}: it must not be empty, contain ':' or start or end with blanks"
        ));
    }
    if args.password.is_some() && !args.batch {
        return Err("a password argument needs -b".into());
    }
    let existing = if args.create {
        String::new()
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?
    };
    let mut lines: Vec<String> = existing.lines().map(str::to_owned).collect();
    let position = lines
        .iter()
        .position(|l| password::split_line(l).is_some_and(|(u, _)| u == user));
    if args.delete {
        let i = position.ok_or_else(|| format!("no user {user:?} in {}", args.file.display()))?;
        lines.remove(i);
    } else {
        let pw = match (&args.password, args.batch) {
            (Some(p), _) => p.clone(),
            (None, true) => return Err("-b needs the password as the last argument".into()),
            (None, false) => read_password()?,
        };
        let line = format!(
            "{user}:{}",
            password::hash_pbkdf2(pw.as_bytes(), args.iterations)?
        );
        match position {
            Some(i) => lines[i] = line,
            None => lines.push(line),
        }
    }
    write_atomically(&args.file, &lines)
}

fn read_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err("no password: give it with -b FILE USER PASSWORD, or on standard input".into());
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        return Err("empty password on standard input".into());
    }
    Ok(pw)
}

fn write_atomically(path: &Path, lines: &[String]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mode = std::fs::metadata(path).map_or(0o600, |m| {
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
        });
        options.mode(mode);
    }
    let mut file = options.open(&tmp).map_err(fail)?;
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}
