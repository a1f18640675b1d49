//! `chaos`: attacks the docker-compose deployment (the one users run) with the faults
//! DESIGN.md's promises must survive, while a workload of QoS 1/2 publishers, persistent
//! subscribers and retained readers talks to it through the VIP; then checks the history.
//!
//! `cargo run -p chaos -- all` (or scenario names, or `ci`); needs root (nsenter, iptables),
//! Docker with Compose, and the image from `docker/build-image.sh`.
//!
//! # Layout
//! - `scenario`: the scenarios and one run (fresh cluster, workload, faults, heal, checks).
//! - `faults`: each fault as inject, wait, heal, wait-until-whole, recorded.
//! - `workload/`: publishers, subscribers, retained readers, node probes.
//! - `mqtt`: a minimal MQTT 3.1.1 client whose every packet the workload controls.
//! - `history`: what the clients saw. `checker`: the promises held against it.
//! - `consistency`: replicas' state digests compared after the heal.
//! - `compose`, `netfault`, `admin`, `topology`: the deployment, its namespaces, its API.
//! - `report`: the table and the JSON file. `clock`: the run's time base.

mod admin;
mod checker;
mod clock;
mod compose;
mod consistency;
mod faults;
mod history;
mod mqtt;
mod netfault;
mod report;
mod scenario;
mod topology;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use scenario::{Options, Scenario, SCENARIOS};
use workload::WorkloadSpec;

#[derive(Parser, Debug)]
#[command(about = "Fault injection against the docker-compose raftmq cluster")]
struct Cli {
    /// Scenario names, `ci` (the subset CI runs) or `all` (the default).
    scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// The deployment to attack.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker-compose.yml"))]
    compose_file: PathBuf,
    /// Compose project name (containers, network and volumes are prefixed with it).
    #[arg(long, default_value = "raftmq-chaos")]
    project: String,
    /// Where the verdicts go as JSON.
    #[arg(long, default_value = "target/chaos/results.json")]
    json: PathBuf,
    /// Also write each scenario's full history here (one JSON file per scenario).
    #[arg(long)]
    history_dir: Option<PathBuf>,
    /// Leave the last cluster running.
    #[arg(long)]
    keep: bool,
    /// The admin token the compose file gives the nodes.
    #[arg(long, env = "RAFTMQ_ADMIN_TOKEN", default_value = "admin-secret")]
    token: String,
}

fn select(names: &[String]) -> Result<Vec<&'static Scenario>> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(SCENARIOS.iter().collect());
    }
    let mut out = Vec::new();
    for name in names {
        if name == "ci" {
            out.extend(SCENARIOS.iter().filter(|s| s.ci));
            continue;
        }
        match SCENARIOS.iter().find(|s| s.name == name) {
            Some(s) => out.push(s),
            None => bail!(
                "unknown scenario {name:?}; known: {}, ci, all",
                SCENARIOS
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(out)
}

async fn preflight() -> Result<()> {
    compose::docker(&["image", "inspect", "raftmq:latest"])
        .await
        .context("the raftmq:latest image is missing: build it with docker/build-image.sh")?;
    for tool in ["nsenter", "iptables"] {
        let found = tokio::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .await
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            bail!(
                "{tool} is needed to inject network faults (apt-get install util-linux iptables)"
            );
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<bool> {
    let scenarios = select(&cli.scenarios)?;
    preflight().await?;
    let opts = Options {
        compose: compose::Compose::detect(cli.compose_file.clone(), cli.project.clone()).await?,
        token: cli.token.clone(),
        workload: WorkloadSpec::default(),
        keep: cli.keep,
    };
    let mut verdicts = Vec::new();
    for s in scenarios {
        let (verdict, history) = scenario::run(s, &opts).await?;
        if let Some(dir) = &cli.history_dir {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{}.json", s.name));
            std::fs::write(&path, serde_json::to_string(&history)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        eprintln!(
            "== {}: {}",
            s.name,
            if verdict.passed() { "pass" } else { "FAIL" }
        );
        verdicts.push(verdict);
        report::write_json(&cli.json, &verdicts)?;
    }
    print!("{}", report::table(&verdicts));
    print!("{}", report::details(&verdicts));
    println!("results: {}", cli.json.display());
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    println!("chaos: {passed} passed, {} failed", verdicts.len() - passed);
    Ok(passed == verdicts.len())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for s in SCENARIOS {
            println!(
                "{:<18} {}{}",
                s.name,
                s.about,
                if s.ci { " (ci)" } else { "" }
            );
        }
        return ExitCode::SUCCESS;
    }
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
