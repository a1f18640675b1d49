//! Mosquitto password files: `username:hash` lines, parsed, verified and written.
//!
//! Hashes as `mosquitto_passwd` writes them: `$7$ITERATIONS$SALT$HASH` (PBKDF2-HMAC-SHA512,
//! Mosquitto 2) and `$6$SALT$HASH` (one SHA-512 of password then salt, Mosquitto 1.x), with a
//! 12-byte salt and a 64-byte hash in standard base64. Lines starting with `#` and lines
//! without `:` are skipped, as Mosquitto does. A hash starting with `!` marks a disabled
//! user (as in `/etc/shadow`): the name is known, and every login with it is refused. Any
//! other hash that does not parse is an error naming its line, so a reload never silently
//! loses a user.

use std::collections::HashMap;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::digest::{Context, SHA512};
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

/// Mosquitto's salt length for both hash kinds.
const SALT_LEN: usize = 12;
/// SHA-512 output.
const HASH_LEN: usize = 64;
/// What `mosquitto_passwd` uses (PW_DEFAULT_ITERATIONS).
pub const DEFAULT_ITERATIONS: u32 = 101;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Sha512,
    Pbkdf2 { iterations: NonZeroU32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Hash {
    kind: Kind,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Hash(Hash),
    Disabled,
}

/// The outcome of checking one login against the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    UnknownUser,
    BadPassword,
    Disabled,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: HashMap<String, Entry>,
}

impl PasswordFile {
    /// Parse a whole file; the error names the first bad line.
    pub fn parse(text: &str) -> Result<PasswordFile, String> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let Some((user, hash)) = split_line(line) else {
                continue;
            };
            let entry = if hash.starts_with('!') {
                Entry::Disabled
            } else {
                Entry::Hash(
                    parse_hash(hash).map_err(|e| format!("line {}: user {user:?}: {e}", n + 1))?,
                )
            };
            users.insert(user.to_owned(), entry);
        }
        Ok(PasswordFile { users })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` may log in with `password`.
    pub fn verify(&self, user: &str, password: &[u8]) -> Verdict {
        match self.users.get(user) {
            None => Verdict::UnknownUser,
            Some(Entry::Disabled) => Verdict::Disabled,
            Some(Entry::Hash(h)) if h.matches(password) => Verdict::Ok,
            Some(Entry::Hash(_)) => Verdict::BadPassword,
        }
    }
}

/// `user` and `hash` of a line that holds an entry (Mosquitto trims blanks around both).
pub fn split_line(line: &str) -> Option<(&str, &str)> {
    if line.starts_with('#') {
        return None;
    }
    let (user, rest) = line.split_once(':')?;
    let hash = rest.split(':').next().unwrap_or_default().trim();
    let user = user.trim();
    (!user.is_empty()).then_some((user, hash))
}

fn parse_hash(text: &str) -> Result<Hash, String> {
    let parts: Vec<&str> = text.split('$').collect();
    let (kind, salt, hash) = match parts.as_slice() {
        ["", "6", salt, hash] => (Kind::Sha512, *salt, *hash),
        ["", "7", iterations, salt, hash] => {
            let iterations = iterations
                .parse::<NonZeroU32>()
                .map_err(|_| format!("invalid iteration count {iterations:?}"))?;
            (Kind::Pbkdf2 { iterations }, *salt, *hash)
        }
        _ => {
            return Err(
                "not a mosquitto_passwd hash ($7$ITERATIONS$SALT$HASH or $6$SALT$HASH); \
                 prefix it with ! to disable the user"
                    .into(),
            )
        }
    };
    let salt = B64
        .decode(salt)
        .map_err(|e| format!("salt is not base64: {e}"))?;
    if salt.len() != SALT_LEN {
        return Err(format!("salt is {} bytes, not {SALT_LEN}", salt.len()));
    }
    let hash = B64
        .decode(hash)
        .map_err(|e| format!("hash is not base64: {e}"))?;
    if hash.len() != HASH_LEN {
        return Err(format!("hash is {} bytes, not {HASH_LEN}", hash.len()));
    }
    Ok(Hash { kind, salt, hash })
}

impl Hash {
    fn matches(&self, password: &[u8]) -> bool {
        match self.kind {
            // `verify` compares in constant time.
            Kind::Pbkdf2 { iterations } => pbkdf2::verify(
                pbkdf2::PBKDF2_HMAC_SHA512,
                iterations,
                &self.salt,
                password,
                &self.hash,
            )
            .is_ok(),
            Kind::Sha512 => {
                let mut ctx = Context::new(&SHA512);
                ctx.update(password);
                ctx.update(&self.salt);
                let digest = ctx.finish();
                // Constant time: every byte is looked at whatever the first difference.
                digest.as_ref().len() == self.hash.len()
                    && digest
                        .as_ref()
                        .iter()
                        .zip(&self.hash)
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0
            }
        }
    }
}

/// A new `$7$` hash of `password` with a fresh random salt, as `mosquitto_passwd` writes it.
pub fn hash_pbkdf2(password: &[u8], iterations: NonZeroU32) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness available for the salt".to_owned())?;
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        &salt,
        password,
        &mut hash,
    );
    Ok(format!(
        "$7${iterations}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iterations(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn pbkdf2_round_trip_and_wrong_password() {
        let line = format!(
            "alice:{}\n",
            hash_pbkdf2(b"s3cret", iterations(DEFAULT_ITERATIONS)).unwrap()
        );
        let f = PasswordFile::parse(&line).unwrap();
        assert_eq!(f.verify("alice", b"s3cret"), Verdict::Ok);
        assert_eq!(f.verify("alice", b"s3cret "), Verdict::BadPassword);
        assert_eq!(f.verify("bob", b"s3cret"), Verdict::UnknownUser);
    }

    #[test]
    fn sha512_hashes_of_mosquitto_1() {
        let salt = [7u8; SALT_LEN];
        let mut ctx = Context::new(&SHA512);
        ctx.update(b"pw");
        ctx.update(&salt);
        let line = format!(
            "# comment\n\nold : $6${}${}\n",
            B64.encode(salt),
            B64.encode(ctx.finish())
        );
        let f = PasswordFile::parse(&line).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f.verify("old", b"pw"), Verdict::Ok);
        assert_eq!(f.verify("old", b"pW"), Verdict::BadPassword);
    }

    #[test]
    fn disabled_users_and_bad_lines() {
        let f = PasswordFile::parse("carol:!$7$101$x$y\n").unwrap();
        assert_eq!(f.verify("carol", b"anything"), Verdict::Disabled);
        for bad in [
            "dave:plaintext",
            "dave:$7$0$AAAAAAAAAAAAAAAA$x",
            "dave:$6$AAAA$AAAA",
            "dave:$7$101$not base64$x",
        ] {
            let err = PasswordFile::parse(&format!("# ok\n{bad}\n")).unwrap_err();
            assert!(err.starts_with("line 2: user \"dave\""), "{err}");
        }
    }
}
