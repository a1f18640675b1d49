//! Group commit at the Raft level: ops that arrive while earlier batches are in flight are
//! gathered into one `Command` (one entry, one append, one fsync). Batches are handed to
//! openraft in order with `client_write_ff`, so log order equals proposal order; up to
//! `max_inflight_batches` wait for commit at once. Each batch's time from hand-over to commit
//! goes to `Metrics::commit_latency`.

use std::sync::Arc;
use std::time::Instant;

use openraft::error::ClientWriteError;
use openraft::Raft;
use raftmq_raft::{Command, TypeConfig};
use tokio::sync::{mpsc, Semaphore};

use super::{ClusterError, ClusterOptions, Proposal};

pub(super) async fn run(
    raft: Raft<TypeConfig>,
    mut rx: mpsc::Receiver<Proposal>,
    opts: ClusterOptions,
) {
    let slots = Arc::new(Semaphore::new(opts.max_inflight_batches));
    loop {
        // Waiting for a slot first lets proposals pile up in the channel meanwhile: that
        // pile is the next batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut ops = Vec::with_capacity(64);
        let mut replies = Vec::with_capacity(64);
        ops.push(first.op);
        replies.push(first.reply);
        while ops.len() < opts.batch_max_ops {
            match rx.try_recv() {
                Ok(p) => {
                    ops.push(p.op);
                    replies.push(p.reply);
                }
                Err(_) => break,
            }
        }
        let handed_over = Instant::now();
        let cmd = Command {
            now_ms: crate::clock::now_ms(),
            ops,
        };
        let pending = match raft.client_write_ff(cmd).await {
            Ok(rx) => rx,
            Err(fatal) => {
                let err = ClusterError::Stopped(fatal.to_string());
                for r in replies {
                    let _ = r.send(Err(err.clone()));
                }
                continue;
            }
        };
        let timeout = opts.proposal_timeout;
        let metrics = opts.metrics.clone();
        tokio::spawn(async move {
            let outcome = match tokio::time::timeout(timeout, pending).await {
                Err(_) => Err(ClusterError::Timeout(timeout)),
                Ok(Err(_)) => Err(ClusterError::Stopped("raft dropped the write".into())),
                Ok(Ok(Err(ClientWriteError::ForwardToLeader(f)))) => Err(ClusterError::NotLeader {
                    leader: f.leader_id,
                }),
                Ok(Ok(Err(e))) => Err(ClusterError::Internal(e.to_string())),
                Ok(Ok(Ok(resp))) => {
                    metrics.commit_latency.observe(handed_over.elapsed());
                    Ok(resp.data.replies)
                }
            };
            match outcome {
                Ok(list) if list.len() == replies.len() => {
                    for (tx, reply) in replies.into_iter().zip(list) {
                        let _ = tx.send(Ok(reply));
                    }
                }
                Ok(list) => {
                    let err = ClusterError::Internal(format!(
                        "{} replies for {} ops",
                        list.len(),
                        replies.len()
                    ));
                    for tx in replies {
                        let _ = tx.send(Err(err.clone()));
                    }
                }
                Err(err) => {
                    for tx in replies {
                        let _ = tx.send(Err(err.clone()));
                    }
                }
            }
            drop(slot);
        });
    }
}
