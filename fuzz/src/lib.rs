//! Code shared by the fuzz targets (each target in `fuzz_targets/` is a thin entry point).
//!
//! # Layout
//! - `session`: arbitrary sequences of client operations driving the replicated session
//!   state machine (`raftmq_raft::State`), with its invariants checked after every command.

pub mod session;
