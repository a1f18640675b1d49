//! Bans: `GET /bans` (any node: the bans are replicated), `POST /bans` and
//! `DELETE /bans/{kind}/{value}` (leader only: a ban is a Raft write). Token.

use axum::extract::{Path, State};
use axum::Json;
use raftmq_raft::{BanKind, BanTarget, Op, Reply};
use serde::{Deserialize, Serialize};

use crate::admin::auth::Authorized;
use crate::admin::extract::Body;
use crate::admin::{ApiError, AppState, LeaderHint};
use crate::cluster::{ClusterError, Role};

/// Longest ban accepted: ten years.
const MAX_BAN_SECS: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBan {
    pub kind: BanKind,
    pub value: String,
    /// How long from now.
    pub secs: u64,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BanView {
    pub kind: BanKind,
    pub value: String,
    pub reason: String,
    /// ms since the Unix epoch (leader time).
    pub since_ms: u64,
    pub until_ms: u64,
    /// Seconds left, rounded up.
    pub remaining_secs: u64,
}

#[derive(Debug, Serialize)]
pub struct BanList {
    pub bans: Vec<BanView>,
}

pub async fn list(_: Authorized, State(s): State<AppState>) -> Json<BanList> {
    let now = crate::clock::now_ms();
    let state = s.cluster.state().read();
    let bans = state
        .bans()
        .filter(|(_, b)| b.active(now))
        .map(|(t, b)| BanView {
            kind: t.kind,
            value: t.value.clone(),
            reason: b.reason.clone(),
            since_ms: b.since_ms,
            until_ms: b.until_ms,
            remaining_secs: b.until_ms.saturating_sub(now).div_ceil(1000),
        })
        .collect();
    Json(BanList { bans })
}

pub async fn add(
    _: Authorized,
    State(s): State<AppState>,
    Body(req): Body<NewBan>,
) -> Result<Json<BanView>, ApiError> {
    if req.value.is_empty() {
        return Err(ApiError::BadRequest("`value`: must not be empty".into()));
    }
    if req.kind == BanKind::Ip && req.value.parse::<std::net::IpAddr>().is_err() {
        return Err(ApiError::BadRequest(format!(
            "`value`: {:?} is not an IP address",
            req.value
        )));
    }
    if !(1..=MAX_BAN_SECS).contains(&req.secs) {
        return Err(ApiError::BadRequest(format!(
            "`secs`: must be between 1 and {MAX_BAN_SECS}"
        )));
    }
    leader(&s)?;
    // Stored as `IpAddr` displays it, which is how the door looks it up.
    let value = match req.kind {
        BanKind::Ip => req
            .value
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_canonical().to_string())
            .unwrap_or(req.value),
        _ => req.value,
    };
    let now = crate::clock::now_ms();
    let until_ms = now + req.secs * 1000;
    let reason = req.reason.unwrap_or_else(|| "admin".into());
    let op = Op::Ban {
        target: BanTarget {
            kind: req.kind,
            value: value.clone(),
        },
        until_ms,
        reason: reason.clone(),
    };
    match s.cluster.propose(op).await.map_err(cluster_error)? {
        Reply::Banned { .. } => Ok(Json(BanView {
            kind: req.kind,
            value,
            reason,
            since_ms: now,
            until_ms,
            remaining_secs: req.secs,
        })),
        other => Err(ApiError::Unavailable(format!("unexpected reply {other:?}"))),
    }
}

#[derive(Debug, Serialize)]
pub struct Lifted {
    pub message: String,
}

pub async fn lift(
    _: Authorized,
    State(s): State<AppState>,
    Path((kind, value)): Path<(String, String)>,
) -> Result<Json<Lifted>, ApiError> {
    let kind: BanKind = kind.parse().map_err(ApiError::BadRequest)?;
    leader(&s)?;
    let target = BanTarget {
        kind,
        value: value.clone(),
    };
    match s
        .cluster
        .propose(Op::Unban { target })
        .await
        .map_err(cluster_error)?
    {
        Reply::Unbanned { existed: true } => Ok(Json(Lifted {
            message: format!("the ban on {kind} {value} is lifted"),
        })),
        Reply::Unbanned { existed: false } => {
            Err(ApiError::NotFound(format!("no ban on {kind} {value}")))
        }
        other => Err(ApiError::Unavailable(format!("unexpected reply {other:?}"))),
    }
}

/// Bans are Raft writes: only the leader takes them.
fn leader(s: &crate::admin::Shared) -> Result<(), ApiError> {
    let status = s.raft_status();
    if status.role != Role::Leader {
        return Err(ApiError::NotLeader(LeaderHint::from_status(&status)));
    }
    Ok(())
}

fn cluster_error(e: ClusterError) -> ApiError {
    match e {
        ClusterError::Timeout(_) => ApiError::Timeout(e.to_string()),
        _ => ApiError::Unavailable(e.to_string()),
    }
}
