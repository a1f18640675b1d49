//! Connections: accept sockets (TCP, TLS, WebSocket, WebSocket over TLS), frame bytes into packets, run one task per
//! connection (CONNECT deadline, keepalive, pipelined acks, the router mailbox).
//!
//! # Layout
//! - `listener`: accept loops for plain TCP, TLS and WebSocket (plain or TLS).
//! - `ws`: the WebSocket upgrade on `/mqtt` and the WebSocket-as-byte-stream adapter.
//! - `io`: the read buffer and write batching around a byte stream.
//! - `task`: one connection's life from CONNECT to close.

mod io;
mod listener;
mod task;
mod ws;

pub use listener::{serve_tcp, serve_tls, serve_ws};
pub use ws::PATH as WS_PATH;
