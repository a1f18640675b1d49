//! Scenario tests as data, in the shape of etcd's `testdata/*.txt`: each file in
//! `tests/testdata/` is a script of blocks, each block some input lines, `----`, and the
//! expected output, ended by a blank line. `#` lines between blocks are comments.
//! `REWRITE=1 cargo test -p raftmq-raft --test scenarios` rewrites the expected outputs
//! (then read the diff: it is the review).
//!
//! Input lines (consecutive op lines form one `Command`):
//! - `time <ms>`: the `now_ms` of the commands that follow.
//! - `connect <client> <conn> [clean] [expiry=<secs>|max] [rm=<n>] [mps=<n>] [mq=<n>] [v=4|5]
//!   [will=<topic>:<payload>[:q<n>][:delay=<secs>][:retain][:exp=<secs>]]
//!   [mqb=<bytes>] [oldest]` (defaults: expiry=max rm=10 mq=100 v=5, no byte limit, drop
//!   newest).
//! - `disconnect <client> <conn> [graceful] [expiry=<secs>]`
//! - `publish <client> <conn> <topic> <payload|""> [q<n>] [pid=<n>] [retain] [exp=<secs>]`
//! - `pubrel <client> <conn> <pid>`; `puback|pubrec|pubcomp <client> <conn> <pid>...`
//! - `subscribe <client> <conn> <filter> [q<n>] [nl] [rap] [rh=<n>] [id=<n>] [<filter> ...]`
//! - `unsubscribe <client> <conn> <filter>...`; `tick`; `reset`
//! - `ban clientid|ip|username <value> <until_ms> [reason]`; `unban clientid|ip|username <value>`
//! - `stats`; `session <client>`; `transient <publisher> <topic> <payload>` (QoS 0 in memory);
//!   `bans` (every stored ban); `qbytes` (queued bytes of all sessions).
//!
//! Every command is also applied to a state rebuilt from the mirror written so far, and the
//! two must answer alike and end byte-identical; the mirror must equal `to_mirror()`, and
//! the snapshot must round-trip.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use raftmq_raft::{
    Ack, AckKind, BanTarget, ClientId, Command, ConnId, Connect, Delivery, Effect, Message, NodeId,
    Op, PacketId, QoS, QueuePolicy, Reply, State, SubOptions, SubResult, SubscribeRequest, Will,
};

fn conn(name: &str) -> ConnId {
    let seq = name.strip_prefix('c').and_then(|n| n.parse().ok());
    ConnId {
        node: NodeId(1),
        epoch: 7,
        seq: seq.unwrap_or_else(|| panic!("connection names are c<N>: {name}")),
    }
}

fn conn_name(c: &ConnId) -> String {
    format!("c{}", c.seq)
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

fn qos(s: &str) -> Option<QoS> {
    s.strip_prefix('q').and_then(|n| QoS::from_u8(num(n)))
}

fn payload(s: &str) -> Bytes {
    Bytes::from(if s == "\"\"" {
        String::new()
    } else {
        s.to_owned()
    })
}

fn message(topic: &str, body: &str, now: u64) -> Message {
    Message {
        topic: topic.to_owned(),
        payload: payload(body),
        received_ms: now,
        ..Message::default()
    }
}

fn parse_will(spec: &str, now: u64) -> Will {
    let mut parts = spec.split(':');
    let topic = parts.next().unwrap_or_default();
    let mut will = Will {
        message: message(topic, parts.next().unwrap_or_default(), now),
        delay_secs: 0,
    };
    for p in parts {
        if let Some(q) = qos(p) {
            will.message.qos = q;
        } else if let Some(d) = p.strip_prefix("delay=") {
            will.delay_secs = num(d);
        } else if let Some(e) = p.strip_prefix("exp=") {
            // A will keeps its expiry interval relative until it fires.
            will.message.expires_at_ms = Some(num::<u64>(e) * 1000);
        } else if p == "retain" {
            will.message.retain = true;
        } else {
            panic!("unknown will option {p}");
        }
    }
    will
}

fn parse_op(words: &[&str], now: u64) -> Op {
    let client = || ClientId::from(words[1]);
    let c = || conn(words[2]);
    let rest = words.get(3..).unwrap_or_default();
    match words[0] {
        "connect" => {
            let mut op = Connect {
                client: client(),
                conn: c(),
                clean_start: false,
                session_expiry: u32::MAX,
                receive_maximum: 10,
                maximum_packet_size: None,
                max_queued: 100,
                max_queued_bytes: u64::MAX,
                queue_policy: QueuePolicy::DropNewest,
                will: None,
                protocol: 5,
            };
            for w in rest {
                match w.split_once('=') {
                    None if *w == "clean" => op.clean_start = true,
                    None if *w == "oldest" => op.queue_policy = QueuePolicy::DropOldest,
                    Some(("mqb", v)) => op.max_queued_bytes = num(v),
                    Some(("expiry", "max")) => op.session_expiry = u32::MAX,
                    Some(("expiry", v)) => op.session_expiry = num(v),
                    Some(("rm", v)) => op.receive_maximum = num(v),
                    Some(("mps", v)) => op.maximum_packet_size = Some(num(v)),
                    Some(("mq", v)) => op.max_queued = num(v),
                    Some(("v", v)) => op.protocol = num(v),
                    Some(("will", v)) => op.will = Some(parse_will(v, now)),
                    _ => panic!("unknown connect option {w}"),
                }
            }
            Op::Connect(op)
        }
        "disconnect" => Op::Disconnect {
            client: client(),
            conn: c(),
            graceful: rest.contains(&"graceful"),
            session_expiry: rest.iter().find_map(|w| w.strip_prefix("expiry=")).map(num),
        },
        "publish" => {
            let mut m = message(rest[0], rest[1], now);
            m.publisher = Some(client());
            let mut packet_id = None;
            for w in &rest[2..] {
                if let Some(q) = qos(w) {
                    m.qos = q;
                } else if let Some(p) = w.strip_prefix("pid=") {
                    packet_id = Some(PacketId(num(p)));
                } else if let Some(e) = w.strip_prefix("exp=") {
                    m.expires_at_ms = Some(now + num::<u64>(e) * 1000);
                } else if *w == "retain" {
                    m.retain = true;
                } else {
                    panic!("unknown publish option {w}");
                }
            }
            Op::Publish {
                client: client(),
                conn: c(),
                packet_id,
                message: m,
            }
        }
        "pubrel" => Op::PubRel {
            client: client(),
            conn: c(),
            packet_id: PacketId(num(rest[0])),
        },
        kind @ ("puback" | "pubrec" | "pubcomp") => {
            let kind = match kind {
                "puback" => AckKind::PubAck,
                "pubrec" => AckKind::PubRec,
                _ => AckKind::PubComp,
            };
            let acks = rest.iter().map(|p| Ack {
                client: client(),
                conn: c(),
                packet_id: PacketId(num(p)),
                kind,
            });
            Op::Acks(acks.collect())
        }
        "subscribe" => {
            let mut requests: Vec<SubscribeRequest> = Vec::new();
            for w in rest {
                let last = requests.last_mut();
                match (w.split_once('='), qos(w), last) {
                    (_, Some(q), Some(r)) => r.options.qos = q,
                    (None, _, Some(r)) if *w == "nl" => r.options.no_local = true,
                    (None, _, Some(r)) if *w == "rap" => r.options.retain_as_published = true,
                    (Some(("rh", v)), _, Some(r)) => r.options.retain_handling = num(v),
                    (Some(("id", v)), _, Some(r)) => r.options.subscription_id = Some(num(v)),
                    _ => requests.push(SubscribeRequest {
                        filter: (*w).to_owned(),
                        options: SubOptions::default(),
                    }),
                }
            }
            Op::Subscribe {
                client: client(),
                conn: c(),
                requests,
            }
        }
        "ban" => Op::Ban {
            target: ban_target(words),
            until_ms: num(words[3]),
            reason: words.get(4..).unwrap_or_default().join(" "),
        },
        "unban" => Op::Unban {
            target: ban_target(words),
        },
        "unsubscribe" => Op::Unsubscribe {
            client: client(),
            conn: c(),
            filters: rest.iter().map(|f| (*f).to_owned()).collect(),
        },
        "tick" => Op::Tick,
        "reset" => Op::ResetConnections,
        other => panic!("unknown op {other}"),
    }
}

fn ban_target(words: &[&str]) -> BanTarget {
    BanTarget {
        kind: words[1]
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {}", words.join(" "))),
        value: words[2].to_owned(),
    }
}

fn fmt_reply(r: &Reply) -> String {
    match r {
        Reply::Connected { session_present } => format!("connected present={session_present}"),
        Reply::NotOwner => "not-owner".into(),
        Reply::Disconnected => "disconnected".into(),
        Reply::Published { matched } => format!("published matched={matched}"),
        Reply::Duplicate => "duplicate".into(),
        Reply::Released { known } => format!("released known={known}"),
        Reply::Subscribed(results) => {
            let granted = results.iter().map(|r| match r {
                SubResult::Granted(q) => format!("q{}", *q as u8),
                SubResult::Invalid => "invalid".into(),
            });
            format!("subscribed {}", granted.collect::<Vec<_>>().join(" "))
        }
        Reply::Unsubscribed(existed) => format!("unsubscribed {existed:?}"),
        Reply::Acked => "acked".into(),
        Reply::Ticked => "ticked".into(),
        Reply::ConnectionsReset { count } => format!("reset count={count}"),
        Reply::Banned { stored } => format!("banned stored={stored}"),
        Reply::Unbanned { existed } => format!("unbanned existed={existed}"),
    }
}

fn fmt_delivery(client: &ClientId, conn: &ConnId, d: &Delivery) -> String {
    let mut s = format!(
        "deliver {client} {} {} {:?} q{}",
        conn_name(conn),
        d.message.topic,
        String::from_utf8_lossy(&d.message.payload),
        d.qos as u8
    );
    if let Some(p) = d.packet_id {
        let _ = write!(s, " pid={p}");
    }
    if d.dup {
        s.push_str(" dup");
    }
    if d.retain {
        s.push_str(" retain");
    }
    if !d.subscription_ids.is_empty() {
        let _ = write!(s, " ids={:?}", d.subscription_ids);
    }
    s
}

fn fmt_effect(e: &Effect) -> String {
    match e {
        Effect::Deliver {
            client,
            conn,
            delivery,
        } => fmt_delivery(client, conn, delivery),
        Effect::PubRel {
            client,
            conn,
            packet_id,
        } => format!("pubrel {client} {} pid={packet_id}", conn_name(conn)),
        Effect::Close { client, conn, .. } => {
            format!("close {client} {} taken-over", conn_name(conn))
        }
    }
}

/// One state under test, with the mirror written from it so far.
struct Harness {
    state: State,
    mirror: BTreeMap<Vec<u8>, Vec<u8>>,
    now: u64,
}

impl Harness {
    fn apply(&mut self, ops: Vec<Op>, out: &mut Vec<String>) {
        let cmd = Command {
            now_ms: self.now,
            ops,
        };
        let mut reloaded = State::from_mirror(self.mirror.clone()).expect("mirror loads");
        let (response, effects) = self.state.apply(&cmd);
        let again = reloaded.apply(&cmd);
        assert_eq!(
            (&response, &effects),
            (&again.0, &again.1),
            "a reloaded state answers alike"
        );
        out.extend(response.replies.iter().map(fmt_reply));
        out.extend(effects.iter().map(|e| format!("> {}", fmt_effect(e))));
        for w in self.state.take_dirty() {
            match w.value {
                Some(v) => self.mirror.insert(w.key, v),
                None => self.mirror.remove(&w.key),
            };
        }
        let bytes = self.state.to_snapshot_bytes().expect("encodes");
        let reloaded_bytes = reloaded.to_snapshot_bytes().expect("encodes");
        assert!(bytes == reloaded_bytes, "reloaded state diverged");
        let from_mirror = State::from_mirror(self.mirror.clone()).expect("mirror loads");
        assert!(
            from_mirror.to_snapshot_bytes().expect("encodes") == bytes,
            "mirror round trip"
        );
        let full: BTreeMap<_, _> = self
            .state
            .to_mirror()
            .into_iter()
            .map(|w| (w.key, w.value.unwrap_or_default()))
            .collect();
        let differ: Vec<_> = full
            .iter()
            .filter(|(k, v)| self.mirror.get(*k) != Some(v))
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .chain(
                self.mirror
                    .keys()
                    .filter(|k| !full.contains_key(*k))
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
            )
            .collect();
        assert!(
            differ.is_empty(),
            "take_dirty left the mirror unlike to_mirror(): {differ:?}"
        );
        let restored = State::from_snapshot_bytes(&bytes).expect("snapshot loads");
        assert!(
            restored.to_snapshot_bytes().expect("encodes") == bytes,
            "snapshot round trip"
        );
        assert_eq!(restored.stats(), self.state.stats());
    }

    fn meta(&self, words: &[&str], out: &mut Vec<String>) -> bool {
        match words[0] {
            "stats" => {
                let s = self.state.stats();
                out.push(format!(
                    "sessions={} online={} subs={} retained={} stored={} queued={} inflight={} dropped_full={} expired={} too_large={}",
                    s.sessions, s.sessions_online, s.subscriptions, s.retained, s.stored_messages,
                    s.queued_messages, s.inflight_messages, s.dropped_queue_full, s.expired_messages,
                    s.dropped_too_large
                ));
            }
            "session" => {
                let info = self
                    .state
                    .sessions()
                    .find(|s| s.client.as_str() == words[1]);
                out.push(match info {
                    None => format!("no session {}", words[1]),
                    Some(s) => format!(
                        "session {} conn={} v={} expiry={} subs={} inflight={} queued={}",
                        s.client,
                        s.conn.as_ref().map_or("-".into(), conn_name),
                        s.protocol,
                        s.expiry_secs,
                        s.subscriptions,
                        s.inflight,
                        s.queued
                    ),
                });
            }
            "transient" => {
                let mut m = message(words[2], words[3], self.now);
                m.publisher = Some(ClientId::from(words[1]));
                let deliveries = self.state.route_transient(&Arc::new(m));
                out.push(format!("transient {}", deliveries.len()));
                out.extend(
                    deliveries
                        .iter()
                        .map(|(c, n, d)| format!("> {}", fmt_delivery(c, n, d))),
                );
            }
            "bans" => {
                out.push(format!("bans {}", self.state.bans().count()));
                out.extend(self.state.bans().map(|(t, b)| {
                    format!(
                        "> ban {} {} since={} until={} reason={:?}",
                        t.kind, t.value, b.since_ms, b.until_ms, b.reason
                    )
                }));
            }
            "qbytes" => out.push(format!("queued_bytes={}", self.state.queued_bytes())),
            _ => return false,
        }
        true
    }

    fn run_block(&mut self, input: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut ops = Vec::new();
        for line in input {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words[0] == "time" {
                if !ops.is_empty() {
                    self.apply(std::mem::take(&mut ops), &mut out);
                }
                self.now = num(words[1]);
                continue;
            }
            if ["stats", "session", "transient", "bans", "qbytes"].contains(&words[0]) {
                if !ops.is_empty() {
                    self.apply(std::mem::take(&mut ops), &mut out);
                }
                self.meta(&words, &mut out);
                continue;
            }
            ops.push(parse_op(&words, self.now));
        }
        if !ops.is_empty() {
            self.apply(ops, &mut out);
        }
        out
    }
}

struct Block {
    preamble: Vec<String>,
    input: Vec<String>,
    expected: Vec<String>,
}

fn parse_file(text: &str) -> (Vec<Block>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut preamble = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            preamble.push(line.to_owned());
            continue;
        }
        let mut input = vec![line.to_owned()];
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            input.push(l.to_owned());
        }
        let expected = lines
            .by_ref()
            .take_while(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        blocks.push(Block {
            preamble: std::mem::take(&mut preamble),
            input,
            expected,
        });
    }
    (blocks, preamble)
}

fn run_file(path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (blocks, tail) = parse_file(&text);
    let mut h = Harness {
        state: State::new(),
        mirror: BTreeMap::new(),
        now: 1_000_000,
    };
    let mut rewritten = String::new();
    let mut failures = String::new();
    for b in &blocks {
        let got = h.run_block(&b.input);
        if got != b.expected {
            let _ = writeln!(
                failures,
                "{}: after\n  {}\nexpected\n  {}\ngot\n  {}\n",
                path.display(),
                b.input.join("\n  "),
                b.expected.join("\n  "),
                got.join("\n  ")
            );
        }
        for l in b.preamble.iter().chain(&b.input) {
            rewritten.push_str(l);
            rewritten.push('\n');
        }
        rewritten.push_str("----\n");
        for l in &got {
            rewritten.push_str(l);
            rewritten.push('\n');
        }
        rewritten.push('\n');
    }
    if std::env::var_os("REWRITE").is_some() {
        let tail = tail.iter().skip_while(|l| l.trim().is_empty());
        for l in tail {
            rewritten.push_str(l);
            rewritten.push('\n');
        }
        let trimmed = rewritten.trim_end().to_owned() + "\n";
        std::fs::write(path, trimmed).map_err(|e| e.to_string())?;
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

fn run(name: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata")
        .join(name);
    if let Err(failures) = run_file(&path) {
        panic!("{failures}");
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(concat!(stringify!($name), ".txt"));
            }
        )*

        /// Every script in the directory has its test above.
        #[test]
        fn all_scripts_listed() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
            let mut found: Vec<String> = std::fs::read_dir(dir)
                .expect("testdata dir")
                .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
                .collect();
            found.sort();
            let mut listed = vec![$(concat!(stringify!($name), ".txt").to_owned()),*];
            listed.sort();
            assert_eq!(found, listed);
        }
    };
}

scenarios!(
    connect,
    qos1,
    qos2,
    retained,
    topics,
    shared,
    wills,
    expiry,
    bans,
    queue_limits,
    window,
);
