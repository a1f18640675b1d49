//! `GET /cluster/digest`: a SHA-256 of this node's replicated state (its canonical snapshot
//! bytes) with the log index it reflects. Replicas at the same applied index must report the
//! same digest; the chaos suite compares them after every heal, and an operator can too.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::admin::auth::Authorized;
use crate::admin::{ApiError, AppState};

#[derive(Debug, Serialize)]
pub struct Digest {
    /// The applied index the digest was taken at; `None` when applies kept racing the read.
    pub applied_index: Option<u64>,
    pub digest: String,
    pub sessions: u64,
    pub retained: u64,
}

/// Tries at pairing the digest with one applied index before reporting it without one.
const TRIES: usize = 5;

pub async fn digest(_: Authorized, State(s): State<AppState>) -> Result<Json<Digest>, ApiError> {
    let applied = || {
        s.cluster
            .raft()
            .metrics()
            .borrow()
            .last_applied
            .map(|l| l.index)
    };
    let mut attempt = 1;
    loop {
        let before = applied();
        let (bytes, stats) = {
            // Serializing under the read lock holds apply back for as long as it takes; the
            // lock is not held across an await.
            let state = s.cluster.state().read();
            (state.to_snapshot_bytes(), state.stats())
        };
        let bytes = bytes.map_err(|e| ApiError::Unavailable(format!("state digest: {e}")))?;
        let stable = applied() == before;
        if stable || attempt == TRIES {
            let hash = ring::digest::digest(&ring::digest::SHA256, &bytes);
            return Ok(Json(Digest {
                applied_index: if stable { before } else { None },
                digest: hex(hash.as_ref()),
                sessions: stats.sessions,
                retained: stats.retained,
            }));
        }
        attempt += 1;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
