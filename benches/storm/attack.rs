//! The storm's three attackers, each counting how the broker answered every attempt: a
//! connection flood from one address, a flapping client id, and an auth hammer. Every
//! socket is closed with RST (linger 0) as soon as it is answered, so the flood neither
//! piles up open files nor TIME_WAIT ports.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use raftmq::codec::{Codec, Connect, Packet, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::{timeout, Instant};

use crate::load::next_frame;

/// How long one attempt may take before it counts as unanswered.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// How the broker answered one connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// CONNACK with return code 0.
    Accepted,
    /// CONNACK refusing with this 3.1.1 return code.
    Refused(u8),
    /// Closed without a CONNACK (refused at the door), or the connect itself failed.
    Closed,
    /// Nothing within `ANSWER_WITHIN`.
    TimedOut,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Accepted => f.write_str("accepted (CONNACK 0)"),
            Answer::Refused(4) => f.write_str("refused: CONNACK 4 bad user name or password"),
            Answer::Refused(5) => f.write_str("refused: CONNACK 5 not authorized"),
            Answer::Refused(3) => f.write_str("refused: CONNACK 3 server unavailable"),
            Answer::Refused(rc) => write!(f, "refused: CONNACK {rc}"),
            Answer::Closed => f.write_str("closed without CONNACK (door)"),
            Answer::TimedOut => f.write_str("no answer within 3 s"),
        }
    }
}

/// Counts of answers, shared by an attacker's tasks.
#[derive(Default)]
pub struct Tally {
    answers: Mutex<BTreeMap<Answer, u64>>,
    attempts: AtomicU64,
}

impl Tally {
    fn add(&self, answer: Answer) {
        *self.answers.lock().entry(answer).or_default() += 1;
    }

    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub fn print(&self, name: &str) {
        println!("  {name}: {} attempts", self.attempts());
        for (answer, n) in self.answers.lock().iter() {
            println!("    {n:>7}  {answer}");
        }
    }
}

/// An encoded 3.1.1 CONNECT.
fn connect_bytes(client_id: &str, login: Option<(&str, &str)>) -> Bytes {
    let mut codec = Codec::new(1 << 20);
    codec.set_protocol(Protocol::V4);
    let mut out = BytesMut::new();
    let packet = Packet::Connect(Box::new(Connect {
        protocol: Some(Protocol::V4),
        client_id: client_id.into(),
        clean_start: true,
        keep_alive: 30,
        username: login.map(|(u, _)| u.to_owned()),
        password: login.map(|(_, p)| Bytes::copy_from_slice(p.as_bytes())),
        ..Connect::default()
    }));
    codec.encode(&packet, &mut out).expect("encode CONNECT");
    out.freeze()
}

/// One attempt: connect from `source`, send `connect`, read the answer; on acceptance send
/// DISCONNECT first when `disconnect`. The socket is reset when this returns.
async fn attempt(port: u16, source: Ipv4Addr, connect: &[u8], disconnect: bool) -> Answer {
    let Ok(socket) = TcpSocket::new_v4() else {
        return Answer::Closed;
    };
    if socket.bind(SocketAddr::from((source, 0))).is_err() {
        return Answer::Closed;
    }
    // Close with RST: no TIME_WAIT for thousands of short connections. Deprecated because a
    // non-zero linger blocks the thread on drop; a zero linger never waits.
    #[allow(deprecated)]
    let reset = socket.set_linger(Some(Duration::ZERO));
    if reset.is_err() {
        return Answer::Closed;
    }
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = match timeout(ANSWER_WITHIN, socket.connect(to)).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return Answer::Closed,
        Err(_) => return Answer::TimedOut,
    };
    if stream.write_all(connect).await.is_err() {
        return Answer::Closed;
    }
    let mut buf = BytesMut::with_capacity(64);
    let answer = loop {
        if let Some(frame) = next_frame(&mut buf) {
            break match (frame.kind, frame.body.get(1)) {
                (2, Some(0)) => Answer::Accepted,
                (2, Some(rc)) => Answer::Refused(*rc),
                _ => Answer::Closed,
            };
        }
        match timeout(ANSWER_WITHIN, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => break Answer::Closed,
            Err(_) => break Answer::TimedOut,
        }
    };
    if answer == Answer::Accepted && disconnect {
        let _ = stream.write_all(&[0xE0, 0x00]).await;
    }
    answer
}

/// `tasks` parallel loops of attempts until `until` or `max_attempts` in all.
async fn run(
    tally: Arc<Tally>,
    tasks: usize,
    max_attempts: u64,
    until: Instant,
    one: impl Fn(u64) -> (Bytes, bool) + Clone + Send + 'static,
    port: u16,
    source: Ipv4Addr,
) {
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let tally = tally.clone();
        let one = one.clone();
        handles.push(tokio::spawn(async move {
            while Instant::now() < until {
                let n = tally.attempts.fetch_add(1, Ordering::Relaxed);
                if n >= max_attempts {
                    tally.attempts.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                let (connect, disconnect) = one(n);
                let answer = attempt(port, source, &connect, disconnect).await;
                tally.add(answer);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// Tens of thousands of connects from one address, each with a new client id.
pub async fn flood(port: u16, source: Ipv4Addr, until: Instant, max: u64) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let one = |n: u64| (connect_bytes(&format!("storm-{n}"), None), false);
    run(tally.clone(), 200, max, until, one, port, source).await;
    tally
}

/// One client id connecting and disconnecting in a tight loop.
pub async fn flapper(port: u16, source: Ipv4Addr, until: Instant) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let connect = connect_bytes("flapper", None);
    let one = move |_| (connect.clone(), true);
    run(tally.clone(), 1, u64::MAX, until, one, port, source).await;
    tally
}

/// Wrong passwords for one user name, as fast as the broker answers.
pub async fn hammer(port: u16, source: Ipv4Addr, until: Instant) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let one = |n: u64| {
        let password = format!("guess-{n}");
        (
            connect_bytes(&format!("hammer-{n}"), Some(("alice", &password))),
            false,
        )
    };
    run(tally.clone(), 4, u64::MAX, until, one, port, source).await;
    tally
}
