//! The global cap on queued bytes (`limits.max_queued_bytes_total`). The queues live in the
//! replicated state; their total is sampled a few times a second rather than summed on every
//! publish. New QoS 0 publishes are shed first (from 90% of the cap), so the room left goes
//! to QoS 1/2, which are refused only at the cap itself.

use std::sync::Arc;
use std::time::Duration;

use raftmq_raft::{QoS, SharedState};

use crate::config::Limits;
use crate::metrics::Metrics;

const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Keeps `metrics.queued_bytes` near the state's total until the runtime stops.
pub async fn sample_queued_bytes(state: SharedState, metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let total = state.read().queued_bytes();
        metrics
            .queued_bytes
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether a new publish of `qos` must be shed now; counts it if so.
pub fn shed(qos: QoS, limits: &Limits, metrics: &Metrics) -> bool {
    let queued = Metrics::get(&metrics.queued_bytes);
    let cap = limits.max_queued_bytes_total;
    let (over, counter) = match qos {
        QoS::AtMostOnce => (queued >= cap / 10 * 9, &metrics.shed_qos0),
        _ => (queued >= cap, &metrics.shed_qos12),
    };
    if over {
        Metrics::add(counter, 1);
    }
    over
}
