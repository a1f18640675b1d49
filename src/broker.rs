//! The broker context every connection shares: configuration, the cluster handle, the
//! router, counters, `$SYS` and the shutdown signal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use raftmq_raft::ConnId;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::sys::Sys;

pub struct Broker {
    pub config: Config,
    pub cluster: Cluster,
    pub router: Arc<Router>,
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
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Broker {
        Broker {
            config,
            cluster,
            router,
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
