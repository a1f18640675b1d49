//! The broker context every connection shares: configuration, the cluster handle, the
//! router, authentication and ACLs, counters, `$SYS` and the shutdown signal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use raftmq_raft::ConnId;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::limits::Door;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::sys::Sys;

pub struct Broker {
    pub config: Config,
    pub cluster: Cluster,
    pub router: Arc<Router>,
    pub auth: Arc<Auth>,
    /// Connection limits and flapping detection.
    pub door: Arc<Door>,
    pub metrics: Arc<Metrics>,
    pub sys: Arc<Sys>,
    /// Flips to true once on SIGTERM / Ctrl-C.
    pub shutdown: watch::Receiver<bool>,
    epoch: u64,
    next_conn: AtomicU64,
}

impl Broker {
    pub fn new(
        config: Config,
        cluster: Cluster,
        router: Arc<Router>,
        auth: Arc<Auth>,
        door: Arc<Door>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Broker {
        Broker {
            config,
            cluster,
            router,
            auth,
            door,
            metrics,
            sys: Arc::new(Sys::new()),
            shutdown,
            epoch: crate::clock::now_ms(),
            next_conn: AtomicU64::new(1),
        }
    }

    /// A connection id no other connection of any node or process run shares.
    pub fn next_conn_id(&self) -> ConnId {
        ConnId {
            node: self.cluster.node_id(),
            epoch: self.epoch,
            seq: self.next_conn.fetch_add(1, Ordering::Relaxed),
        }
    }
}
