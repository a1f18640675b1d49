//! The VIP task driven through hook commands that log to a file: no privileges needed, and
//! the file shows exactly which steps ran, in which order.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raftmq_raft::NodeId;
use tokio::sync::watch;

use super::*;

struct Rig {
    _dir: tempfile::TempDir,
    log: PathBuf,
    active: watch::Sender<bool>,
    vip: VipHandle,
}

fn rig(up: &str, down: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let config = VipConfig {
        address: "10.9.9.9/24".into(),
        interface: "eth9".into(),
        up_command: up.replace("LOG", &log.display().to_string()),
        down_command: down.replace("LOG", &log.display().to_string()),
        ..VipConfig::default()
    };
    let (active, rx) = watch::channel(false);
    let vip = spawn(&config, NodeId(4), rx).unwrap();
    Rig {
        _dir: dir,
        log,
        active,
        vip,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const UP: &str = "echo up $RAFTMQ_VIP $RAFTMQ_NODE_ID >> LOG";
const DOWN: &str = "echo down >> LOG";

#[tokio::test]
async fn follows_the_active_flag_and_releases_at_shutdown() {
    let r = rig(UP, DOWN);
    assert_eq!(r.vip.status().mode, "hooks");
    // At start-up the down hook cleans up whatever a crashed predecessor left.
    until("start-up down hook", || read(&r.log) == "down\n").await;
    assert!(!r.vip.held());

    r.active.send_replace(true);
    until("up hook", || r.vip.held()).await;
    assert_eq!(read(&r.log), "down\nup 10.9.9.9/24 4\n");

    r.active.send_replace(false);
    until("down hook", || !r.vip.held()).await;
    // A lease regained runs the up hook again (the takeover announcement is repeated).
    r.active.send_replace(true);
    until("second up hook", || r.vip.held()).await;

    // release() returns only once the down hook has run.
    r.vip.release().await;
    assert_eq!(
        read(&r.log),
        "down\nup 10.9.9.9/24 4\ndown\nup 10.9.9.9/24 4\ndown\n"
    );
    assert!(!r.vip.held());
    assert_eq!(r.vip.status().error, None);
    // Releasing twice is harmless and runs nothing more.
    r.vip.release().await;
    assert_eq!(read(&r.log).lines().count(), 5);
}

#[tokio::test]
async fn stepping_down_interrupts_a_slow_up_hook() {
    let r = rig("sleep 20; echo up >> LOG", DOWN);
    until("start-up down hook", || read(&r.log) == "down\n").await;
    r.active.send_replace(true);
    // Let the up hook start, then lose the lease: the down step must not wait 20 s.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stepped_down = Instant::now();
    r.active.send_replace(false);
    until("down hook after the interruption", || {
        read(&r.log) == "down\ndown\n"
    })
    .await;
    assert!(stepped_down.elapsed() < Duration::from_secs(5));
    assert!(!r.vip.held());
    r.vip.release().await;
}

#[tokio::test]
async fn a_failing_hook_is_reported_and_the_down_hook_still_runs() {
    let r = rig("echo denied >&2; exit 3", DOWN);
    until("start-up down hook", || read(&r.log) == "down\n").await;
    r.active.send_replace(true);
    until("the failure in the status", || {
        r.vip.status().error.is_some()
    })
    .await;
    let status = r.vip.status();
    assert!(!status.held);
    let error = status.error.unwrap_or_default();
    assert!(
        error.contains("up hook") && error.contains("denied"),
        "{error}"
    );
    // Not retried (hooks run once per transition), but stepping down runs the down hook,
    // since the failed up hook may have done half its work.
    r.active.send_replace(false);
    until("down hook", || read(&r.log) == "down\ndown\n").await;
    r.vip.release().await;
}

#[tokio::test]
async fn a_missing_interface_is_an_error_in_the_status_not_a_crash() {
    let config = VipConfig {
        address: "10.9.9.9/24".into(),
        interface: "nosuchif9".into(),
        garp_count: 0,
        ..VipConfig::default()
    };
    let (active, rx) = watch::channel(true);
    let vip = spawn(&config, NodeId(1), rx).unwrap();
    assert_eq!(vip.status().mode, "netlink");
    until("the failure in the status", || vip.status().error.is_some()).await;
    let error = vip.status().error.unwrap_or_default();
    assert!(error.contains("nosuchif9"), "{error}");
    assert!(!vip.held());
    active.send_replace(false);
    vip.release().await;
}

#[tokio::test]
async fn off_runs_nothing() {
    let (_active, rx) = watch::channel(true);
    let vip = spawn(&VipConfig::default(), NodeId(1), rx).unwrap();
    assert_eq!(vip.status().mode, "off");
    assert!(!vip.held());
    vip.release().await;
}
