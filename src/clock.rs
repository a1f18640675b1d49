//! Wall-clock time in ms since the Unix epoch, read only at the edges (connections, the
//! proposer); the state machine gets time from its commands.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
