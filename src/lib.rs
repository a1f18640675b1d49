//! raftmq: an MQTT 3.1.1 and 5.0 broker whose acknowledgements mean a Raft quorum has the
//! change on disk. This library is the broker; `main.rs` wires in storage and runs it.
//!
//! # Layout
//! - `codec`: bytes <-> packets (mqttbytes wrapped, validated, its bugs worked around).
//! - `conn`: listeners and the per-connection task (framing, keepalive, write batching).
//! - `session`: what each packet means: proposals, acks, deliveries.
//! - `router`: live connections by id; turns state-machine effects into writes.
//! - `cluster`: the handle to Raft: batched proposals, leadership, housekeeping ticks.
//! - `broker`: the context every connection shares.
//! - `auth`: password and ACL files (Mosquitto's formats), TLS identities, the
//!   authentication rate limit, `raftmq passwd`.
//! - `admin`: the admin HTTP API (axum): cluster status and membership, health, metrics.
//! - `ctl`: `raftmq ctl`, the operator's client of the admin API.
//! - `config`: TOML + environment + flags, validated, errors naming keys.
//! - `cli`: command-line parsing.
//! - `tls`: rustls server configuration.
//! - `sys`: `$SYS/broker/...` topics.
//! - `limits`: connection limits at the door, flapping detection, publish rate, topic size.
//! - `metrics`: broker-wide counters.
//! - `latency`: lock-free latency histograms (fsync, commit, PUBACK).
//! - `exporter`: the Prometheus exposition of metrics, state totals and Raft.
//! - `clock`: wall-clock milliseconds for the edges.
//! - `vip`: the virtual IP the active node holds (netlink + gratuitous ARP, or hook commands).

pub mod admin;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod conn;
pub mod ctl;
pub mod exporter;
pub mod latency;
pub mod limits;
pub mod metrics;
pub mod router;
pub mod session;
pub mod sys;
pub mod tls;
pub mod vip;
