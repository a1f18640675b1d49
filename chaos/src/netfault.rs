//! Network faults inside a node's own network namespace, entered from the host with
//! `nsenter` (the image is FROM scratch: it has no iptables or tc of its own). Every rule
//! goes into the container's namespace only, so healing is flushing it, and a restarted
//! container starts clean.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use tokio::process::Command;

async fn nsenter(pid: u32, args: &[&str]) -> Result<std::process::Output> {
    Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .arg("-n")
        .args(args)
        .output()
        .await
        .with_context(|| format!("nsenter -t {pid} -n {}", args.join(" ")))
}

async fn must(pid: u32, args: &[&str]) -> Result<()> {
    let out = nsenter(pid, args).await?;
    if !out.status.success() {
        anyhow::bail!(
            "{} in pid {pid}'s namespace: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Drop everything between this node and `peers`, both ways.
pub async fn cut(pid: u32, peers: &[Ipv4Addr]) -> Result<()> {
    for ip in peers {
        let ip = ip.to_string();
        must(pid, &["iptables", "-I", "INPUT", "-s", &ip, "-j", "DROP"]).await?;
        must(pid, &["iptables", "-I", "OUTPUT", "-d", &ip, "-j", "DROP"]).await?;
    }
    Ok(())
}

/// Drop a random share of the packets arriving at this node (from peers and clients).
pub async fn loss(pid: u32, probability: f64) -> Result<()> {
    let p = format!("{probability:.3}");
    must(
        pid,
        &[
            "iptables",
            "-I",
            "INPUT",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &p,
            "-j",
            "DROP",
        ],
    )
    .await
}

/// Delay everything leaving this node with `tc netem`. `Ok(false)` when the kernel has no
/// netem (the qdisc is unknown): the caller reports the delay as not injected.
pub async fn delay(pid: u32, ms: u32, jitter_ms: u32) -> Result<bool> {
    let out = nsenter(
        pid,
        &[
            "tc",
            "qdisc",
            "add",
            "dev",
            "eth0",
            "root",
            "netem",
            "delay",
            &format!("{ms}ms"),
            &format!("{jitter_ms}ms"),
        ],
    )
    .await?;
    if out.status.success() {
        return Ok(true);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("qdisc kind is unknown") {
        return Ok(false);
    }
    anyhow::bail!("tc netem in pid {pid}'s namespace: {}", err.trim())
}

/// Remove every rule and qdisc this module adds.
pub async fn heal(pid: u32) -> Result<()> {
    must(pid, &["iptables", "-F", "INPUT"]).await?;
    must(pid, &["iptables", "-F", "OUTPUT"]).await?;
    // Fails when no qdisc was added; that is the healed state already.
    let _ = nsenter(pid, &["tc", "qdisc", "del", "dev", "eth0", "root"]).await;
    Ok(())
}
