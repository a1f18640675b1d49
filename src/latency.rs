//! Latency histograms with fixed buckets, lock-free: an observation is three relaxed atomic
//! adds, cheap enough for every PUBACK, every commit and every fsync. The Prometheus exporter
//! (`crate::exporter`) reads them at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in seconds, from 100 µs (an fsync on a fast SSD) to 10 s (a proposal
/// timing out): the range between "healthy" and "stalled" for every latency we measure.
pub const BUCKETS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS_SECONDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram's values at one moment, in Prometheus' shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub sum_seconds: f64,
    pub count: u64,
    /// (upper bound, observations in this bucket alone), `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let i = BUCKETS_SECONDS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS_SECONDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The values now. Read without a lock, so a concurrent observation may show in the
    /// count and not yet in a bucket; Prometheus tolerates that skew of one scrape.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = BUCKETS_SECONDS.iter().copied().chain([f64::INFINITY]);
        HistogramSnapshot {
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: self.count.load(Ordering::Relaxed),
            buckets: bounds
                .zip(&self.buckets)
                .map(|(le, n)| (le, n.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert!((s.sum_seconds - 60.0031).abs() < 1e-9, "{}", s.sum_seconds);
        let nonzero: Vec<(f64, u64)> = s.buckets.into_iter().filter(|b| b.1 > 0).collect();
        assert_eq!(nonzero, [(0.0001, 1), (0.005, 1), (f64::INFINITY, 1)]);
    }
}
