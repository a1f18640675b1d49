//! Test harness: runs the real `raftmq` binary as a child process on an ephemeral port with
//! its own data directory, and waits on what it logs (never on bare sleeps).

#![allow(dead_code)]

pub mod admin;
pub mod client;
pub mod client5;
pub mod cluster;
pub mod mosquitto;
pub mod pki;
pub mod raw;
pub mod raw_v4;
pub mod raw_v5;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a broker may take to become the active leader.
pub const READY: Duration = Duration::from_secs(30);

pub type Lines = Arc<(Mutex<Vec<String>>, Condvar)>;

/// Collect a child's stdout and stderr lines as they come, for `wait_line`-style waits.
pub fn capture_lines(child: &mut Child) -> Lines {
    let lines: Lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let (store, cv) = &*lines;
                store.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
    }
    lines
}

pub struct Broker {
    child: Option<Child>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub port: u16,
    lines: Lines,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    spawn: SpawnOptions,
}

impl Broker {
    /// A fresh broker in a new temporary data directory.
    pub fn start() -> Broker {
        Broker::builder().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The `host:port` clients should dial.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kill -9 and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for exit (bounded).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("broker did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start again on the same data directory (after kill9 or terminate). The port may
    /// change: read `port` again.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        let (child, port, lines) = spawn(&self.dir, &self.extra_args, &self.extra_env, &self.spawn);
        self.child = Some(child);
        self.port = port;
        self.lines = lines;
    }

    /// Wait until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        wait_line(&self.lines, needle, timeout).unwrap_or_else(|| {
            panic!(
                "no log line containing {needle:?} within {timeout:?}:\n{}",
                self.log()
            )
        })
    }

    pub fn log(&self) -> String {
        self.lines.0.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Whether the process is running (not killed or terminated through this handle).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let name = self.spawn.name.as_deref().unwrap_or("broker");
            eprintln!(
                "---- {name} log ----\n{}\n---- end of {name} log ----",
                self.log()
            );
        }
        self.kill9();
    }
}

#[derive(Default)]
pub struct Builder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    spawn: SpawnOptions,
}

/// How a broker process is started and waited for (kept for `restart`).
#[derive(Clone, Default)]
struct SpawnOptions {
    /// `--mqtt-listen`; `None`: `127.0.0.1:0`.
    mqtt_listen: Option<String>,
    /// Return once it listens, without waiting for it to serve (a cluster member that may
    /// be a follower).
    standby: bool,
    /// Shown with its log when a test fails.
    name: Option<String>,
    /// A command the binary runs under, e.g. `ip netns exec NS` (it must exec the binary,
    /// so the child's pid stays the broker's and `terminate` signals the broker itself).
    wrapper: Vec<String>,
}

impl Builder {
    pub fn arg(mut self, a: &str) -> Builder {
        self.args.push(a.to_owned());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Builder {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn dir(mut self, dir: &Path) -> Builder {
        self.dir = Some(dir.to_owned());
        self
    }

    /// Listen for MQTT on `addr` instead of an ephemeral port.
    pub fn mqtt_listen(mut self, addr: &str) -> Builder {
        self.spawn.mqtt_listen = Some(addr.to_owned());
        self
    }

    /// Do not wait for the broker to serve, only to listen (also on `restart`).
    pub fn standby(mut self) -> Builder {
        self.spawn.standby = true;
        self
    }

    /// The name its log is shown under when a test fails.
    pub fn name(mut self, name: &str) -> Builder {
        self.spawn.name = Some(name.to_owned());
        self
    }

    /// Run the binary under `wrapper` (e.g. `["ip", "netns", "exec", "ns1"]`).
    pub fn wrapper(mut self, wrapper: &[&str]) -> Builder {
        self.spawn.wrapper = wrapper.iter().map(|w| w.to_string()).collect();
        self
    }

    pub fn start(self) -> Broker {
        let (tmp, dir) = match self.dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let (child, port, lines) = spawn(&dir, &self.args, &self.env, &self.spawn);
        Broker {
            child: Some(child),
            dir,
            _tmp: tmp,
            port,
            lines,
            extra_args: self.args,
            extra_env: self.env,
            spawn: self.spawn,
        }
    }
}

fn spawn(
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
    opts: &SpawnOptions,
) -> (Child, u16, Lines) {
    let bin = env!("CARGO_BIN_EXE_raftmq");
    let mut cmd = match opts.wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .arg("--mqtt-listen")
        .arg(opts.mqtt_listen.as_deref().unwrap_or("127.0.0.1:0"))
        .args(args)
        .env("RUST_LOG", "info,openraft=warn")
        .env("NO_COLOR", "1")
        // Tests run in parallel: no broker may take the default admin port (8081).
        .env("RAFTMQ_ADMIN_LISTEN", "127.0.0.1:0")
        // Every test connects from loopback, often and with reused client ids: exempt it from
        // the door's per-IP limits and flapping bans; tests/limits.rs and tests/bans.rs turn
        // them back on (their `env` comes after these and wins).
        .env("RAFTMQ_CONNECTIONS_ALLOW", "127.0.0.0/8")
        .env("RAFTMQ_FLAPPING_ENABLED", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn raftmq");
    let lines = capture_lines(&mut child);
    let listening = wait_line(&lines, "MQTT listening", READY).unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "broker did not listen:\n{}",
            lines.0.lock().unwrap().join("\n")
        )
    });
    let port = parse_port(&listening).expect("port in the listening line");
    if !opts.standby && wait_line(&lines, "serving MQTT", READY).is_none() {
        let _ = child.kill();
        panic!(
            "broker did not become active:\n{}",
            lines.0.lock().unwrap().join("\n")
        );
    }
    (child, port, lines)
}

pub fn parse_port(line: &str) -> Option<u16> {
    let at = line.find("addr=")? + 5;
    let addr: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    addr.rsplit(':').next()?.parse().ok()
}

fn wait_line(lines: &Lines, needle: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let (store, cv) = &**lines;
    let mut guard = store.lock().unwrap();
    let mut seen = 0;
    loop {
        if let Some(l) = guard[seen..].iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        seen = guard.len();
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
    }
}

/// Run `f` until it returns `Some`, or panic after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether an external program (mosquitto_pub, python3 with paho) is on PATH.
pub fn require(program: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{program} is required for this test (.ci/run installs it)"
    );
}
