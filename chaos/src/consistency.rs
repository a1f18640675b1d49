//! After the heal every replica must hold the same state: the nodes' state digests, taken
//! at the same applied index, must be equal.

use std::time::Duration;

use anyhow::{bail, Result};
use tokio::time::Instant;

use crate::admin::Admin;
use crate::topology::NODES;

/// Mismatches at one index seen this many times are a violation, not a race.
const MISMATCHES: usize = 3;

/// `Ok` with a line describing the agreed state, or `Err` naming the difference.
pub async fn check(admin: &Admin) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut mismatches = 0;
    let mut last = String::new();
    loop {
        let mut digests = Vec::new();
        for n in NODES {
            match admin.digest(n).await {
                Ok(d) => digests.push((n, d)),
                Err(e) => last = format!("node {n}: {e:#}"),
            }
        }
        if digests.len() == NODES.len() {
            let index = digests[0].1.applied_index;
            let same_index =
                index.is_some() && digests.iter().all(|(_, d)| d.applied_index == index);
            if same_index {
                let first = &digests[0].1;
                if digests.iter().all(|(_, d)| d.digest == first.digest) {
                    return Ok(vec![format!(
                        "replicas identical at index {}: digest {} ({} sessions, {} retained)",
                        index.unwrap_or_default(),
                        &first.digest[..16],
                        first.sessions,
                        first.retained
                    )]);
                }
                mismatches += 1;
                last = digests
                    .iter()
                    .map(|(n, d)| {
                        format!(
                            "node {n}: {} ({} sessions, {} retained)",
                            &d.digest[..16],
                            d.sessions,
                            d.retained
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                if mismatches >= MISMATCHES {
                    bail!("at index {}: {last}", index.unwrap_or_default());
                }
            } else {
                last = format!(
                    "applied indexes {:?}",
                    digests
                        .iter()
                        .map(|(n, d)| (n, d.applied_index))
                        .collect::<Vec<_>>()
                );
            }
        }
        if Instant::now() >= deadline {
            bail!("no common applied index within 30 s: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
