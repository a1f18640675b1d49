//! Limits that protect the broker from its clients: who gets in (connections in total, per
//! source IP, per second per IP, per username; flapping client ids), and how much one
//! connection may ask for once in (publish rate, topic size). Bans themselves are
//! replicated state (`raftmq_raft::ban`); this module decides when to set one.
//!
//! # Layout
//! - `door`: admission of sockets and usernames; `Ticket` holds an admitted socket's places.
//! - `bucket`: the token bucket behind every rate.
//! - `gate`: the checks a CONNECT passes first (bans, flapping, per-username limit).
//! - `flapping`: counting CONNECTs per client id within a window.
//! - `throttle`: a connection's publish rate, enforced by pausing reads.
//! - `topic`: topic length and level limits.
//! - `shed`: the global cap on queued bytes (QoS 0 shed first).
//! - `report`: logging once per offender per interval.
//! - `cidr`: IP networks for the allow-list.

mod bucket;
mod cidr;
mod door;
mod flapping;
mod gate;
mod report;
mod shed;
mod throttle;
mod topic;

pub use cidr::Cidr;
pub use door::{Door, DoorRefusal, Ticket};
pub use gate::{check_connect, Refusal};
pub use shed::{sample_queued_bytes, shed};
pub use throttle::PublishThrottle;
pub use topic::check_topic;
