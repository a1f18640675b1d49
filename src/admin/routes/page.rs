//! The status page: `GET /` serves one self-contained HTML file (inline CSS and JS, no
//! external resources, embedded in the binary) that polls `GET /status/summary` and
//! `GET /status/series`. All three are open; the summary leaves out everything `/metrics`
//! does not already show (addresses, client ids), so the page needs no token.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::Json;
use raftmq_raft::NodeId;
use serde::Serialize;

use crate::admin::series::SeriesView;
use crate::admin::AppState;
use crate::cluster::{LeaderChange, LeaseStatus, Role};

const PAGE: &str = include_str!("../status_page.html");

pub async fn page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub node_id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub active: bool,
    pub lease: LeaseStatus,
    pub vip_holder: Option<NodeId>,
    pub applied_index: Option<u64>,
    pub members: Vec<MemberSummary>,
    pub leader_changes: u64,
    pub recent_leader_changes: Vec<LeaderChange>,
    pub connections: u64,
    pub sessions: u64,
    pub sessions_online: u64,
}

#[derive(Debug, Serialize)]
pub struct MemberSummary {
    pub id: NodeId,
    pub voter: bool,
    /// Leader only, as in `/cluster/status`.
    pub lag: Option<u64>,
    pub replicating: Option<bool>,
}

pub async fn summary(State(s): State<AppState>) -> Json<Summary> {
    let st = s.full_status();
    Json(Summary {
        node_id: st.node_id,
        role: st.role,
        term: st.term,
        leader: st.leader,
        active: st.active,
        lease: st.lease,
        vip_holder: st.vip_holder,
        applied_index: st.applied_index,
        members: st
            .members
            .iter()
            .map(|m| MemberSummary {
                id: m.id,
                voter: m.voter,
                lag: m.lag,
                replicating: m.replicating,
            })
            .collect(),
        leader_changes: st.leader_changes,
        recent_leader_changes: st.recent_leader_changes,
        connections: st.mqtt.connections,
        sessions: st.mqtt.sessions,
        sessions_online: st.mqtt.sessions_online,
    })
}

pub async fn series(State(s): State<AppState>) -> Json<SeriesView> {
    Json(s.series.view())
}
