//! The nodes' admin API, as the harness uses it: who is active (`/readyz`), whether every
//! member caught up (`/cluster/status` on the leader), and each node's state digest
//! (`/cluster/digest`) to compare replicas after a heal.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use tokio::time::Instant;

use crate::topology::{admin_url, NODES};

pub struct Admin {
    http: reqwest::Client,
    token: String,
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub node_id: u64,
    pub members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub id: u64,
    pub lag: Option<u64>,
    pub replicating: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Digest {
    pub applied_index: Option<u64>,
    pub digest: String,
    pub sessions: u64,
    pub retained: u64,
}

impl Admin {
    pub fn new(token: String) -> Result<Admin> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(1500))
            .build()?;
        Ok(Admin { http, token })
    }

    /// Whether the node says it is the active broker (leader holding its lease).
    pub async fn ready(&self, node: u8) -> bool {
        let url = format!("{}/readyz", admin_url(node));
        matches!(self.http.get(url).send().await, Ok(r) if r.status().is_success())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, node: u8, path: &str) -> Result<T> {
        let url = format!("{}{path}", admin_url(node));
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !resp.status().is_success() {
            bail!("GET {url}: {}", resp.status());
        }
        resp.json()
            .await
            .with_context(|| format!("GET {url}: body"))
    }

    pub async fn status(&self, node: u8) -> Result<Status> {
        self.get(node, "/cluster/status").await
    }

    pub async fn digest(&self, node: u8) -> Result<Digest> {
        self.get(node, "/cluster/digest").await
    }

    /// The active node among `candidates`, waiting up to `timeout` for one.
    pub async fn wait_active(&self, candidates: &[u8], timeout: Duration) -> Result<u8> {
        let deadline = Instant::now() + timeout;
        loop {
            for &n in candidates {
                if self.ready(n).await {
                    return Ok(n);
                }
            }
            if Instant::now() >= deadline {
                bail!("no active node among {candidates:?} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until there is an active leader whose status shows every member replicating
    /// with a small lag: the cluster is whole again.
    pub async fn wait_whole(&self, timeout: Duration) -> Result<u8> {
        let deadline = Instant::now() + timeout;
        let mut last = anyhow!("no status yet");
        loop {
            match self.whole().await {
                Ok(leader) => return Ok(leader),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(last.context(format!("cluster not whole within {timeout:?}")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn whole(&self) -> Result<u8> {
        let leader = self.wait_active(&NODES, Duration::from_millis(1)).await?;
        let status = self.status(leader).await?;
        if status.members.len() != NODES.len() {
            bail!("{} members", status.members.len());
        }
        for m in &status.members {
            if m.id == status.node_id {
                continue;
            }
            if m.replicating != Some(true) || m.lag.is_none_or(|lag| lag > 50) {
                bail!("node {} not caught up: {m:?}", m.id);
            }
        }
        Ok(leader)
    }
}
