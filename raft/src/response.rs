//! What applying a command answers: one `Reply` per op, in order. An expected refusal (a
//! connection that lost its session to a newer one, a duplicate packet id) is a variant,
//! not an error.

use serde::{Deserialize, Serialize};

use crate::message::QoS;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub replies: Vec<Reply>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Connected {
        session_present: bool,
    },
    /// The op came from a connection that no longer owns the session (taken over, or the
    /// session expired): nothing was changed; the connection should close.
    NotOwner,
    Disconnected,
    /// `matched` is how many subscriptions received it (5.0 PUBACK reason 0x10 when 0).
    Published {
        matched: u32,
    },
    /// QoS 2 PUBLISH whose packet id is still awaiting PUBREL: not routed again.
    Duplicate,
    /// `known` is false when the PUBREL named no packet id awaiting release (5.0: 0x92).
    Released {
        known: bool,
    },
    Subscribed(Vec<SubResult>),
    /// One per filter: whether a subscription existed (5.0: 0x11 when not).
    Unsubscribed(Vec<bool>),
    Acked,
    Ticked,
    ConnectionsReset {
        count: u32,
    },
    /// The ban is stored (`false`: it had already run out at the command's time).
    Banned {
        stored: bool,
    },
    /// `existed` is false when no ban matched the target.
    Unbanned {
        existed: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubResult {
    Granted(QoS),
    /// Shared subscription with no-local set: a protocol error (5.0 0x82 is a connection
    /// error; the session layer rejects it before proposing). Kept for completeness of
    /// apply, which never trusts its input.
    Invalid,
}
