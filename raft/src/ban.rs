//! Bans: who may not connect, until when, and why. Replicated (`Op::Ban` / `Op::Unban`) so a
//! ban outlives the leader that set it; expired by the leader-stamped time of `Tick`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a ban matches on a CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BanKind {
    /// The CONNECT's client identifier.
    ClientId,
    /// The source IP address (as `IpAddr` displays it).
    Ip,
    /// The CONNECT's user name.
    Username,
}

impl BanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BanKind::ClientId => "clientid",
            BanKind::Ip => "ip",
            BanKind::Username => "username",
        }
    }

    /// One byte per kind, for mirror keys.
    pub(crate) fn tag(self) -> u8 {
        match self {
            BanKind::ClientId => b'c',
            BanKind::Ip => b'i',
            BanKind::Username => b'u',
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<BanKind> {
        match tag {
            b'c' => Some(BanKind::ClientId),
            b'i' => Some(BanKind::Ip),
            b'u' => Some(BanKind::Username),
            _ => None,
        }
    }
}

impl fmt::Display for BanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BanKind {
    type Err = String;

    fn from_str(s: &str) -> Result<BanKind, String> {
        match s {
            "clientid" => Ok(BanKind::ClientId),
            "ip" => Ok(BanKind::Ip),
            "username" => Ok(BanKind::Username),
            other => Err(format!(
                "ban kind must be clientid, ip or username, got {other:?}"
            )),
        }
    }
}

/// What is banned: a kind and the value it must equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BanTarget {
    pub kind: BanKind,
    pub value: String,
}

/// One ban as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// Leader time when it was set (ms since the Unix epoch).
    pub since_ms: u64,
    /// Leader time from which it no longer applies.
    pub until_ms: u64,
    /// Who or what set it ("flapping", "admin", an operator's note).
    pub reason: String,
}

impl Ban {
    pub fn active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }
}
