//! Shared by the network tests: in-process nodes on real sockets, captured logs, and a raw
//! client that speaks the wire protocol byte by byte.

#![allow(dead_code)] // each test binary uses a different part

pub mod raw;
pub mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use openraft::{Config, Raft, ServerState};
use raftmq_raft::network::{serve, Network, NetworkConfig};
use raftmq_raft::{Command, Member, NodeId, Op, SharedState, TypeConfig};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use store::{LogStore, StateMachine};

pub const SECRET: &str = "correct horse battery staple";
/// Bound on every wait: generous, a debug build on two busy cores is slow.
pub const WAIT: Duration = Duration::from_secs(20);

/// openraft settings for tests: short but not flappy timeouts on a loaded machine, and a
/// snapshot chunk timeout that a debug build meets.
pub fn raft_config() -> Arc<Config> {
    let config = Config {
        cluster_name: "raftmq-test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        install_snapshot_timeout: 10_000,
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid raft config"))
}

pub struct Node {
    pub id: NodeId,
    pub raft: Raft<TypeConfig>,
    pub state: SharedState,
    pub member: Member,
    pub network: Network,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Node {
    /// A node with its server on a fresh 127.0.0.1 port.
    pub async fn start(config: NetworkConfig) -> Node {
        init_logs();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let network = Network::new(&config).unwrap();
        let sm = StateMachine::default();
        let state = sm.state.clone();
        let raft = Raft::new(
            config.node_id,
            raft_config(),
            network.clone(),
            LogStore::default(),
            sm,
        )
        .await
        .unwrap();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(serve(listener, raft.clone(), network.auth(), async {
            let _ = rx.await;
        }));
        Node {
            id: config.node_id,
            raft,
            state,
            member: Member {
                raft_addr: addr,
                mqtt_addr: String::new(),
                admin_addr: String::new(),
            },
            network,
            stop: Some(tx),
            server: Some(server),
        }
    }

    pub async fn plain(id: u64, secret: &str) -> Node {
        Node::start(NetworkConfig::new(NodeId(id), secret)).await
    }

    /// Stops the RPC server (every open connection included) and then Raft itself.
    pub async fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
        self.raft.shutdown().await.unwrap();
    }

    pub fn snapshot_bytes(&self) -> Vec<u8> {
        self.state.read().to_snapshot_bytes().unwrap()
    }
}

/// Initializes a cluster of `nodes` on the first one and returns the leader's id.
pub async fn form(nodes: &[&Node]) -> NodeId {
    let members: BTreeMap<NodeId, Member> =
        nodes.iter().map(|n| (n.id, n.member.clone())).collect();
    nodes[0].raft.initialize(members).await.unwrap();
    leader_of(nodes).await
}

/// The leader the given nodes agree on (waits until every one of them sees one, the same).
pub async fn leader_of(nodes: &[&Node]) -> NodeId {
    let mut seen = None;
    for n in nodes {
        let m = n
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| m.current_leader.is_some() && (seen.is_none() || m.current_leader == seen),
                "agreed leader",
            )
            .await
            .unwrap();
        seen = m.current_leader;
    }
    let leader = seen.unwrap();
    let node = nodes.iter().find(|n| n.id == leader).unwrap();
    node.raft
        .wait(Some(WAIT))
        .state(ServerState::Leader, "leader state")
        .await
        .unwrap();
    leader
}

/// Writes `n` housekeeping commands through `leader` and returns the last log index.
pub async fn write_ticks(leader: &Node, n: u64) -> u64 {
    let mut last = 0;
    for i in 0..n {
        let cmd = Command {
            now_ms: 1_000 + i,
            ops: vec![Op::Tick],
        };
        last = leader.raft.client_write(cmd).await.unwrap().log_id.index;
    }
    last
}

pub async fn wait_applied(nodes: &[&Node], index: u64) {
    for n in nodes {
        n.raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(index), "applied")
            .await
            .unwrap();
    }
}

/// Every log line of this test binary (target `raftmq_raft`, debug and up), kept in memory.
pub struct Logs {
    text: Mutex<String>,
    lines: watch::Sender<u64>,
}

static LOGS: OnceLock<Arc<Logs>> = OnceLock::new();

pub fn init_logs() -> Arc<Logs> {
    LOGS.get_or_init(|| {
        let logs = Arc::new(Logs {
            text: Mutex::new(String::new()),
            lines: watch::channel(0).0,
        });
        let sink = Arc::clone(&logs);
        let _ = tracing_subscriber::fmt()
            .with_env_filter("raftmq_raft=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .try_init();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Logs>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .text
            .lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(buf));
        self.0.lines.send_modify(|n| *n += 1);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.text
            .lock()
            .unwrap()
            .lines()
            .filter(|l| pred(l))
            .count()
    }

    /// Waits (woken by each new line, not by polling) until some line satisfies `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let mut changed = self.lines.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self
                .text
                .lock()
                .unwrap()
                .lines()
                .find(|l| pred(l))
                .map(str::to_owned);
            if found.is_some() {
                return found;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }
}
