//! The admin HTTP API (axum): cluster status and membership, health checks, metrics.
//! `raftmq ctl` (`crate::ctl`) is its command-line client.
//!
//! # Wiring (main.rs)
//! ```ignore
//! let listener = bind(config.admin.listen_addr()?, "admin.listen").await?;
//! let ctx = raftmq::admin::AdminContext::new(cluster.clone(), broker.metrics.clone(), vip,
//!     broker.auth.clone(), &config);
//! let mut stop = broker.shutdown.clone();
//! tokio::spawn(raftmq::admin::serve(listener, ctx, async move {
//!     let _ = stop.wait_for(|s| *s).await;
//! }));
//! ```
//! Start it before waiting for the node to become active, so `/readyz` answers (503) while
//! the node is not serving yet. `serve` logs `admin API listening addr=...`.
//!
//! # Routes
//! JSON in and out. Every error is `{"error": "<message>"}` with a matching status; the
//! answers that send the caller elsewhere add `"leader": {"id", "admin_addr", "mqtt_addr"}`
//! (or `null` when no leader is known).
//! - `GET /healthz`: 200 while the process runs. Open.
//! - `GET /readyz`: 200 only on the active node (leader holding its lease, serving MQTT);
//!   503 with the reason and the leader otherwise. Open: a load balancer's health check.
//! - `GET /metrics`: Prometheus metrics, OpenMetrics text (`crate::exporter`). Open.
//! - `GET /`: the status page, one self-contained HTML file that polls the two routes
//!   below. Open.
//! - `GET /status/summary`: what the status page shows: roles, leader, lease, lag per
//!   member, leader changes, connection and session counts. Open: it holds nothing
//!   `/metrics` does not already expose (node ids and counts; no addresses, client ids or
//!   topics), so the page needs no token.
//! - `GET /status/series`: message rates and connections over the last minutes
//!   (`series`). Open.
//! - `GET /cluster/status`: `crate::cluster::ClusterStatus`. Token.
//! - `GET /cluster/digest`: SHA-256 of this node's replicated state and the applied index it
//!   reflects; equal indexes must give equal digests on every member. Token.
//! - `POST /cluster/learners` `{"id": 4, "raft_addr": "h:7946", "mqtt_addr": "h:1883",
//!   "admin_addr": "h:8081"}`: add a learner and wait until it caught up with the log
//!   (504 if it has not within the timeout; it stays a learner and goes on catching up). Token.
//! - `POST /cluster/voters` with exactly one of `{"add": [4]}` (promote caught-up learners),
//!   `{"remove": [2]}` (demote voters to learners), `{"set": [1, 2, 4]}` (the whole voter set;
//!   voters left out become learners). Token.
//! - `DELETE /cluster/nodes/{id}[?force=true]`: remove a voter or learner from the cluster.
//!   Without `force` it is refused (409) when the node does not replicate (it looks dead:
//!   evicting a dead node is what `force=true` says), or when the voters left would not have
//!   a replicating majority (the change could not commit and every write would stall).
//!   `force=true` skips both checks; the Raft operation is the same. Removing the leader
//!   itself is allowed: it steps down once the change commits. Token.
//! - `POST /auth/reload`: read the password and ACL files again (as SIGHUP does) on this
//!   node only; connected clients stay. 200 `{"users": N, "acl_users": M}` (`null` for a
//!   file not configured); 422 with the file, line and reason when a file does not parse,
//!   and the previous files stay in force. Token.
//! - `GET /bans`: the bans in force, `{"bans": [{"kind", "value", "reason", "since_ms",
//!   "until_ms", "remaining_secs"}]}`; any node. Token.
//! - `POST /bans` `{"kind": "clientid"|"ip"|"username", "value": "...", "secs": 600,
//!   "reason": "..."}`: refuse that client id, source IP or username at CONNECT for `secs`
//!   (replicated; replaces an existing ban of the same target). Leader only. Token.
//! - `DELETE /bans/{kind}/{value}`: lift a ban (404 when there is none). Leader only. Token.
//!
//! - `GET /cluster/backup`: a consistent backup of the replicated state (sessions, queues,
//!   retained messages; no membership) as `application/octet-stream` in the format of
//!   `raftmq_raft::backup`. Leader only: 421 with the leader hint elsewhere. Token.
//!
//! Writes take `?timeout_secs=N` (default 60, at most 600); a change that does not finish in
//! time is 504 and may still complete. Writes are answered only by the leader: elsewhere
//! they get **421 Misdirected Request** with the leader hint (not a redirect: a client would
//! re-send the token to whatever address the hint names; `raftmq ctl` follows it itself).
//! A leader that no quorum acknowledged within its lease answers 503: nothing could commit.
//!
//! # Authorization
//! `Authorization: Bearer <admin.token>` on `/cluster/*` and `/auth/*`: missing 401 (with
//! `WWW-Authenticate: Bearer`), wrong 403, compared in constant time. With `admin.token`
//! empty, every `/cluster/*` route answers 503: there is no token to check against.

mod auth;
mod error;
mod extract;
mod routes;
mod series;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::auth::Auth;
use crate::cluster::{Cluster, ClusterStatus, MqttStatus, StatusTracker};
use crate::config::Config;
use crate::exporter::{Exporter, Sources};
use crate::metrics::Metrics;
use crate::vip::VipHandle;

pub use error::{ApiError, LeaderHint};

/// What the admin API needs from the rest of the broker.
pub struct AdminContext {
    pub cluster: Cluster,
    pub metrics: Arc<Metrics>,
    /// `admin.token`; empty disables the `/cluster/*` routes.
    pub token: String,
    /// `raft.lease_ms`, to report whether the lease is held.
    pub lease: Duration,
    /// This node's VIP, to report whether it holds it.
    pub vip: VipHandle,
    /// The password and ACL files, for `/auth/reload`.
    pub auth: Arc<Auth>,
}

impl AdminContext {
    pub fn new(
        cluster: Cluster,
        metrics: Arc<Metrics>,
        vip: VipHandle,
        auth: Arc<Auth>,
        config: &Config,
    ) -> AdminContext {
        AdminContext {
            cluster,
            metrics,
            token: config.admin.token.clone(),
            lease: Duration::from_millis(config.raft.lease_ms),
            vip,
            auth,
        }
    }
}

/// Shared by every request.
struct Shared {
    cluster: Cluster,
    metrics: Arc<Metrics>,
    token: auth::AdminToken,
    lease: Duration,
    tracker: StatusTracker,
    vip: VipHandle,
    exporter: Exporter,
    series: series::Series,
    auth: Arc<Auth>,
}

type AppState = Arc<Shared>;

impl Shared {
    /// Status without the MQTT counts, which walk every session: for checks on each request.
    fn raft_status(&self) -> ClusterStatus {
        self.tracker
            .status(&self.cluster, self.lease, MqttStatus::default())
    }

    fn full_status(&self) -> ClusterStatus {
        let stats = self.cluster.state().read().stats();
        let mqtt = MqttStatus {
            sessions: stats.sessions,
            sessions_online: stats.sessions_online,
            connections: Metrics::get(&self.metrics.clients_connected),
        };
        let mut status = self.tracker.status(&self.cluster, self.lease, mqtt);
        // Only the holder knows it holds the VIP; the active node is where to ask.
        if self.vip.held() {
            status.vip_holder = Some(self.cluster.node_id());
        }
        status
    }
}

/// Serve the admin API on `listener` until `shutdown` resolves. Errors are logged: the
/// broker goes on without its admin API rather than stopping.
pub async fn serve(
    listener: TcpListener,
    ctx: AdminContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    match listener.local_addr() {
        Ok(addr) => info!(addr = %addr, "admin API listening"),
        Err(e) => info!(error = %e, "admin API listening (address unknown)"),
    }
    if ctx.token.is_empty() {
        warn!("admin.token is empty: /cluster/* answers 503 until a token is configured");
    }
    let tracker = StatusTracker::spawn(&ctx.cluster);
    let exporter = Exporter::new(Sources {
        metrics: ctx.metrics.clone(),
        cluster: ctx.cluster.clone(),
        tracker: tracker.clone(),
        vip: ctx.vip.clone(),
        lease: ctx.lease,
    });
    let state = Arc::new(Shared {
        tracker,
        exporter,
        series: series::Series::default(),
        token: auth::AdminToken::new(&ctx.token),
        cluster: ctx.cluster,
        metrics: ctx.metrics,
        lease: ctx.lease,
        vip: ctx.vip,
        auth: ctx.auth,
    });
    tokio::spawn(series::sample(Arc::downgrade(&state)));
    if let Err(e) = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
    {
        warn!(error = %e, "admin API stopped");
    }
}

fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::metrics::metrics))
        .route("/", get(routes::page::page))
        .route("/status/summary", get(routes::page::summary))
        .route("/status/series", get(routes::page::series))
        .route("/cluster/status", get(routes::status::status))
        .route("/cluster/digest", get(routes::digest::digest))
        .route("/cluster/backup", get(routes::backup::backup))
        .route("/cluster/learners", post(routes::membership::add_learner))
        .route("/cluster/voters", post(routes::membership::change_voters))
        .route(
            "/cluster/nodes/{id}",
            delete(routes::membership::remove_node),
        )
        .route("/auth/reload", post(routes::auth::reload))
        .route("/bans", get(routes::bans::list).post(routes::bans::add))
        .route("/bans/{kind}/{value}", delete(routes::bans::lift))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
