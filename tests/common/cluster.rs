//! A local cluster for the black-box tests: N `raftmq` processes on 127.0.0.1, each on fixed
//! ports (members must know each other's addresses before they start), driven with kill -9,
//! SIGSTOP/SIGCONT and restarts on their data directories. Also a packet-level MQTT 5.0 link
//! that reports failures instead of panicking (nodes die under it), and helpers that find
//! the active leader by asking each node for a session, as a client would.

#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::TcpListener as StdListener;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, Connect, ConnectProperties, ConnectReturnCode, Disconnect, DisconnectReasonCode,
    LastWill, Packet,
};
use rumqttc::v5::mqttbytes::Error as WireError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

pub use super::raw_v5::NoPacket;
use super::Broker;

/// The shared Raft secret of test clusters.
pub const SECRET: &str = "raftmq-cluster-test-secret";

/// How long a cluster may take to have an active leader after a failure: election timeout,
/// the vote, the lease and the connection reset, with a wide margin for a loaded machine.
pub const ELECTION: Duration = Duration::from_secs(20);

/// How long one connection attempt may take (a SIGSTOPped node accepts TCP but never answers).
pub const ATTEMPT: Duration = Duration::from_secs(2);

/// Ports tests of this process already took (tests of one file run in parallel).
static RESERVED: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// `count` consecutive free ports for the test `name`, below the kernel's ephemeral range
/// (32768 and up) so that no outgoing connection can take one. The start depends on the
/// test name and the process id; ports are checked free by binding them.
pub fn reserve_ports(name: &str, count: usize) -> Vec<u16> {
    const LOW: usize = 20_000;
    const HIGH: usize = 32_000;
    let mut h = DefaultHasher::new();
    (name, std::process::id()).hash(&mut h);
    let blocks = (HIGH - LOW) / count;
    let first = (h.finish() % blocks as u64) as usize;
    let mut reserved = RESERVED.lock().unwrap();
    for i in 0..blocks {
        let base = LOW + ((first + i) % blocks) * count;
        let ports: Vec<u16> = (base..base + count).map(|p| p as u16).collect();
        let free = ports
            .iter()
            .all(|p| !reserved.contains(p) && StdListener::bind(("127.0.0.1", *p)).is_ok());
        if free {
            reserved.extend(&ports);
            return ports;
        }
    }
    panic!("no {count} free consecutive ports between {LOW} and {HIGH}");
}

pub struct Node {
    pub id: u64,
    pub raft_port: u16,
    pub mqtt_port: u16,
    pub admin_port: u16,
    pub broker: Broker,
    stopped: bool,
}

impl Node {
    pub fn mqtt_addr(&self) -> String {
        format!("127.0.0.1:{}", self.mqtt_port)
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Three ports per node id (raft, mqtt, admin), with room for `SPARE` more nodes.
    ports: Vec<u16>,
    env: Vec<(String, String)>,
    node_env: Vec<(u64, String, String)>,
    _tmp: tempfile::TempDir,
}

/// Nodes a cluster can add (`add_node`) beyond its initial members.
pub const SPARE: usize = 2;

pub struct ClusterBuilder {
    name: String,
    size: usize,
    env: Vec<(String, String)>,
    node_env: Vec<(u64, String, String)>,
}

impl ClusterBuilder {
    pub fn nodes(mut self, n: usize) -> ClusterBuilder {
        self.size = n;
        self
    }

    /// An environment variable for every node.
    pub fn env(mut self, k: &str, v: &str) -> ClusterBuilder {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// An environment variable for node `id` only (after the common ones, so it wins).
    pub fn node_env(mut self, id: u64, k: &str, v: &str) -> ClusterBuilder {
        self.node_env.push((id, k.to_owned(), v.to_owned()));
        self
    }

    /// Start every node (each returns once it listens; none is waited for to lead).
    pub fn start(self) -> Cluster {
        let ports = reserve_ports(&self.name, 3 * (self.size + SPARE));
        let tmp = tempfile::tempdir().expect("tempdir");
        let ids: Vec<u64> = (1..=self.size as u64).collect();
        let port = |id: u64, k: usize| ports[3 * (id as usize - 1) + k];
        let peers = ids
            .iter()
            .map(|&id| {
                format!(
                    "{id}=127.0.0.1:{}/127.0.0.1:{}/127.0.0.1:{}",
                    port(id, 0),
                    port(id, 1),
                    port(id, 2)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        // All at once, as an operator starting three machines would.
        let builders: Vec<(u64, super::Builder)> = ids
            .iter()
            .map(|&id| {
                let b = node_builder(tmp.path(), id, &ports, &peers, &self.env, &self.node_env);
                (id, b)
            })
            .collect();
        let brokers: Vec<(u64, Broker)> = blocking(|| {
            std::thread::scope(|s| {
                let started: Vec<_> = builders
                    .into_iter()
                    .map(|(id, b)| s.spawn(move || (id, b.start())))
                    .collect();
                started
                    .into_iter()
                    .map(|h| h.join().expect("a node failed to start"))
                    .collect()
            })
        });
        let nodes = brokers
            .into_iter()
            .map(|(id, broker)| Node {
                id,
                raft_port: port(id, 0),
                mqtt_port: port(id, 1),
                admin_port: port(id, 2),
                broker,
                stopped: false,
            })
            .collect();
        Cluster {
            nodes,
            ports,
            env: self.env,
            node_env: self.node_env,
            _tmp: tmp,
        }
    }
}

/// A member's process: its ports, data directory and the shared peer list.
fn node_builder(
    tmp: &std::path::Path,
    id: u64,
    ports: &[u16],
    peers: &str,
    env: &[(String, String)],
    node_env: &[(u64, String, String)],
) -> super::Builder {
    let port = |k: usize| ports[3 * (id as usize - 1) + k];
    let (raft_port, mqtt_port, admin_port) = (port(0), port(1), port(2));
    let mut b = Broker::builder()
        .name(&format!("node {id} (mqtt {mqtt_port}, raft {raft_port})"))
        .standby()
        .dir(&tmp.join(format!("node{id}")))
        .mqtt_listen(&format!("127.0.0.1:{mqtt_port}"))
        .arg("--node-id")
        .arg(&id.to_string())
        .arg("--raft-listen")
        .arg(&format!("127.0.0.1:{raft_port}"))
        .arg("--admin-listen")
        .arg(&format!("127.0.0.1:{admin_port}"))
        .arg("--peers")
        .arg(peers)
        .env("RAFTMQ_RAFT_SECRET", SECRET);
    for (k, v) in env {
        b = b.env(k, v);
    }
    for (_, k, v) in node_env.iter().filter(|(n, _, _)| *n == id) {
        b = b.env(k, v);
    }
    b
}

/// Run a blocking harness call (waiting on a child's log) without stalling the runtime's
/// other tasks, when called from inside a multi-threaded runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(f),
        Err(_) => f(),
    }
}

impl Cluster {
    /// A cluster for the test `name` (ports derive from it); start it with `.start()`.
    pub fn builder(name: &str) -> ClusterBuilder {
        ClusterBuilder {
            name: name.to_owned(),
            size: 3,
            env: Vec::new(),
            node_env: Vec::new(),
        }
    }

    /// Three nodes with the default configuration.
    pub fn start(name: &str) -> Cluster {
        Cluster::builder(name).start()
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn mqtt_port(&self, id: u64) -> u16 {
        self.node(id).mqtt_port
    }

    pub fn mqtt_addr(&self, id: u64) -> String {
        self.node(id).mqtt_addr()
    }

    /// Every node's MQTT port, as a client given all node addresses holds them.
    pub fn mqtt_ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.mqtt_port).collect()
    }

    /// The node whose MQTT port this is.
    pub fn id_of_port(&self, port: u16) -> u64 {
        self.nodes
            .iter()
            .find(|n| n.mqtt_port == port)
            .map(|n| n.id)
            .unwrap_or_else(|| panic!("no node has MQTT port {port}"))
    }

    /// Nodes whose process runs and is not stopped.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.broker.is_running() && !n.stopped)
            .map(|n| n.id)
            .collect()
    }

    pub fn others(&self, id: u64) -> Vec<u64> {
        self.ids().into_iter().filter(|n| *n != id).collect()
    }

    /// Start a new node (the next id) that is not an initial member, with `--join`: it
    /// waits to be added (as a learner, through the admin API). Returns its id.
    pub fn add_node(&mut self) -> u64 {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        assert!(
            (id as usize) * 3 <= self.ports.len(),
            "no ports reserved for node {id} (SPARE = {SPARE})"
        );
        let port = |k: usize| self.ports[3 * (id as usize - 1) + k];
        // Its peer list names itself only: the members come from the cluster that adds it.
        let own = format!(
            "{id}=127.0.0.1:{}/127.0.0.1:{}/127.0.0.1:{}",
            port(0),
            port(1),
            port(2)
        );
        let b = node_builder(
            self._tmp.path(),
            id,
            &self.ports,
            &own,
            &self.env,
            &self.node_env,
        )
        .arg("--join");
        let broker = blocking(|| b.start());
        self.nodes.push(Node {
            id,
            raft_port: port(0),
            mqtt_port: port(1),
            admin_port: port(2),
            broker,
            stopped: false,
        });
        id
    }

    /// `ID=RAFT/MQTT/ADMIN` addresses of node `id`, as `POST /cluster/learners` takes them.
    pub fn addrs(&self, id: u64) -> (String, String, String) {
        let n = self.node(id);
        (
            format!("127.0.0.1:{}", n.raft_port),
            n.mqtt_addr(),
            format!("127.0.0.1:{}", n.admin_port),
        )
    }

    /// kill -9 (a stopped node is killed too) and wait until the process is gone.
    pub fn kill9(&mut self, id: u64) {
        let node = self.node_mut(id);
        node.broker.kill9();
        node.stopped = false;
    }

    /// Start a killed node again on its data directory and ports; returns once it listens.
    pub fn restart(&mut self, id: u64) {
        let node = self.node_mut(id);
        blocking(|| node.broker.restart());
    }

    /// SIGSTOP: the process freezes with its sockets open (to its peers, a silent node).
    pub fn stop(&mut self, id: u64) {
        let node = self.node_mut(id);
        signal(node.broker.pid(), "-STOP");
        node.stopped = true;
    }

    /// SIGCONT after `stop`.
    pub fn cont(&mut self, id: u64) {
        let node = self.node_mut(id);
        signal(node.broker.pid(), "-CONT");
        node.stopped = false;
    }

    pub fn pid(&self, id: u64) -> u32 {
        self.node(id).broker.pid()
    }

    /// Wait until node `id` logs a line containing `needle` (since it last started).
    pub fn wait_log(&self, id: u64, needle: &str, timeout: Duration) -> String {
        let node = self.node(id);
        blocking(|| node.broker.wait_log(needle, timeout))
    }

    pub fn log(&self, id: u64) -> String {
        self.node(id).broker.log()
    }

    /// The active leader among the running nodes: the one that accepts a session. Panics
    /// if there is none within `ELECTION`.
    pub async fn leader(&self) -> u64 {
        let among = self.running();
        match self.leader_among(&among, ELECTION).await {
            Some(id) => id,
            None => panic!("no node of {among:?} served MQTT within {ELECTION:?}"),
        }
    }

    /// The first of `among` to accept a session within `timeout`.
    pub async fn leader_among(&self, among: &[u64], timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            for &id in among {
                if probe(self.mqtt_port(id)).await == Probe::Serving {
                    return Some(id);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until follower `id` refuses a 5.0 session with a Server Reference naming
    /// `leader`: it heard from that leader (the leader's replication reached it).
    pub async fn wait_follower_of(&self, id: u64, leader: u64, timeout: Duration) {
        let want = Some(self.mqtt_addr(leader));
        let deadline = Instant::now() + timeout;
        loop {
            let got = probe(self.mqtt_port(id)).await;
            if let Probe::Refused {
                server_reference, ..
            } = &got
            {
                if *server_reference == want {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not refer clients to node {leader} within {timeout:?}: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Each Broker kills its process as it drops (SIGKILL ends a stopped process too)
        // and shows its log when the test failed; say first which node was in what state.
        if std::thread::panicking() {
            let states: Vec<String> = self
                .nodes
                .iter()
                .map(|n| {
                    let state = if !n.broker.is_running() {
                        "killed"
                    } else if n.stopped {
                        "stopped"
                    } else {
                        "running"
                    };
                    format!("node {} {state} (mqtt {})", n.id, n.mqtt_port)
                })
                .collect();
            eprintln!("cluster at failure: {}", states.join(", "));
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid} failed");
}

/// What a node answers to a 5.0 CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Serving,
    Refused {
        code: ConnectReturnCode,
        server_reference: Option<String>,
    },
    /// Connection refused, closed, or silent.
    Unreachable,
}

static PROBES: AtomicU64 = AtomicU64::new(0);

/// Ask the node on `port` for a clean 5.0 session and leave at once.
pub async fn probe(port: u16) -> Probe {
    let id = format!(
        "probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    );
    match Link::connect(port, connect_packet(&id, true, None), None).await {
        Ok((mut link, _)) => {
            link.disconnect().await;
            Probe::Serving
        }
        Err(LinkError::Refused(ack)) => Probe::Refused {
            code: ack.code,
            server_reference: ack.properties.and_then(|p| p.server_reference),
        },
        Err(_) => Probe::Unreachable,
    }
}

/// A 5.0 CONNECT, keep alive 60 s, with an optional session expiry interval.
pub fn connect_packet(id: &str, clean_start: bool, session_expiry: Option<u32>) -> Connect {
    let mut properties = ConnectProperties::new();
    properties.session_expiry_interval = session_expiry;
    Connect {
        keep_alive: 60,
        client_id: id.to_owned(),
        clean_start,
        properties: Some(properties),
    }
}

#[derive(Debug)]
pub enum LinkError {
    /// TCP connect failed.
    Unreachable(String),
    /// A CONNACK with a failure code.
    Refused(ConnAck),
    /// Closed or silent before the CONNACK.
    NoConnAck(NoPacket),
}

/// A packet-level MQTT 5.0 connection (rumqttc's v5 codec, no automatic acks) whose
/// failures are values: the node under it may die at any time.
pub struct Link {
    stream: TcpStream,
    buf: BytesMut,
    pub port: u16,
}

impl Link {
    /// Dial, send CONNECT (and `will`), and wait up to `ATTEMPT` for a successful CONNACK.
    pub async fn connect(
        port: u16,
        connect: Connect,
        will: Option<LastWill>,
    ) -> Result<(Link, ConnAck), LinkError> {
        let deadline = Instant::now() + ATTEMPT;
        let stream = match timeout_at(deadline, TcpStream::connect(("127.0.0.1", port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(LinkError::Unreachable(e.to_string())),
            Err(_) => return Err(LinkError::Unreachable("connect timed out".into())),
        };
        stream.set_nodelay(true).expect("nodelay");
        let mut link = Link {
            stream,
            buf: BytesMut::new(),
            port,
        };
        if !link.send(Packet::Connect(connect, will, None)).await {
            return Err(LinkError::NoConnAck(NoPacket::Closed));
        }
        loop {
            let within = deadline.saturating_duration_since(Instant::now());
            match link.read(within).await {
                Ok(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => {
                    return Ok((link, ack))
                }
                Ok(Packet::ConnAck(ack)) => return Err(LinkError::Refused(ack)),
                Ok(_) => {}
                Err(e) => return Err(LinkError::NoConnAck(e)),
            }
        }
    }

    /// Write a packet; false if the connection is gone.
    pub async fn send(&mut self, packet: Packet) -> bool {
        let mut out = BytesMut::new();
        packet.write(&mut out, None).expect("encode packet");
        self.stream.write_all(&out).await.is_ok()
    }

    /// The next packet, or why none: `Closed`, or `Silent` if nothing arrives within `within`.
    pub async fn read(&mut self, within: Duration) -> Result<Packet, NoPacket> {
        let deadline = Instant::now() + within;
        loop {
            // rumqttc's decoder refuses the 2-byte DISCONNECT the spec allows.
            if self.buf.starts_with(&[0xE0, 0x00]) {
                let _ = self.buf.split_to(2);
                return Ok(Packet::Disconnect(Disconnect::new(
                    DisconnectReasonCode::NormalDisconnection,
                )));
            }
            if !self.buf.is_empty() {
                match Packet::read(&mut self.buf, None) {
                    Ok(p) => return Ok(p),
                    Err(WireError::InsufficientBytes(_)) => {}
                    Err(e) => panic!("undecodable bytes from the broker ({e}): {:02x?}", self.buf),
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Err(NoPacket::Closed),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return Err(NoPacket::Silent),
            }
        }
    }

    /// A normal DISCONNECT; the socket is then dropped.
    pub async fn disconnect(&mut self) {
        let _ = self
            .send(Packet::Disconnect(Disconnect::new(
                DisconnectReasonCode::NormalDisconnection,
            )))
            .await;
        let _ = self.stream.shutdown().await;
    }
}

/// Connect to whichever of `ports` serves, as a client given every node's address does:
/// try each in turn (a refusal's Server Reference first), round after round, until
/// `within` passes. Returns the link and its CONNACK.
pub async fn connect_any(
    ports: &[u16],
    connect: &Connect,
    will: Option<&LastWill>,
    within: Duration,
) -> Option<(Link, ConnAck)> {
    let deadline = Instant::now() + within;
    let mut hint: Option<u16> = None;
    loop {
        let first = hint.take();
        let order: Vec<u16> = first
            .into_iter()
            .chain(ports.iter().copied().filter(|p| Some(*p) != first))
            .collect();
        for port in order {
            match Link::connect(port, connect.clone(), will.cloned()).await {
                Ok(ok) => return Some(ok),
                Err(LinkError::Refused(ack)) => {
                    let referred = ack
                        .properties
                        .and_then(|p| p.server_reference)
                        .and_then(|r| r.rsplit(':').next()?.parse::<u16>().ok())
                        .filter(|p| ports.contains(p));
                    if let Some(p) = referred {
                        // Follow the referral at once.
                        if let Ok(ok) = Link::connect(p, connect.clone(), will.cloned()).await {
                            return Some(ok);
                        }
                        hint = Some(p);
                    }
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A 5.0 will on `topic` with an optional will delay.
pub fn will(topic: &str, payload: &[u8], qos: u8, delay: Option<u32>) -> LastWill {
    let qos = match qos {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    };
    let properties = delay.map(|d| rumqttc::v5::mqttbytes::v5::LastWillProperties {
        delay_interval: Some(d),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    });
    LastWill {
        topic: Bytes::copy_from_slice(topic.as_bytes()),
        message: Bytes::copy_from_slice(payload),
        qos,
        retain: false,
        properties,
    }
}
