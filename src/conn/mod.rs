//! Connections: accept sockets (TCP, TLS), frame bytes into packets, run one task per
//! connection (CONNECT deadline, keepalive, pipelined acks, the router mailbox).
//!
//! # Layout
//! - `listener`: accept loops for plain TCP and TLS.
//! - `io`: the read buffer and write batching around a byte stream.
//! - `task`: one connection's life from CONNECT to close.

mod io;
mod listener;
mod task;

pub use listener::{serve_tcp, serve_tls};
