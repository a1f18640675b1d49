//! `GET /cluster/status`: this node's view of the cluster (`crate::cluster::ClusterStatus`).
//! Any member answers; replication lag is known only to the leader.

use axum::extract::State;
use axum::Json;

use crate::admin::auth::Authorized;
use crate::admin::AppState;
use crate::cluster::ClusterStatus;

pub async fn status(_: Authorized, State(s): State<AppState>) -> Json<ClusterStatus> {
    Json(s.full_status())
}
