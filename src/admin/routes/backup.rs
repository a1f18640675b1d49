//! `GET /cluster/backup`: the replicated state as a backup file (`raftmq_raft::backup`):
//! sessions, subscriptions, in-flight and queued messages, retained messages, everything
//! the state machine holds, without membership. Leader only (421 with the leader hint
//! elsewhere). Token.
//!
//! Consistency: the leader first confirms with a quorum that it still leads and waits until
//! it has applied everything committed before the request (openraft's linearizable read),
//! then encodes the state under its read lock, so the backup holds every change that was
//! acknowledged before the request and a state that some log index really had.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use openraft::error::{CheckIsLeaderError, RaftError};
use raftmq_raft::{Backup, Member, NodeId};

use crate::admin::auth::Authorized;
use crate::admin::{ApiError, AppState, LeaderHint};
use crate::cluster::Role;

pub async fn backup(_: Authorized, State(s): State<AppState>) -> Result<Response, ApiError> {
    let status = s.raft_status();
    if status.role != Role::Leader {
        return Err(ApiError::NotLeader(LeaderHint::from_status(&status)));
    }
    let read = s
        .cluster
        .raft()
        .ensure_linearizable()
        .await
        .map_err(not_confirmed)?;
    let state = s.cluster.state().clone();
    // Encoding a large state takes a while: off the async threads.
    let bytes = tokio::task::spawn_blocking(move || state.read().to_snapshot_bytes())
        .await
        .map_err(|e| ApiError::Unavailable(format!("backup task failed: {e}")))?
        .map_err(|e| ApiError::Unavailable(format!("cannot encode the state: {e}")))?;
    let backup = Backup {
        created_ms: crate::clock::now_ms(),
        applied_index: read.map_or(0, |id| id.index),
        state: bytes,
    };
    let file = backup.encode();
    let mut resp = (StatusCode::OK, Body::from(file)).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"raftmq-{}.backup\"",
        backup.created_ms
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

fn not_confirmed(e: RaftError<NodeId, CheckIsLeaderError<NodeId, Member>>) -> ApiError {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => f.into(),
        RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q)) => ApiError::Unavailable(
            format!("this node leads but a quorum did not confirm it ({q}): no consistent backup"),
        ),
        RaftError::Fatal(f) => ApiError::Unavailable(format!("raft is not running: {f}")),
    }
}
