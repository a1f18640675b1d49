//! The faults, each a complete move: inject, wait for the cluster to react, heal, wait until
//! it is whole again, and record what was done and when. Vocabulary after raft-rs's
//! simulated network: kill, cut, isolate, pause, lossy links, restart.

use std::time::Duration;

use anyhow::Result;

use crate::compose::{docker, pid};
use crate::history::FaultRecord;
use crate::mqtt::QoS;
use crate::netfault;
use crate::scenario::Ctx;
use crate::topology::{mqtt_addr, node_ip, NODES};
use crate::workload::publisher::PublisherSpec;

/// How long to wait for a new leader, or for the cluster to be whole again. Generous:
/// two cores also run three brokers, the workload and this harness.
const ELECT_TIMEOUT: Duration = Duration::from_secs(20);
const WHOLE_TIMEOUT: Duration = Duration::from_secs(60);

fn others(node: u8) -> Vec<u8> {
    NODES.iter().copied().filter(|&n| n != node).collect()
}

struct Pending {
    name: String,
    node: Option<u8>,
    started_at: f64,
    effective_at: Option<f64>,
    minority: Option<u8>,
    disruptive: bool,
}

impl Ctx {
    fn begin(
        &self,
        name: &str,
        node: Option<u8>,
        minority: Option<u8>,
        disruptive: bool,
    ) -> Pending {
        self.log(&format!(
            "fault: {name}{}",
            node.map(|n| format!(" (node {n})")).unwrap_or_default()
        ));
        Pending {
            name: name.to_string(),
            node,
            started_at: self.clock.now(),
            effective_at: None,
            minority,
            disruptive,
        }
    }

    /// The injection has taken effect.
    fn effective(&self, p: &mut Pending) {
        p.effective_at = Some(self.clock.now());
    }

    fn healed(&self, p: Pending) {
        let healed_at = self.clock.now();
        self.log(&format!(
            "healed: {} after {:.0} ms",
            p.name,
            healed_at - p.started_at
        ));
        self.rec.lock().faults.push(FaultRecord {
            name: p.name,
            node: p.node,
            started_at: p.started_at,
            effective_at: p.effective_at.unwrap_or(p.started_at),
            healed_at,
            minority: p.minority,
            disruptive: p.disruptive,
        });
    }

    /// A publisher on the node's own address, started (and acknowledged once) before the
    /// node is cut off: whatever it gets acknowledged afterwards came from a minority.
    async fn minority_publisher(&mut self, node: u8) {
        self.minority_round += 1;
        let name = format!("minority-{}", self.minority_round);
        self.workload.spawn_publisher(PublisherSpec {
            topics: vec![format!("chaos/q1/{name}")],
            name: name.clone(),
            qos: QoS::AtLeastOnce,
            retain: false,
            rate_per_sec: 20.0,
            window: 4,
            addr: mqtt_addr(node),
            direct_node: Some(node),
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline {
            if self.rec.lock().acks.iter().any(|a| a.key.publisher == name) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.log("minority publisher got no acknowledgement before the fault");
    }

    /// kill -9 of the active node; started again once a new leader serves.
    pub async fn kill_leader(&mut self) -> Result<()> {
        let leader = self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        let id = self.compose.container(leader).await?;
        let p = self.begin("kill -9 leader", Some(leader), None, true);
        docker(&["kill", "-s", "KILL", &id]).await?;
        self.admin
            .wait_active(&others(leader), ELECT_TIMEOUT)
            .await?;
        self.hold(Duration::from_secs(2)).await;
        docker(&["start", &id]).await?;
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        Ok(())
    }

    /// kill -9 of a follower; started again after a while.
    pub async fn kill_follower(&mut self) -> Result<()> {
        let leader = self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        let victim = others(leader)[0];
        let id = self.compose.container(victim).await?;
        let p = self.begin("kill -9 follower", Some(victim), None, false);
        docker(&["kill", "-s", "KILL", &id]).await?;
        self.hold(Duration::from_secs(3)).await;
        docker(&["start", &id]).await?;
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        Ok(())
    }

    /// The leader cut off from both followers (it still sees clients): the majority elects
    /// a new leader; the old one must stop serving within its lease and acknowledge nothing.
    pub async fn partition_leader(&mut self) -> Result<()> {
        let leader = self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        self.minority_publisher(leader).await;
        let pid = pid(&self.compose.container(leader).await?).await?;
        let peers: Vec<_> = others(leader).into_iter().map(node_ip).collect();
        let mut p = self.begin(
            "leader cut from followers",
            Some(leader),
            Some(leader),
            true,
        );
        netfault::cut(pid, &peers).await?;
        self.effective(&mut p);
        self.admin
            .wait_active(&others(leader), ELECT_TIMEOUT)
            .await?;
        self.hold(Duration::from_secs(3)).await;
        netfault::heal(pid).await?;
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        Ok(())
    }

    /// One follower cut off from the other two nodes.
    pub async fn isolate_follower(&mut self) -> Result<()> {
        let leader = self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        let victim = others(leader)[0];
        let pid = pid(&self.compose.container(victim).await?).await?;
        let peers: Vec<_> = others(victim).into_iter().map(node_ip).collect();
        let mut p = self.begin("follower isolated", Some(victim), Some(victim), false);
        netfault::cut(pid, &peers).await?;
        self.effective(&mut p);
        self.hold(Duration::from_secs(5)).await;
        netfault::heal(pid).await?;
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        Ok(())
    }

    /// The leader frozen (`docker pause`) past the election timeout, then thawed: it wakes
    /// up believing it leads, and must notice its lease is gone before acknowledging anything.
    pub async fn pause_leader(&mut self) -> Result<()> {
        let leader = self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        self.minority_publisher(leader).await;
        let id = self.compose.container(leader).await?;
        let mut p = self.begin("leader paused", Some(leader), Some(leader), true);
        docker(&["pause", &id]).await?;
        self.effective(&mut p);
        self.admin
            .wait_active(&others(leader), ELECT_TIMEOUT)
            .await?;
        self.hold(Duration::from_secs(2)).await;
        docker(&["unpause", &id]).await?;
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        Ok(())
    }

    /// Every node drops 10% of the packets it receives (and delays what it sends by 40 ms ±
    /// 20 ms where the kernel has netem) for ten seconds.
    pub async fn lossy_links(&mut self) -> Result<()> {
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        let mut pids = Vec::new();
        for n in NODES {
            pids.push(pid(&self.compose.container(n).await?).await?);
        }
        let mut p = self.begin("10% loss + 40±20 ms delay on every node", None, None, false);
        let mut delayed = true;
        for &pid in &pids {
            netfault::loss(pid, 0.10).await?;
            delayed &= netfault::delay(pid, 40, 20).await?;
        }
        if !delayed {
            p.name = "10% loss on every node (no delay: this kernel has no netem)".into();
            self.log(&p.name);
        }
        self.hold(Duration::from_secs(10)).await;
        for &pid in &pids {
            netfault::heal(pid).await?;
        }
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        Ok(())
    }

    /// Restart every node in turn (SIGTERM, then start), followers first, each once the
    /// cluster is whole again: an upgrade.
    pub async fn rolling_restart(&mut self) -> Result<()> {
        let leader = self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        let mut order = others(leader);
        order.push(leader);
        for node in order {
            let id = self.compose.container(node).await?;
            let p = self.begin("restart", Some(node), None, node == leader);
            docker(&["restart", "-t", "10", &id]).await?;
            self.healed(p);
            self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        }
        Ok(())
    }

    /// The whole cluster stopped and started: first gracefully, then by kill -9 of every
    /// node at once (a power cut).
    pub async fn full_restart(&mut self) -> Result<()> {
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        let p = self.begin("stop all, start all", None, None, true);
        self.compose.stop_all().await?;
        self.compose.start_all().await?;
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        self.hold(Duration::from_secs(2)).await;
        let mut ids = Vec::new();
        for n in NODES {
            ids.push(self.compose.container(n).await?);
        }
        let p = self.begin("kill -9 all, start all", None, None, true);
        let mut args = vec!["kill", "-s", "KILL"];
        args.extend(ids.iter().map(String::as_str));
        docker(&args).await?;
        let mut args = vec!["start"];
        args.extend(ids.iter().map(String::as_str));
        docker(&args).await?;
        self.healed(p);
        self.admin.wait_whole(WHOLE_TIMEOUT).await?;
        Ok(())
    }
}
