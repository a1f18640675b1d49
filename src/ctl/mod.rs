//! `raftmq ctl`: the operator's client of the admin API (`crate::admin`).
//!
//! Any node can be asked: a write that reaches a follower comes back as 421 with the
//! leader's admin address, and is sent there once (said on stderr). Exit status: 0 done,
//! 1 the server refused or could not be reached (its message is printed), 2 usage (clap's
//! own errors and a bad `--admin` URL).
//!
//! - `mod.rs`: arguments, the HTTP calls, following a leader hint.
//! - `render`: the readable forms of a status and of a membership change.
//! - `backup`: `ctl backup FILE`, fetching `GET /cluster/backup` into a file.

mod backup;
mod render;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use thiserror::Error;

use render::{render_change, render_status};

use crate::admin::LeaderHint;
use crate::cluster::ClusterStatus;

/// Added to the server's wait for a membership change, so its own timeout answer arrives
/// before ours.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Admin API of any node: http://HOST:PORT (or HOST:PORT).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8081")]
    pub admin: String,
    /// Bearer token (the nodes' admin.token). Prefer the environment variable: command-line
    /// arguments are visible to other users in `ps`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "RAFTMQ_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// How long the server waits for a membership change (a learner to catch up, a change
    /// to commit) before answering 504; the change may still complete after.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// The cluster as the node sees it: members, roles, replication lag, leader, lease.
    Status {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 if the node is the active leader holding its lease (`GET /readyz`), else 1
    /// with the reason: for container health checks and load-balancer scripts. Needs no token.
    Ready,
    /// Add a node as a learner and wait until it has caught up with the log.
    AddLearner {
        /// The new node's id (its node_id).
        id: u64,
        /// Address the other members dial for Raft.
        #[arg(long, value_name = "ADDR")]
        raft: String,
        /// MQTT address clients are sent to.
        #[arg(long, value_name = "ADDR")]
        mqtt: String,
        /// Its admin API address.
        #[arg(long, value_name = "ADDR")]
        admin: String,
    },
    /// Make a caught-up learner a voter.
    Promote { id: u64 },
    /// Make a voter a learner.
    Demote { id: u64 },
    /// Save a consistent backup of the cluster's state (sessions, queues, retained messages)
    /// from the leader into FILE; `raftmq restore` seeds a new cluster from it.
    Backup {
        /// Where to write the backup (replaced atomically).
        file: PathBuf,
    },
    /// Remove a node from the cluster.
    Remove {
        id: u64,
        /// Evict a node that is down (without it, a node that does not replicate is kept).
        #[arg(long)]
        force: bool,
    },
    /// List, add or lift bans (client ids, source IPs, usernames refused at CONNECT).
    Bans {
        #[command(subcommand)]
        action: BansCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BansCommand {
    /// The bans in force.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse a client id, source IP or username at CONNECT for a while.
    Add {
        #[arg(value_parser = ["clientid", "ip", "username"])]
        kind: String,
        value: String,
        /// How long, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        secs: u64,
        /// Why (shown in listings and to refused 5.0 clients).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Lift a ban before it runs out.
    Lift {
        #[arg(value_parser = ["clientid", "ip", "username"])]
        kind: String,
        value: String,
    },
}

#[derive(Debug, Error)]
pub enum CtlError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{message} (HTTP {status})")]
    Server {
        status: StatusCode,
        message: String,
        leader: Option<LeaderHint>,
    },
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("cannot write {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

pub fn run(args: CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raftmq ctl: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(&args)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raftmq ctl: {e}");
            if matches!(e, CtlError::Usage(_)) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn execute(args: &CtlArgs) -> Result<String, CtlError> {
    let base = base_url(&args.admin)?;
    let client = reqwest::Client::builder()
        // The admin API is reached directly: an HTTP(S)_PROXY meant for the internet must
        // not see the token.
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(args.timeout_secs) + ANSWER_MARGIN)
        .build()
        .map_err(|e| CtlError::Usage(format!("cannot build an HTTP client: {e}")))?;
    let api = Api {
        client,
        token: args.token.clone().filter(|t| !t.is_empty()),
    };
    let wait = format!("timeout_secs={}", args.timeout_secs);
    let (method, path, body) = match &args.command {
        CtlCommand::Status { json } => {
            let answer = api
                .call(&base, Method::GET, "/cluster/status", None)
                .await?;
            return render_status_answer(&answer, *json, &base);
        }
        CtlCommand::Backup { file } => return backup::run(&api, &base, file).await,
        CtlCommand::Ready => {
            api.call(&base, Method::GET, "/readyz", None).await?;
            return Ok("ready: this node is the active leader\n".to_owned());
        }
        CtlCommand::AddLearner {
            id,
            raft,
            mqtt,
            admin,
        } => (
            Method::POST,
            format!("/cluster/learners?{wait}"),
            Some(json!({ "id": id, "raft_addr": raft, "mqtt_addr": mqtt, "admin_addr": admin })),
        ),
        CtlCommand::Promote { id } => (
            Method::POST,
            format!("/cluster/voters?{wait}"),
            Some(json!({ "add": [id] })),
        ),
        CtlCommand::Demote { id } => (
            Method::POST,
            format!("/cluster/voters?{wait}"),
            Some(json!({ "remove": [id] })),
        ),
        CtlCommand::Bans { action } => return bans(&api, &base, action).await,
        CtlCommand::Remove { id, force } => {
            let force = if *force { "&force=true" } else { "" };
            (
                Method::DELETE,
                format!("/cluster/nodes/{id}?{wait}{force}"),
                None,
            )
        }
    };
    let answer = write(&api, &base, method, &path, body).await?;
    Ok(render_change(&answer))
}

/// A write: sent to `base`, and once more to the leader a 421 names.
async fn write(
    api: &Api,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, CtlError> {
    let (answer, _) = at_leader(base, |b| {
        let (method, body) = (method.clone(), body.clone());
        async move { api.call(&b, method, path, body).await }
    })
    .await?;
    Ok(answer)
}

/// `op` against `base`, and once more against the leader a 421 names (the admin API sends
/// no redirects, see `crate::admin`): the answer and the base URL that gave it.
async fn at_leader<T, F, Fut>(base: &str, op: F) -> Result<(T, String), CtlError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, CtlError>>,
{
    match op(base.to_owned()).await {
        Err(CtlError::Server {
            status: StatusCode::MISDIRECTED_REQUEST,
            leader: Some(leader),
            ..
        }) if !leader.admin_addr.is_empty() => {
            let leader_base = base_url(&leader.admin_addr)?;
            eprintln!(
                "raftmq ctl: {base} is not the leader; sending to node {} at {leader_base}",
                leader.id
            );
            Ok((op(leader_base.clone()).await?, leader_base))
        }
        other => Ok((other?, base.to_owned())),
    }
}

async fn bans(api: &Api, base: &str, action: &BansCommand) -> Result<String, CtlError> {
    match action {
        BansCommand::List { json } => {
            let answer = api.call(base, Method::GET, "/bans", None).await?;
            if *json {
                return Ok(format!("{answer:#}\n"));
            }
            Ok(render_bans(&answer))
        }
        BansCommand::Add {
            kind,
            value,
            secs,
            reason,
        } => {
            let body = json!({ "kind": kind, "value": value, "secs": secs, "reason": reason });
            let answer = write(api, base, Method::POST, "/bans", Some(body)).await?;
            Ok(format!(
                "banned {} {} for {} s\n",
                answer["kind"].as_str().unwrap_or(kind),
                answer["value"].as_str().unwrap_or(value),
                answer["remaining_secs"].as_u64().unwrap_or(*secs)
            ))
        }
        BansCommand::Lift { kind, value } => {
            let path = format!("/bans/{kind}/{}", path_segment(value));
            let answer = write(api, base, Method::DELETE, &path, None).await?;
            Ok(format!(
                "{}\n",
                answer["message"].as_str().unwrap_or("lifted")
            ))
        }
    }
}

fn render_bans(answer: &Value) -> String {
    let bans = answer["bans"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if bans.is_empty() {
        return "no bans\n".to_owned();
    }
    let mut out = format!("{:<9} {:<30} {:>9}  REASON\n", "KIND", "VALUE", "LEFT (s)");
    for b in bans {
        let _ = writeln!(
            out,
            "{:<9} {:<30} {:>9}  {}",
            b["kind"].as_str().unwrap_or("?"),
            b["value"].as_str().unwrap_or("?"),
            b["remaining_secs"].as_u64().unwrap_or(0),
            b["reason"].as_str().unwrap_or("")
        );
    }
    out
}

/// Percent-encodes a path segment (client ids may hold `/`, spaces, anything UTF-8).
fn path_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

struct Api {
    client: reqwest::Client,
    token: Option<String>,
}

impl Api {
    /// A request whose answer is JSON.
    async fn call(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CtlError> {
        let url = format!("{base}{path}");
        let bytes = self.request(base, method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|_| CtlError::BadAnswer {
            url,
            reason: format!("not JSON: {:?}", String::from_utf8_lossy(&bytes)),
        })
    }

    /// The body of a successful answer; an error answer becomes `CtlError::Server` with the
    /// server's message and leader hint.
    async fn request(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Vec<u8>, CtlError> {
        let url = format!("{base}{path}");
        let mut req = self.client.request(method, &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| CtlError::Unreachable {
            url: base.to_owned(),
            reason: error_chain(&e),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| CtlError::Unreachable {
            url: base.to_owned(),
            reason: error_chain(&e),
        })?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let text = String::from_utf8_lossy(&bytes);
        let answer: Option<Value> = serde_json::from_str(&text).ok();
        let message = answer
            .as_ref()
            .and_then(|a| a["error"].as_str())
            .map_or_else(|| text.trim().to_owned(), str::to_owned);
        let leader = answer
            .as_ref()
            .and_then(|a| serde_json::from_value(a["leader"].clone()).ok());
        let mut message = message;
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            message.push_str(" (give --token or set RAFTMQ_ADMIN_TOKEN)");
        }
        Err(CtlError::Server {
            status,
            message,
            leader,
        })
    }
}

/// reqwest's top-level message alone ("error sending request") hides the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

/// `http://host:port` from `http://host:port[/]` or `host:port`.
fn base_url(raw: &str) -> Result<String, CtlError> {
    let raw = raw.trim().trim_end_matches('/');
    let rest = match raw.split_once("://") {
        None => raw,
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(CtlError::Usage(format!(
                "--admin {raw:?}: only http:// is supported, not {scheme}:// (the admin API \
                 has no TLS: reach it on loopback, a management network or an SSH tunnel)"
            )))
        }
    };
    if rest.is_empty() || rest.contains('/') {
        return Err(CtlError::Usage(format!(
            "--admin {raw:?}: expected http://HOST:PORT"
        )));
    }
    Ok(format!("http://{rest}"))
}

fn render_status_answer(answer: &Value, raw: bool, base: &str) -> Result<String, CtlError> {
    if raw {
        let mut text = serde_json::to_string_pretty(answer).map_err(|e| CtlError::BadAnswer {
            url: base.to_owned(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        return Ok(text);
    }
    let status: ClusterStatus =
        serde_json::from_value(answer.clone()).map_err(|e| CtlError::BadAnswer {
            url: base.to_owned(),
            reason: format!("not a cluster status: {e}"),
        })?;
    Ok(render_status(&status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls_are_plain_http() {
        assert_eq!(
            base_url("http://127.0.0.1:8081/").unwrap(),
            "http://127.0.0.1:8081"
        );
        assert_eq!(base_url("10.0.0.2:8081").unwrap(), "http://10.0.0.2:8081");
        for bad in ["https://h:8081", "http://h:8081/api", "", "ftp://h"] {
            assert!(matches!(base_url(bad), Err(CtlError::Usage(_))), "{bad}");
        }
    }
}
