//! Driving the deployment users run: `docker compose` (or the older `docker-compose`) on the
//! repository's `docker-compose.yml` under a project name of our own, and `docker` for the
//! per-container faults (kill, pause, restart).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

use crate::topology::service;

#[derive(Clone)]
pub struct Compose {
    /// `["docker", "compose"]` or `["docker-compose"]`.
    program: Vec<String>,
    file: PathBuf,
    project: String,
}

impl Compose {
    /// Prefer the Compose plugin; fall back to the standalone `docker-compose`.
    pub async fn detect(file: PathBuf, project: String) -> Result<Compose> {
        let candidates: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
        for program in candidates {
            let ok = Command::new(program[0])
                .args(&program[1..])
                .arg("version")
                .output()
                .await
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return Ok(Compose {
                    program: program.iter().map(|s| s.to_string()).collect(),
                    file,
                    project,
                });
            }
        }
        bail!("neither `docker compose` nor `docker-compose` works on this machine")
    }

    async fn compose(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .arg("-f")
            .arg(&self.file)
            .arg("-p")
            .arg(&self.project)
            .args(args);
        output(
            cmd,
            &format!("{} {}", self.program.join(" "), args.join(" ")),
        )
        .await
    }

    /// Remove the containers, the network and the data volumes: every scenario starts empty.
    pub async fn down(&self) -> Result<()> {
        self.compose(&["down", "-v", "--remove-orphans", "-t", "3"])
            .await?;
        Ok(())
    }

    pub async fn up(&self) -> Result<()> {
        self.compose(&["up", "-d"]).await?;
        Ok(())
    }

    /// Stop every node gracefully (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop_all(&self) -> Result<()> {
        self.compose(&["stop", "-t", "10"]).await?;
        Ok(())
    }

    pub async fn start_all(&self) -> Result<()> {
        self.compose(&["start"]).await?;
        Ok(())
    }

    /// The container id of a node's service.
    pub async fn container(&self, node: u8) -> Result<String> {
        let id = self.compose(&["ps", "-q", &service(node)]).await?;
        let id = id.trim();
        if id.is_empty() {
            bail!("no container for {}", service(node));
        }
        Ok(id.to_string())
    }

    pub async fn logs(&self) -> Result<String> {
        self.compose(&["logs", "--no-color", "-t"]).await
    }
}

/// `docker ARGS...`, its stdout on success.
pub async fn docker(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    output(cmd, &format!("docker {}", args.join(" "))).await
}

/// The host PID of a running container's init process: the handle on its network namespace.
pub async fn pid(container: &str) -> Result<u32> {
    let out = docker(&["inspect", "-f", "{{.State.Pid}}", container]).await?;
    let pid: u32 = out.trim().parse().context("container pid")?;
    if pid == 0 {
        bail!("container {container} is not running");
    }
    Ok(pid)
}

async fn output(mut cmd: Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
