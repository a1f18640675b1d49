//! Who may connect and what they may do: Mosquitto password and ACL files, TLS certificate
//! identities, anonymous access and the per-username authentication rate limit. `Auth` is
//! the live, reloadable handle the broker shares; sessions keep an `AclView` that picks up
//! a reload at their next check, so a reload changes the rules without dropping anyone.
//!
//! Each node reads its own files: in a cluster, install the same files on every node (they
//! are configuration, not replicated state) and reload each one.
//!
//! # Layout
//! - `mod.rs`: `Auth` (load, reload, authenticate, ACL checks), `AclView`, `AuthError`.
//! - `password`: password file parsing, verification and `$7$` hashing.
//! - `acl`: ACL file parsing and Mosquitto's matching rules.
//! - `identity`: the username a TLS client certificate gives.
//! - `ratelimit`: token buckets of authentication attempts per username.
//! - `passwd`: `raftmq passwd`, the `mosquitto_passwd` equivalent.

mod acl;
mod identity;
pub mod passwd;
mod password;
mod ratelimit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use thiserror::Error;
use tracing::info;

use crate::config::AuthConfig;
use crate::metrics::Metrics;

pub use acl::{Access, AclFile, ClientAcl};
pub use identity::{from_der as certificate_identity, Transport};
pub use password::{PasswordFile, Verdict};

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("cannot read {key} {path}: {source}")]
    Read {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{key} {path}: {message}")]
    Parse {
        key: &'static str,
        path: String,
        message: String,
    },
}

/// Why a CONNECT is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user or wrong password: 3.1.1 code 4, 5.0 0x86.
    BadCredentials,
    /// Not allowed in at all: 3.1.1 code 5, 5.0 0x87.
    NotAuthorized(&'static str),
    /// Too many attempts for this username: 3.1.1 code 4 (as a wrong password, so a
    /// guesser learns nothing), 5.0 0x97 quota exceeded (so a real client backs off).
    RateLimited,
}

/// The files in force. Replaced whole by a reload.
#[derive(Default)]
struct Files {
    passwords: Option<PasswordFile>,
    acl: Option<AclFile>,
}

/// What a reload loaded.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Loaded {
    /// Users in the password file (`None`: no password file configured).
    pub users: Option<usize>,
    /// Users with their own ACL block (`None`: no ACL file configured).
    pub acl_users: Option<usize>,
}

pub struct Auth {
    config: AuthConfig,
    files: RwLock<Arc<Files>>,
    /// Bumped by every successful reload; `AclView`s compare it to know they are stale.
    generation: AtomicU64,
    limiter: ratelimit::RateLimiter,
    metrics: Arc<Metrics>,
}

impl Auth {
    /// Load the configured files (an error here stops the broker from starting).
    pub fn load(config: &AuthConfig, metrics: Arc<Metrics>) -> Result<Auth, AuthError> {
        let files = read_files(config)?;
        Ok(Auth {
            config: config.clone(),
            files: RwLock::new(Arc::new(files)),
            generation: AtomicU64::new(0),
            limiter: ratelimit::RateLimiter::new(config.attempts_per_sec),
            metrics,
        })
    }

    /// Read the files again. On any error the files in force stay, and the error says
    /// which file and line is wrong.
    pub fn reload(&self) -> Result<Loaded, AuthError> {
        match read_files(&self.config) {
            Ok(files) => {
                let loaded = loaded(&files);
                *self.files.write() = Arc::new(files);
                self.generation.fetch_add(1, Ordering::Release);
                info!(users = ?loaded.users, acl_users = ?loaded.acl_users, "auth: password and ACL files reloaded");
                Ok(loaded)
            }
            Err(e) => {
                Metrics::add(&self.metrics.auth_reload_failures, 1);
                Err(e)
            }
        }
    }

    /// What is loaded now.
    pub fn loaded(&self) -> Loaded {
        loaded(&self.files.read())
    }

    /// Check a CONNECT's credentials; `Ok` carries the username the client acts as (for
    /// ACLs), `None` for an anonymous client. Refusals are counted.
    pub fn authenticate(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
        transport: &Transport,
    ) -> Result<Option<String>, Refusal> {
        let result = self.decide(username, password, transport);
        let counter = match result {
            Ok(_) => return result,
            Err(Refusal::BadCredentials) => &self.metrics.auth_bad_credentials,
            Err(Refusal::NotAuthorized(_)) => &self.metrics.auth_not_authorized,
            Err(Refusal::RateLimited) => &self.metrics.auth_rate_limited,
        };
        Metrics::add(counter, 1);
        result
    }

    fn decide(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
        transport: &Transport,
    ) -> Result<Option<String>, Refusal> {
        if let (Transport::Tls { identity }, true) =
            (transport, self.config.use_identity_as_username)
        {
            return match identity {
                Some(name) => Ok(Some(name.clone())),
                None => Err(Refusal::NotAuthorized(
                    "no client certificate identity (auth.use_identity_as_username)",
                )),
            };
        }
        let Some(user) = username else {
            return if self.config.anonymous_allowed() {
                Ok(None)
            } else {
                Err(Refusal::NotAuthorized("anonymous access is not allowed"))
            };
        };
        if !self.limiter.attempt(user) {
            return Err(Refusal::RateLimited);
        }
        let files = self.files.read().clone();
        let Some(passwords) = &files.passwords else {
            // No password file: a username is only a name (Mosquitto's behaviour).
            self.limiter.succeeded(user);
            return Ok(Some(user.to_owned()));
        };
        match passwords.verify(user, password.unwrap_or_default()) {
            Verdict::Ok => {
                self.limiter.succeeded(user);
                Ok(Some(user.to_owned()))
            }
            Verdict::UnknownUser | Verdict::BadPassword => Err(Refusal::BadCredentials),
            Verdict::Disabled => Err(Refusal::NotAuthorized("user disabled")),
        }
    }

    /// The ACL view of one connected client.
    pub fn view(&self, username: Option<String>, client_id: &str) -> AclView {
        let mut view = AclView {
            username,
            client_id: client_id.to_owned(),
            generation: u64::MAX,
            rules: None,
        };
        self.refresh(&mut view);
        view
    }

    /// Whether the client may read or write `topic`; counts nothing (callers know what a
    /// denial means).
    pub fn allows(&self, view: &mut AclView, topic: &str, access: Access) -> bool {
        self.refresh(view);
        view.rules.as_ref().is_none_or(|r| r.allows(topic, access))
    }

    /// Whether the client may subscribe to `filter` (shared subscriptions are checked on
    /// the filter after `$share/GROUP/`).
    pub fn may_subscribe(&self, view: &mut AclView, filter: &str) -> bool {
        self.refresh(view);
        let filter = match filter.strip_prefix("$share/") {
            Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
            None => filter,
        };
        view.rules.as_ref().is_none_or(|r| r.may_subscribe(filter))
    }

    /// The client's rules as they stand now, for checks made away from the session
    /// (`None`: no ACL file, everything allowed).
    pub fn rules(&self, view: &mut AclView) -> Option<Arc<ClientAcl>> {
        self.refresh(view);
        view.rules.clone()
    }

    fn refresh(&self, view: &mut AclView) {
        let now = self.generation.load(Ordering::Acquire);
        if view.generation == now {
            return;
        }
        let files = self.files.read().clone();
        view.rules = files
            .acl
            .as_ref()
            .map(|acl| Arc::new(acl.for_client(view.username.as_deref(), &view.client_id)));
        view.generation = now;
    }
}

/// One client's ACL, rebuilt when the files are reloaded.
#[derive(Debug)]
pub struct AclView {
    username: Option<String>,
    client_id: String,
    generation: u64,
    /// `None`: no ACL file, everything allowed.
    rules: Option<Arc<ClientAcl>>,
}

fn loaded(files: &Files) -> Loaded {
    Loaded {
        users: files.passwords.as_ref().map(PasswordFile::len),
        acl_users: files.acl.as_ref().map(AclFile::user_count),
    }
}

fn read_files(config: &AuthConfig) -> Result<Files, AuthError> {
    let passwords = read("auth.password_file", &config.password_file)?
        .map(|(path, text)| {
            PasswordFile::parse(&text).map_err(|message| AuthError::Parse {
                key: "auth.password_file",
                path,
                message,
            })
        })
        .transpose()?;
    let acl = read("auth.acl_file", &config.acl_file)?
        .map(|(path, text)| {
            AclFile::parse(&text).map_err(|message| AuthError::Parse {
                key: "auth.acl_file",
                path,
                message,
            })
        })
        .transpose()?;
    Ok(Files { passwords, acl })
}

/// The text of a configured file (`None` when the key is empty).
fn read(key: &'static str, path: &str) -> Result<Option<(String, String)>, AuthError> {
    if path.is_empty() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        key,
        path: path.to_owned(),
        source,
    })?;
    Ok(Some((path.to_owned(), text)))
}
