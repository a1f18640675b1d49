//! The Raft transport on real sockets: clusters formed, replicated, failed over and fed a
//! large snapshot through it; wrong secrets, strangers, garbage and certless TLS clients
//! refused. Each test uses its own node ids so log lines can be told apart.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork};
use openraft::raft::VoteRequest;
use openraft::{ServerState, Vote};
use raftmq_raft::network::{Network, NetworkConfig, PeerClient, TlsFiles};
use raftmq_raft::{ClientId, Command, ConnId, Connect, Member, Message, NodeId, Op};
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::{form, init_logs, leader_of, raw, wait_applied, write_ticks, Node, SECRET, WAIT};

fn opt() -> RPCOption {
    RPCOption::new(Duration::from_secs(5))
}

/// A vote RPC that no sane node grants (term 0): enough to see the transport work.
async fn probe(client: &mut PeerClient, from: u64) -> Result<bool, String> {
    client
        .vote(VoteRequest::new(Vote::new(0, NodeId(from)), None), opt())
        .await
        .map(|r| r.vote_granted)
        .map_err(|e| match e {
            RPCError::Unreachable(u) => format!("unreachable: {u}"),
            other => format!("other: {other}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_then_fail_over() {
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(Node::plain(id, SECRET).await);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    let leader = form(&refs).await;
    let first = nodes.iter().find(|n| n.id == leader).unwrap();
    let last = write_ticks(first, 20).await;
    wait_applied(&refs, last).await;
    let bytes = first.snapshot_bytes();
    for n in &nodes {
        assert_eq!(n.snapshot_bytes(), bytes, "node {} diverged", n.id);
    }

    let old = nodes.iter().position(|n| n.id == leader).unwrap();
    nodes[old].kill().await;
    let survivors: Vec<&Node> = nodes.iter().filter(|n| n.id != leader).collect();
    for n in &survivors {
        n.raft
            .wait(Some(WAIT))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != leader),
                "a new leader",
            )
            .await
            .unwrap();
    }
    let new_leader = leader_of(&survivors).await;
    assert_ne!(new_leader, leader);
    let next = survivors.iter().find(|n| n.id == new_leader).unwrap();
    let after = write_ticks(next, 5).await;
    assert!(after > last);
    wait_applied(&survivors, after).await;
    for n in &survivors {
        n.raft.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_can_neither_vote_nor_join() {
    let logs = init_logs();
    let good = Node::plain(11, SECRET).await;
    form(&[&good]).await;
    let bad = Node::plain(19, "not the cluster secret").await;

    // Its RPCs never reach Raft: the handshake fails and openraft is told "unreachable".
    let mut client = bad.network.client(good.id, &good.member);
    let err = probe(&mut client, 19).await.unwrap_err();
    assert!(err.starts_with("unreachable"), "{err}");
    let line = logs
        .wait_for(|l| l.contains("refused raft peer") && l.contains("claimed_node=19"))
        .await
        .expect("the server logs the refusal");
    assert!(line.contains("WARN") && line.contains("node=11"), "{line}");

    // Campaigning: node 19 believes node 11 is a fellow voter and keeps asking for votes.
    // Had any request got through, its higher term would have made node 11 step down.
    let term = good.raft.metrics().borrow().current_term;
    let members = BTreeMap::from([(good.id, good.member.clone()), (bad.id, bad.member.clone())]);
    bad.raft.initialize(members).await.unwrap();
    bad.raft
        .wait(Some(WAIT))
        .metrics(|m| m.current_term >= term + 3, "node 19 campaigned")
        .await
        .unwrap();
    {
        let m = good.raft.metrics().borrow().clone();
        assert_eq!((m.current_term, m.state), (term, ServerState::Leader));
    }

    // Joining: the leader adds it as a learner, and its replication is refused by node 19.
    good.raft
        .add_learner(bad.id, bad.member.clone(), false)
        .await
        .unwrap();
    logs.wait_for(|l| {
        l.contains("refused raft peer") && l.contains("node=19") && l.contains("claimed_node=11")
    })
    .await
    .expect("node 19 refuses the leader");
    let m = good.raft.metrics().borrow().clone();
    let matched = m.replication.as_ref().and_then(|r| r.get(&bad.id).cloned());
    assert_eq!(matched, Some(None), "nothing was replicated to node 19");
    // The cluster itself is unaffected.
    let last = write_ticks(&good, 3).await;
    wait_applied(&[&good], last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_snapshot_reaches_a_new_learner() {
    let logs = init_logs();
    let leader = Node::plain(21, SECRET).await;
    form(&[&leader]).await;
    let last = retained_messages(&leader, 11, 1 << 20).await;
    let size = leader.snapshot_bytes().len();
    assert!(size >= 10_000_000, "state is only {size} bytes");

    leader.raft.trigger().snapshot().await.unwrap();
    let m = leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= last), "snapshot")
        .await
        .unwrap();
    let snap = m.snapshot.unwrap();
    leader.raft.trigger().purge_log(snap.index).await.unwrap();
    leader
        .raft
        .wait(Some(WAIT))
        .purged(Some(snap), "purged")
        .await
        .unwrap();

    // Node 22 can only catch up from the snapshot: the log below it is gone.
    let learner = Node::plain(22, SECRET).await;
    tokio::time::timeout(
        WAIT,
        leader
            .raft
            .add_learner(learner.id, learner.member.clone(), true),
    )
    .await
    .expect("learner caught up in time")
    .unwrap();
    let m = learner
        .raft
        .wait(Some(WAIT))
        .applied_index_at_least(Some(snap.index), "installed")
        .await
        .unwrap();
    assert_eq!(m.snapshot, Some(snap), "caught up through the snapshot");
    let chunks = logs.count(|l| l.contains("snapshot chunk received") && l.contains("node=22"));
    assert!(chunks >= 4, "{size} bytes came in {chunks} chunks");
    assert_eq!(learner.snapshot_bytes(), leader.snapshot_bytes());

    // Replication goes on in the log after the snapshot.
    let after = write_ticks(&leader, 2).await;
    wait_applied(&[&leader, &learner], after).await;
    assert_eq!(learner.snapshot_bytes(), leader.snapshot_bytes());
}

/// Connects a session and publishes `count` retained messages of `size` bytes through
/// `leader`, one entry each, every message's bytes distinct. Returns the last log index.
async fn retained_messages(leader: &Node, count: u8, size: usize) -> u64 {
    let client = ClientId::from("big");
    let conn = ConnId {
        node: leader.id,
        epoch: 1,
        seq: 1,
    };
    let connect = Op::Connect(Connect {
        client: client.clone(),
        conn,
        clean_start: true,
        session_expiry: u32::MAX,
        receive_maximum: 10,
        maximum_packet_size: None,
        max_queued: 10,
        max_queued_bytes: u64::MAX,
        queue_policy: raftmq_raft::QueuePolicy::DropNewest,
        will: None,
        protocol: 5,
    });
    let mut last = write(leader, vec![connect]).await;
    for i in 0..count {
        let payload: Vec<u8> = (0..size).map(|j| (j as u8) ^ i).collect();
        let publish = Op::Publish {
            client: client.clone(),
            conn,
            packet_id: None,
            message: Message {
                topic: format!("big/{i}"),
                payload: Bytes::from(payload),
                retain: true,
                ..Message::default()
            },
        };
        last = write(leader, vec![publish]).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_the_frame_limit_are_split() {
    let logs = init_logs();
    let small = |id: u64| NetworkConfig {
        max_frame_bytes: 256 << 10,
        ..NetworkConfig::new(NodeId(id), SECRET)
    };
    let leader = Node::start(small(61)).await;
    form(&[&leader]).await;
    // 600 KiB of log that a new learner needs in full: openraft would send it in one
    // append; the client answers "payload too large" until a batch fits in 256 KiB.
    let last = retained_messages(&leader, 30, 20 << 10).await;
    let learner = Node::start(small(62)).await;
    tokio::time::timeout(
        WAIT,
        leader
            .raft
            .add_learner(learner.id, learner.member.clone(), true),
    )
    .await
    .expect("learner caught up in time")
    .unwrap();
    wait_applied(&[&learner], last).await;
    assert_eq!(learner.raft.metrics().borrow().snapshot, None);
    let splits = logs.count(|l| l.contains("asking openraft to split") && l.contains("target=62"));
    assert!(splits >= 1, "no batch was split");
    assert_eq!(learner.snapshot_bytes(), leader.snapshot_bytes());
}

async fn write(node: &Node, ops: Vec<Op>) -> u64 {
    let cmd = Command { now_ms: 1_000, ops };
    node.raft.client_write(cmd).await.unwrap().log_id.index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_close_only_their_connection() {
    let logs = init_logs();
    // A short handshake deadline: one case below is a peer that never sends its proof.
    let node = Node::start(NetworkConfig {
        handshake_timeout: Duration::from_millis(300),
        ..NetworkConfig::new(NodeId(31), SECRET)
    })
    .await;
    form(&[&node]).await;
    let addr = node.member.raft_addr.clone();
    let stale_vote = || VoteRequest::new(Vote::new(0, NodeId(39)), None);

    // One authenticated connection that must outlive everything below.
    let mut kept = raw::authenticated(&addr, 39, SECRET, 31).await;
    assert!(!raw::vote(&mut kept, stale_vote()).await.vote_granted);

    // Garbage where the handshake proof belongs.
    let (mut s, _nonce) = raw::greeting(&addr).await;
    s.write_all(&[0xAB; 100]).await.unwrap();
    assert!(raw::closed_by_server(&mut s).await);

    // Authenticated, then a length far over the frame limit.
    let mut s = raw::authenticated(&addr, 38, SECRET, 31).await;
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(raw::closed_by_server(&mut s).await);
    logs.wait_for(|l| l.contains("node=31") && l.contains("exceeds the limit"))
        .await
        .expect("oversized frame logged");

    // Authenticated, then a well-sized frame of garbage.
    let mut s = raw::authenticated(&addr, 37, SECRET, 31).await;
    raw::send_frame(&mut s, &[0xFF; 64]).await;
    assert!(raw::closed_by_server(&mut s).await);

    // Authenticated, then a frame cut short by a half-close.
    let mut s = raw::authenticated(&addr, 36, SECRET, 31).await;
    s.write_all(&1000u32.to_be_bytes()).await.unwrap();
    s.write_all(&[1; 10]).await.unwrap();
    s.shutdown().await.unwrap();
    assert!(raw::closed_by_server(&mut s).await);

    // Silence instead of a proof is cut off by the handshake deadline, not kept forever.
    let (mut s, _nonce) = raw::greeting(&addr).await;
    assert!(raw::closed_by_server(&mut s).await);

    assert!(!raw::vote(&mut kept, stale_vote()).await.vote_granted);
    let last = write_ticks(&node, 2).await;
    wait_applied(&[&node], last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_checks_who_answers() {
    let net = Network::new(&NetworkConfig::new(NodeId(41), SECRET)).unwrap();

    // A listener that greets properly but cannot prove the secret.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Member {
        raft_addr: listener.local_addr().unwrap().to_string(),
        ..Member::default()
    };
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut hello = b"RMQ1".to_vec();
            hello.extend_from_slice(&[9; 32]);
            s.write_all(&hello).await.unwrap();
            let mut proof = [0u8; 72];
            if s.read_exact(&mut proof).await.is_ok() {
                let _ = s.write_all(&[0u8; 40]).await;
            }
        }
    });
    let err = probe(&mut net.client(NodeId(42), &fake), 41)
        .await
        .unwrap_err();
    assert!(
        err.starts_with("unreachable") && err.contains("did not prove"),
        "{err}"
    );

    // A real member, but not the node the membership says lives at that address.
    let other = Node::plain(43, SECRET).await;
    let err = probe(&mut net.client(NodeId(44), &other.member), 41)
        .await
        .unwrap_err();
    assert!(
        err.starts_with("unreachable") && err.contains("found node 43"),
        "{err}"
    );

    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = Member {
        raft_addr: closed.local_addr().unwrap().to_string(),
        ..Member::default()
    };
    drop(closed);
    let err = probe(&mut net.client(NodeId(45), &gone), 41)
        .await
        .unwrap_err();
    assert!(err.starts_with("unreachable"), "{err}");

    // The right node (uninitialized, so it may grant the vote), twice on one connection.
    let mut good = net.client(other.id, &other.member);
    probe(&mut good, 41).await.unwrap();
    probe(&mut good, 41).await.unwrap();
}

/// A CA, and a certificate it signs for 127.0.0.1 / localhost, as PEM files in `dir`.
fn certificates(dir: &Path, name: &str) -> TlsFiles {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let path = |f: &str| -> PathBuf { dir.join(format!("{name}-{f}")) };
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("cert.pem"), cert.pem()).unwrap();
    std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
    TlsFiles {
        cert: path("cert.pem"),
        key: path("key.pem"),
        ca: path("ca.pem"),
        server_name: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_cluster_forms_and_certless_clients_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let tls = certificates(dir.path(), "cluster");
    let with_tls = |id: u64, files: &TlsFiles| NetworkConfig {
        tls: Some(files.clone()),
        ..NetworkConfig::new(NodeId(id), SECRET)
    };
    let mut nodes = Vec::new();
    for id in 51..=53 {
        nodes.push(Node::start(with_tls(id, &tls)).await);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    let leader = form(&refs).await;
    let leader = nodes.iter().find(|n| n.id == leader).unwrap();
    let last = write_ticks(leader, 5).await;
    wait_applied(&refs, last).await;
    let target = &nodes[0];

    // Plain TCP with the right secret: the TLS server never gets a ClientHello it accepts.
    let plain = Network::new(&NetworkConfig::new(NodeId(58), SECRET)).unwrap();
    let err = probe(&mut plain.client(target.id, &target.member), 58)
        .await
        .unwrap_err();
    assert!(err.starts_with("unreachable"), "{err}");

    // TLS that trusts the cluster CA but presents no certificate: the server ends the session
    // before a single byte of the handshake.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&tls.ca).unwrap();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&target.member.raft_addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    // With TLS 1.3 the client may finish its side before the server checks its certificate;
    // either way no greeting ever arrives.
    if let Ok(mut s) = connector.connect(name, tcp).await {
        let mut hello = [0u8; 36];
        assert!(s.read_exact(&mut hello).await.is_err());
    }

    // A certificate from another CA.
    let rogue = certificates(dir.path(), "rogue");
    let rogue = TlsFiles {
        ca: tls.ca.clone(),
        ..rogue
    };
    let net = Network::new(&with_tls(59, &rogue)).unwrap();
    let err = probe(&mut net.client(target.id, &target.member), 59)
        .await
        .unwrap_err();
    assert!(err.starts_with("unreachable"), "{err}");

    // The cluster did not notice.
    let after = write_ticks(leader, 2).await;
    wait_applied(&refs, after).await;
}
