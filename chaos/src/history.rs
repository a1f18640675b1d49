//! What the clients saw, in one place: every acknowledgement, delivery, retained read,
//! probe and fault, with times from the run's `Clock`. The workload only appends; the
//! checker reads it once the scenario is over.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

/// A message identity: which publisher, which sequence number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MsgKey {
    pub publisher: String,
    pub seq: u64,
}

/// A publish the broker acknowledged (PUBACK for QoS 1, PUBREC for QoS 2: both mean
/// "committed on a quorum").
#[derive(Clone, Debug, Serialize)]
pub struct Ack {
    pub key: MsgKey,
    pub qos: u8,
    pub topic: String,
    /// When the first copy was sent.
    pub sent_at: f64,
    pub acked_at: f64,
    /// The node the publisher aimed at when it is not the VIP (the minority probe).
    pub direct_node: Option<u8>,
}

/// A publish every persistent subscriber must end up with.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub subscriber: String,
    pub key: MsgKey,
    pub qos: u8,
    pub dup: bool,
    pub at: f64,
}

/// One reader's view of a retained topic.
#[derive(Clone, Debug, Serialize)]
pub struct RetainedRead {
    pub topic: String,
    pub seq: u64,
    /// Before the reader's CONNECT was sent: every write acknowledged earlier must be seen.
    pub started_at: f64,
    pub final_read: bool,
}

/// A reader that found a retained topic missing.
#[derive(Clone, Debug, Serialize)]
pub struct RetainedMissing {
    pub topic: String,
    pub started_at: f64,
    pub final_read: bool,
}

/// A CONNECT sent straight to one node's own address, and how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub node: u8,
    pub sent_at: f64,
    pub done_at: f64,
    /// `Some(0)` accepted, `Some(code)` refused, `None` no answer (closed, timed out).
    pub code: Option<u8>,
}

/// A persistent-session client that got `session present = 0` after it had a session.
#[derive(Clone, Debug, Serialize)]
pub struct SessionLoss {
    pub client: String,
    pub at: f64,
}

/// One injected fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    pub name: String,
    /// The node attacked, when one is.
    pub node: Option<u8>,
    pub started_at: f64,
    /// When the injection had taken effect (the `docker pause` or the last firewall rule
    /// returned): what a node does after this is under the fault.
    pub effective_at: f64,
    /// When the fault was healed (for a kill: when the node was started again).
    pub healed_at: f64,
    /// The node cut off from the quorum, for the "no acknowledgement from a minority" check.
    pub minority: Option<u8>,
    /// The workload's acknowledgements stop during this fault (not just slow down), so its
    /// gap counts as unavailability.
    pub disruptive: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct History {
    pub acks: Vec<Ack>,
    /// Every message the publishers sent, acknowledged or not (a delivery of a message
    /// never sent is corruption).
    pub sent: Vec<(MsgKey, String)>,
    pub deliveries: Vec<Delivery>,
    pub retained_reads: Vec<RetainedRead>,
    pub retained_missing: Vec<RetainedMissing>,
    pub probes: Vec<Probe>,
    pub session_losses: Vec<SessionLoss>,
    pub faults: Vec<FaultRecord>,
    pub subscribers: Vec<String>,
    /// Subscribers whose subscriptions were acknowledged (SUBACK), and when.
    pub subscribed: Vec<(String, f64)>,
    pub notes: Vec<String>,
}

impl History {
    /// The acknowledged messages every subscriber must get (the retained writer's topics
    /// are not subscribed to).
    pub fn acked_for_subscribers(&self) -> BTreeSet<&MsgKey> {
        self.acks
            .iter()
            .filter(|a| a.topic.starts_with(SUBSCRIBED_PREFIX))
            .map(|a| &a.key)
            .collect()
    }
}

/// The publishers' topics are `chaos/q1/...` and `chaos/q2/...`, which the subscribers'
/// filters cover.
pub const SUBSCRIBED_PREFIX: &str = "chaos/q";

pub type Recorder = Arc<Mutex<History>>;
