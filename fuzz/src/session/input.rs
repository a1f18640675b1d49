//! What a fuzz input means: batches of steps, each step one client's operation. Small
//! fixed tables (clients, topics, filters) make collisions likely, so inputs exercise
//! overlap, takeover and shared groups; `Raw` variants let arbitrary strings and packet ids
//! through, because apply trusts nothing.

use arbitrary::Arbitrary;
use raftmq_raft::{AckKind, BanKind, QoS, QueuePolicy};

/// How many distinct client ids the steps name.
pub const CLIENTS: usize = 4;

pub const TOPICS: &[&str] = &["a", "a/b", "a/c", "b/x", "$SYS/s", "s/1", "s/2", "a/b/c"];

pub const FILTERS: &[&str] = &[
    "a/#",
    "a/+",
    "#",
    "+/x",
    "a/b",
    "s/1",
    "$SYS/#",
    "+",
    "$share/g/a/#",
    "$share/g/s/+",
    "$share/h/#",
    "$share/g/#",
];

/// A whole input: one Raft entry per batch.
#[derive(Arbitrary, Debug)]
pub struct Sequence {
    pub batches: Vec<Batch>,
}

/// One `Command`: the leader's clock moves by `advance`, then the steps, in order.
#[derive(Arbitrary, Debug)]
pub struct Batch {
    pub advance: Advance,
    pub steps: Vec<Step>,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Advance {
    None,
    Millis(u16),
    Seconds(u8),
    /// Past every expiry and will delay the inputs can set.
    Hours(u8),
}

impl Advance {
    pub fn millis(self) -> u64 {
        match self {
            Advance::None => 0,
            Advance::Millis(ms) => u64::from(ms),
            Advance::Seconds(s) => u64::from(s) * 1000,
            Advance::Hours(h) => u64::from(h) * 3_600_000,
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Step {
    /// Index into the clients, modulo `CLIENTS`.
    pub client: u8,
    /// Whether the op comes from the client's current connection or from an older one
    /// (taken over, or never connected): the state must refuse the latter.
    pub stale: bool,
    pub action: Action,
}

#[derive(Arbitrary, Debug)]
pub enum Action {
    Connect(ConnectSpec),
    Disconnect {
        graceful: bool,
        expiry: Option<Expiry>,
    },
    Publish(PublishSpec),
    /// Inbound QoS 2 release.
    PubRel(u8),
    Subscribe(Vec<(Name, SubSpec)>),
    Unsubscribe(Vec<Name>),
    Ack(AckSpec, PacketRef),
    Tick,
    ResetConnections,
    Ban {
        kind: BanSpec,
        value: Name,
        seconds: u8,
    },
    Unban {
        kind: BanSpec,
        value: Name,
    },
}

#[derive(Arbitrary, Debug)]
pub struct ConnectSpec {
    pub clean_start: bool,
    pub v5: bool,
    pub expiry: Expiry,
    /// 0 is refused at the door; apply treats it as 1.
    pub receive_maximum: u8,
    pub maximum_packet_size: Option<u8>,
    pub max_queued: u8,
    pub max_queued_bytes: u8,
    pub drop_oldest: bool,
    pub will: Option<WillSpec>,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Expiry {
    Zero,
    Seconds(u8),
    Never,
}

impl Expiry {
    pub fn secs(self) -> u32 {
        match self {
            Expiry::Zero => 0,
            Expiry::Seconds(s) => u32::from(s),
            Expiry::Never => u32::MAX,
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct WillSpec {
    pub topic: Name,
    pub qos: u8,
    pub retain: bool,
    pub delay_secs: u8,
    pub expiry_secs: Option<u8>,
}

#[derive(Arbitrary, Debug)]
pub struct PublishSpec {
    pub topic: Name,
    pub qos: u8,
    pub retain: bool,
    pub payload_len: u8,
    pub expiry_secs: Option<u8>,
    /// QoS 2 packet id, 1..=8 so that duplicates and PUBRELs meet.
    pub packet_id: u8,
}

#[derive(Arbitrary, Debug)]
pub struct SubSpec {
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
    pub subscription_id: Option<u8>,
}

/// A topic, filter or ban value: from the table (`Known`, by index) or any string.
#[derive(Arbitrary, Debug)]
pub enum Name {
    Known(u8),
    Raw(String),
}

impl Name {
    pub fn pick(&self, table: &[&str]) -> String {
        match self {
            Name::Known(i) => table[usize::from(*i) % table.len()].to_owned(),
            Name::Raw(s) => s.chars().take(24).collect(),
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum AckSpec {
    PubAck,
    PubRec,
    PubComp,
}

impl From<AckSpec> for AckKind {
    fn from(a: AckSpec) -> AckKind {
        match a {
            AckSpec::PubAck => AckKind::PubAck,
            AckSpec::PubRec => AckKind::PubRec,
            AckSpec::PubComp => AckKind::PubComp,
        }
    }
}

/// Which packet id an ack names.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum PacketRef {
    /// One the broker sent this client and has not seen completed (by index, modulo).
    Sent(u8),
    /// Any id, 0 included.
    Raw(u16),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum BanSpec {
    ClientId,
    Ip,
    Username,
}

impl From<BanSpec> for BanKind {
    fn from(b: BanSpec) -> BanKind {
        match b {
            BanSpec::ClientId => BanKind::ClientId,
            BanSpec::Ip => BanKind::Ip,
            BanSpec::Username => BanKind::Username,
        }
    }
}

pub fn qos(v: u8) -> QoS {
    QoS::from_u8(v % 3).unwrap_or_default()
}

pub fn queue_policy(drop_oldest: bool) -> QueuePolicy {
    if drop_oldest {
        QueuePolicy::DropOldest
    } else {
        QueuePolicy::DropNewest
    }
}
