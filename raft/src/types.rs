//! The openraft type configuration.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Cursor;

use crate::command::Command;
use crate::ids::NodeId;
use crate::response::Response;

/// A cluster member as recorded in Raft membership: where to reach it for each protocol.
/// MQTT and admin addresses are the advertised ones (what a client or operator should dial).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub raft_addr: String,
    pub mqtt_addr: String,
    pub admin_addr: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "raft={} mqtt={} admin={}",
            self.raft_addr, self.mqtt_addr, self.admin_addr
        )
    }
}

openraft::declare_raft_types!(
    /// raftmq's Raft types: one `Command` (a batch of ops) per log entry.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
