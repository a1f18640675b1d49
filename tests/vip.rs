//! The virtual IP, end to end: the real binary inside a network namespace adds the VIP when it
//! serves, announces it with gratuitous ARP (seen from a second namespace at the other end of
//! a veth pair) and removes it at shutdown; without CAP_NET_ADMIN it says so and serves
//! anyway; hook commands run in order with their environment.
//!
//! The netlink tests need root (network namespaces, veth); as another user they print why they
//! are skipped. CI runs as root.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{eventually, Broker, Builder};

const VIP: &str = "10.77.0.100/24";
const WAIT: Duration = Duration::from_secs(10);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `true` (after saying why) when this test cannot run here.
fn skip_without_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("SKIPPED {test}: needs root for network namespaces (CI runs as root)");
    true
}

/// Run a command; panic with its output if it fails.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two network namespaces joined by a veth pair: `va` (where the broker runs, and the VIP
/// goes) and `vb` (an observer on the same segment, 10.77.0.2/24, which learns neighbours
/// from gratuitous ARP). Deleted on drop, which also deletes the veth pair.
struct Segment {
    a: String,
    b: String,
}

impl Segment {
    fn new() -> Segment {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("rmqvip{}-{n}", std::process::id());
        let seg = Segment {
            a: format!("{base}a"),
            b: format!("{base}b"),
        };
        let (a, b) = (seg.a.as_str(), seg.b.as_str());
        run(&["ip", "netns", "add", a]);
        run(&["ip", "netns", "add", b]);
        // Created inside the namespaces, so the names cannot clash with the host's.
        run(&[
            "ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b,
        ]);
        run(&["ip", "-n", a, "link", "set", "lo", "up"]);
        run(&["ip", "-n", a, "link", "set", "va", "up"]);
        run(&["ip", "-n", b, "link", "set", "vb", "up"]);
        run(&["ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", "vb"]);
        // Linux only creates a neighbour entry from a gratuitous ARP with arp_accept.
        run(&[
            "ip",
            "netns",
            "exec",
            b,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/conf/vb/arp_accept",
        ]);
        seg
    }

    /// A broker inside namespace `a`, with the VIP on `va`.
    fn builder(&self, wrapper_tail: &[&str]) -> Builder {
        let mut wrapper = vec!["ip", "netns", "exec", self.a.as_str()];
        wrapper.extend_from_slice(wrapper_tail);
        Broker::builder()
            .wrapper(&wrapper)
            .env("RAFTMQ_VIP_ADDRESS", VIP)
            .env("RAFTMQ_VIP_INTERFACE", "va")
            .env("RAFTMQ_VIP_GARP_INTERVAL_MS", "50")
    }

    fn vip_on_va(&self) -> bool {
        run(&["ip", "-n", &self.a, "-4", "addr", "show", "dev", "va"]).contains(VIP)
    }

    fn va_mac(&self) -> String {
        let link = run(&["ip", "-n", &self.a, "-o", "link", "show", "va"]);
        let mut words = link.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no MAC address in {link:?}"))
    }

    /// What namespace `b` has learned about the VIP's address.
    fn neighbour_of_vip(&self) -> String {
        run(&[
            "ip",
            "-n",
            &self.b,
            "neigh",
            "show",
            "10.77.0.100",
            "dev",
            "vb",
        ])
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn active_node_holds_and_announces_the_vip_and_releases_it_at_shutdown() {
    if skip_without_root("active_node_holds_and_announces_the_vip") {
        return;
    }
    let seg = Segment::new();
    assert!(!seg.vip_on_va());
    assert_eq!(seg.neighbour_of_vip().trim(), "");
    let mut broker = seg
        .builder(&[])
        .env("RAFTMQ_VIP_GARP_REFRESH_SECS", "1")
        .start();
    // The harness returned once the broker logged "serving MQTT"; the VIP follows at once.
    eventually("the VIP on va", WAIT, || seg.vip_on_va().then_some(()));
    broker.wait_log("VIP taken", WAIT);
    // The observer learned the VIP's MAC from the gratuitous ARP alone: nothing else in
    // namespace b ever talked to 10.77.0.100.
    let mac = seg.va_mac();
    let neigh = eventually("a neighbour entry for the VIP", WAIT, || {
        let n = seg.neighbour_of_vip();
        n.contains(&mac).then_some(n)
    });
    assert!(neigh.contains("lladdr"), "{neigh}");
    // The periodic refresh announces it again: forget it, and it comes back.
    run(&["ip", "-n", &seg.b, "neigh", "flush", "dev", "vb"]);
    assert!(!seg.neighbour_of_vip().contains(&mac));
    eventually("the refreshed neighbour entry", WAIT, || {
        seg.neighbour_of_vip().contains(&mac).then_some(())
    });

    let status = broker.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(!seg.vip_on_va(), "the VIP outlived the broker");
    let log = broker.log();
    let released = log.rfind("VIP released").expect("a 'VIP released' line");
    let closing = log
        .find("shutting down: closing connections")
        .expect("a shutdown line");
    assert!(
        released < closing,
        "the VIP must go before connections are closed:\n{log}"
    );
}

#[test]
fn without_cap_net_admin_the_broker_says_so_and_serves_anyway() {
    if skip_without_root("without_cap_net_admin_the_broker_says_so") {
        return;
    }
    let seg = Segment::new();
    // Root without CAP_NET_ADMIN and CAP_NET_RAW: dropped from the bounding set before exec,
    // so the broker starts with neither.
    let mut broker = seg
        .builder(&["setpriv", "--bounding-set", "-net_admin,-net_raw", "--"])
        .start();
    let line = broker.wait_log("VIP step failed", WAIT);
    assert!(line.contains("CAP_NET_ADMIN"), "{line}");
    assert!(!seg.vip_on_va());
    let status = broker.terminate();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn a_node_that_does_not_serve_removes_a_vip_left_behind() {
    if skip_without_root("a_node_that_does_not_serve_removes_a_vip_left_behind") {
        return;
    }
    let seg = Segment::new();
    // What a broker killed with -9 while active leaves on its interface.
    run(&["ip", "-n", &seg.a, "addr", "add", VIP, "dev", "va"]);
    assert!(seg.vip_on_va());
    // Node 1 of two whose peer never starts: it cannot win an election, so it never serves.
    let broker = seg
        .builder(&[])
        .env("RAFTMQ_RAFT_SECRET", "vip-test-secret")
        .env("RAFTMQ_RAFT_RAFT_LISTEN", "127.0.0.1:7946")
        .env(
            "RAFTMQ_RAFT_PEERS",
            "1=127.0.0.1:7946/127.0.0.1:1883/127.0.0.1:8081,\
             2=127.0.0.1:7947/127.0.0.1:1884/127.0.0.1:8082",
        )
        .standby()
        .start();
    eventually("the stale VIP removed", WAIT, || {
        (!seg.vip_on_va()).then_some(())
    });
    broker.wait_log("VIP released", WAIT);
    assert!(!broker.log().contains("VIP taken"), "{}", broker.log());
}

#[test]
fn hooks_run_on_serve_and_on_shutdown_with_their_environment() {
    // Hooks need no privilege: this one runs everywhere.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hooks.log");
    let script = |event: &str| {
        format!(
            "echo \"{event} $RAFTMQ_VIP_EVENT $RAFTMQ_VIP $RAFTMQ_INTERFACE $RAFTMQ_NODE_ID\" >> {}",
            file.display()
        )
    };
    let mut broker = Broker::builder()
        .env("RAFTMQ_NODE_ID", "5")
        .env("RAFTMQ_VIP_ADDRESS", VIP)
        .env("RAFTMQ_VIP_INTERFACE", "eth7")
        .env("RAFTMQ_VIP_UP_COMMAND", &script("UP"))
        .env("RAFTMQ_VIP_DOWN_COMMAND", &script("DOWN"))
        .start();
    let read = |f: &Path| std::fs::read_to_string(f).unwrap_or_default();
    let up = "UP up 10.77.0.100/24 eth7 5\n";
    let down = "DOWN down 10.77.0.100/24 eth7 5\n";
    eventually("the up hook", WAIT, || {
        read(&file).ends_with(up).then_some(())
    });
    // The down hook runs first when the node is not yet active at start-up (cleaning up
    // after a crashed predecessor), which is almost always the case.
    let before = read(&file);
    assert!(before == format!("{down}{up}") || before == up, "{before}");
    let status = broker.terminate();
    assert!(status.success(), "exit status {status}");
    assert_eq!(read(&file), format!("{before}{down}"));
}

#[test]
fn an_invalid_vip_stops_the_broker_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftmq"))
        .arg("serve")
        .env("RAFTMQ_VIP_ADDRESS", "10.77.0.100/40")
        .env("RAFTMQ_VIP_INTERFACE", "va")
        .output()
        .expect("run raftmq");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("vip.address"), "{stderr}");
}
