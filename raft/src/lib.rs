//! raftmq's replicated core. Pure: no I/O, no clock, no randomness, so the same log always
//! gives the same state, byte for byte. The one exception is `network`, the Raft transport,
//! which nothing in the state machine uses.
//!
//! # Layout
//! - `backup`: the backup file (state bytes behind a versioned header and a SHA-256).
//! - `ban`: bans (by client id, IP or user name) that refuse CONNECTs until they run out.
//! - `ids`: newtypes for every identifier (`NodeId`, `ClientId`, `PacketId`, `ConnId`, `MessageId`).
//! - `types`: the openraft type configuration and `Member`, the node record kept in membership.
//! - `message`: an application message as stored, queued and routed (`Message`, `QoS`, `Will`).
//! - `command`: what the leader proposes: a `Command` is one Raft entry holding many `Op`s.
//! - `response`: what applying a command answers, one `Reply` per op.
//! - `effect`: what applying asks the active node to do (deliver, resend PUBREL, close).
//! - `state`: the deterministic MQTT state machine (sessions, queues, retained, subscriptions,
//!   wills) and its snapshot and mirror forms; its submodules are listed in `state/mod.rs`.
//! - `error`: this crate's error enum (the transport has its own, `network::TransportError`).
//! - `network`: the Raft RPC transport between members: framed bincode over TCP, a mutual HMAC
//!   handshake on the cluster secret, optional mutual TLS; the client openraft calls and the
//!   server that feeds the local `Raft`.

pub mod backup;
pub mod ban;
pub mod command;
pub mod effect;
pub mod error;
pub mod ids;
pub mod message;
pub mod network;
pub mod response;
pub mod state;
pub mod types;

pub use backup::Backup;
pub use ban::{Ban, BanKind, BanTarget};
pub use command::{Ack, AckKind, Command, Connect, Op, QueuePolicy, SubscribeRequest};
pub use effect::{CloseReason, Delivery, DropEffects, Effect, EffectSink};
pub use error::RaftError;
pub use ids::{ClientId, ConnId, MessageId, NodeId, PacketId};
pub use message::{Message, PublishProps, QoS, SubOptions, TopicAlias, Will};
pub use response::{Reply, Response, SubResult};
pub use state::{MirrorWrite, SessionInfo, SharedState, State, Stats};
pub use types::{Member, TypeConfig};
