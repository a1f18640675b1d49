//! raftmq's replicated core. Pure: no I/O, no clock, no randomness, so the same log always
//! gives the same state, byte for byte.
//!
//! # Layout
//! - `ids`: newtypes for every identifier (`NodeId`, `ClientId`, `PacketId`, `ConnId`, `MessageId`).
//! - `types`: the openraft type configuration and `Member`, the node record kept in membership.
//! - `message`: an application message as stored, queued and routed (`Message`, `QoS`, `Will`).
//! - `command`: what the leader proposes: a `Command` is one Raft entry holding many `Op`s.
//! - `response`: what applying a command answers, one `Reply` per op.
//! - `effect`: what applying asks the active node to do (deliver, resend PUBREL, close).
//! - `state`: the deterministic MQTT state machine (sessions, queues, retained, subscriptions,
//!   wills) and its snapshot and mirror forms; its submodules are listed in `state/mod.rs`.
//! - `error`: this crate's error enum.

pub mod command;
pub mod effect;
pub mod error;
pub mod ids;
pub mod message;
pub mod response;
pub mod state;
pub mod types;

pub use command::{Ack, AckKind, Command, Connect, Op, SubscribeRequest};
pub use effect::{CloseReason, Delivery, DropEffects, Effect, EffectSink};
pub use error::RaftError;
pub use ids::{ClientId, ConnId, MessageId, NodeId, PacketId};
pub use message::{Message, PublishProps, QoS, SubOptions, Will};
pub use response::{Reply, Response, SubResult};
pub use state::{MirrorWrite, SessionInfo, SharedState, State, Stats};
pub use types::{Member, TypeConfig};
