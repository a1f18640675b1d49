//! Scenarios: a fresh cluster, the workload through the VIP, a list of faults, then the
//! heal, the drain and the checks. Each scenario starts from `docker compose down -v`, so
//! none inherits another's state.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::admin::Admin;
use crate::checker::{self, Verdict};
use crate::clock::Clock;
use crate::compose::Compose;
use crate::history::{History, Recorder};
use crate::topology::{mqtt_addr, vip_addr, NODES};
use crate::workload::{Workload, WorkloadSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Fault {
    KillLeader,
    KillFollower,
    PartitionLeader,
    IsolateFollower,
    PauseLeader,
    LossyLinks,
    RollingRestart,
    FullRestart,
}

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub faults: &'static [Fault],
    /// Part of the subset `.ci/run` runs on every submission.
    pub ci: bool,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "kill-leader",
        about: "kill -9 the leader three times, restarting it each time",
        faults: &[Fault::KillLeader, Fault::KillLeader, Fault::KillLeader],
        ci: true,
    },
    Scenario {
        name: "kill-follower",
        about: "kill -9 a follower twice",
        faults: &[Fault::KillFollower, Fault::KillFollower],
        ci: false,
    },
    Scenario {
        name: "partition-leader",
        about: "cut the leader off from both followers (minority partition), then heal; twice",
        faults: &[Fault::PartitionLeader, Fault::PartitionLeader],
        ci: true,
    },
    Scenario {
        name: "isolate-follower",
        about: "cut one follower off from the other nodes, then heal",
        faults: &[Fault::IsolateFollower],
        ci: false,
    },
    Scenario {
        name: "pause-leader",
        about: "freeze the leader past the election timeout, then thaw it; twice",
        faults: &[Fault::PauseLeader, Fault::PauseLeader],
        ci: true,
    },
    Scenario {
        name: "lossy-links",
        about: "10% packet loss (and netem delay where the kernel has it) on every node",
        faults: &[Fault::LossyLinks],
        ci: false,
    },
    Scenario {
        name: "rolling-restart",
        about: "restart every node in turn, followers first",
        faults: &[Fault::RollingRestart],
        ci: false,
    },
    Scenario {
        name: "full-restart",
        about: "stop and start the whole cluster, then kill -9 all nodes at once",
        faults: &[Fault::FullRestart],
        ci: false,
    },
];

/// What a scenario run needs: the deployment, its admin API, the workload and the history.
pub struct Ctx {
    pub compose: Compose,
    pub admin: Admin,
    pub clock: Clock,
    pub rec: Recorder,
    pub workload: Workload,
    pub minority_round: u32,
    scenario: &'static str,
}

impl Ctx {
    pub fn log(&self, msg: &str) {
        eprintln!("[{} {:>8.0} ms] {msg}", self.scenario, self.clock.now());
    }

    /// Let the workload run under the current conditions.
    pub async fn hold(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    async fn inject(&mut self, fault: Fault) -> Result<()> {
        match fault {
            Fault::KillLeader => self.kill_leader().await,
            Fault::KillFollower => self.kill_follower().await,
            Fault::PartitionLeader => self.partition_leader().await,
            Fault::IsolateFollower => self.isolate_follower().await,
            Fault::PauseLeader => self.pause_leader().await,
            Fault::LossyLinks => self.lossy_links().await,
            Fault::RollingRestart => self.rolling_restart().await,
            Fault::FullRestart => self.full_restart().await,
        }
    }
}

pub struct Options {
    pub compose: Compose,
    pub token: String,
    pub workload: WorkloadSpec,
    pub keep: bool,
}

/// Run one scenario from an empty cluster; the verdict and the full history.
pub async fn run(s: &'static Scenario, opts: &Options) -> Result<(Verdict, History)> {
    let clock = Clock::start();
    let rec = Recorder::default();
    eprintln!("== {}: {}", s.name, s.about);
    opts.compose.down().await?;
    opts.compose.up().await?;
    let admin = Admin::new(opts.token.clone())?;
    admin
        .wait_whole(Duration::from_secs(90))
        .await
        .context("fresh cluster did not form")?;
    let nodes: Vec<_> = NODES.iter().map(|&n| (n, mqtt_addr(n))).collect();
    let workload = Workload::start(&opts.workload, vip_addr(), &nodes, clock, rec.clone()).await?;
    let mut ctx = Ctx {
        compose: opts.compose.clone(),
        admin,
        clock,
        rec: rec.clone(),
        workload,
        minority_round: 0,
        scenario: s.name,
    };
    let outcome = drive(&mut ctx, s).await;
    let mut extra = Vec::new();
    if let Err(e) = &outcome {
        extra.push(format!("harness: {e:#}"));
    }
    ctx.log("stopping publishers, draining subscribers");
    ctx.workload.stop_publishers().await;
    if !ctx.workload.drain(Duration::from_secs(30)).await {
        ctx.log("drain timed out: some acknowledged messages never arrived");
    }
    if let Err(e) = ctx.workload.final_retained_read().await {
        extra.push(format!("final retained read failed: {e:#}"));
    }
    ctx.workload.stop_subscribers().await;
    match crate::consistency::check(&ctx.admin).await {
        Ok(notes) => {
            for n in notes {
                ctx.log(&n);
            }
        }
        Err(e) => extra.push(format!("replicas differ after the heal: {e:#}")),
    }
    if !opts.keep {
        if extra.iter().any(|e| e.starts_with("harness")) {
            if let Ok(logs) = opts.compose.logs().await {
                let tail: Vec<&str> = logs.lines().rev().take(60).collect();
                eprintln!("--- last cluster log lines ---");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        opts.compose.down().await?;
    }
    let history = std::mem::take(&mut *rec.lock());
    let verdict = checker::check(s.name, &history, extra);
    Ok((verdict, history))
}

async fn drive(ctx: &mut Ctx, s: &Scenario) -> Result<()> {
    // Warm up: every client connected and acknowledged before the first fault.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ctx.rec.lock().acks.len() < 50 {
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the workload got no acknowledgements through the VIP");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ctx.hold(Duration::from_secs(2)).await;
    for &fault in s.faults {
        ctx.inject(fault).await?;
        ctx.hold(Duration::from_secs(2)).await;
    }
    Ok(())
}
