//! Broker processes for the benchmarks: a free port, a child that is killed when dropped,
//! and waiting until raftmq serves MQTT.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::{Duration, Instant};

/// A port nothing listens on now (the broker binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A broker process, killed and reaped when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read a raftmq child's standard output (piped) until it logs that it serves MQTT, then
/// keep draining it on a thread so it never blocks on a full pipe.
pub fn wait_serving(child: &mut Child) {
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("serving MQTT") => break,
            Some(Ok(_)) => {}
            _ => panic!("raftmq did not start"),
        }
        assert!(Instant::now() < deadline, "raftmq did not become active");
    }
    std::thread::spawn(move || for _ in lines {});
}
