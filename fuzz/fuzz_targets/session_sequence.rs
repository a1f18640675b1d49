//! Arbitrary sequences of client operations (CONNECT, SUBSCRIBE, PUBLISH QoS 0/1/2, the
//! acks, DISCONNECT, ticks, bans) as the session layer proposes them, applied to the
//! replicated state machine. What is checked is listed in `raftmq_fuzz::session`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raftmq_fuzz::session::{run, Sequence};

fuzz_target!(|sequence: Sequence| run(&sequence));
