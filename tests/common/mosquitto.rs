//! Mosquitto's command-line clients as test peers: `mosquitto_sub` running in the background
//! with its output collected line by line, and `mosquitto_pub` run to completion.

#![allow(dead_code)]

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Lines;

/// A running `mosquitto_sub`; killed when dropped.
pub struct Sub {
    child: Child,
    lines: Lines,
}

impl Sub {
    /// `mosquitto_sub -h 127.0.0.1 -p <port> <args>`; stdout and stderr are collected.
    pub fn spawn(port: u16, args: &[&str]) -> Sub {
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let lines = super::capture_lines(&mut child);
        Sub { child, lines }
    }

    /// Wait until an output line satisfies `pred`; panics with the output after `timeout`.
    pub fn wait_line(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        let (store, cv) = &*self.lines;
        let mut guard = store.lock().unwrap();
        loop {
            if guard.iter().any(|l| pred(l)) {
                return;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "mosquitto_sub printed no {what} within {timeout:?}:\n{}",
                guard.join("\n")
            );
            guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Wait for the process to exit (bounded); returns its status and every line it printed.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait mosquitto_sub") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto_sub still running after {timeout:?}:\n{}",
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader threads see EOF right after the exit; wait for them to drain.
        let drained = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.lines) > 1 && Instant::now() < drained {
            std::thread::sleep(Duration::from_millis(10));
        }
        (status, self.output())
    }

    pub fn output(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().clone()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_pub -h 127.0.0.1 -p <port> <args>` to completion; panics unless it succeeds.
pub fn publish(port: u16, args: &[&str]) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
