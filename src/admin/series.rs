//! Message rates and connections over the last minutes, for the status page: a ring buffer
//! filled by a task every `SAMPLE_EVERY` from the same counters `/metrics` exposes.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::Shared;
use crate::metrics::Metrics;

pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Ten minutes of samples.
pub const KEPT: usize = 300;

/// One interval between two samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// End of the interval, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// PUBLISH packets received per second over the interval.
    pub received_per_sec: f64,
    /// Messages delivered per second over the interval.
    pub sent_per_sec: f64,
    /// Connections open at the end of the interval.
    pub connections: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SeriesView {
    pub interval_ms: u64,
    /// Oldest first.
    pub points: Vec<Point>,
}

#[derive(Default)]
pub struct Series {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (when, received, sent) of the previous sample.
    last: Option<(u64, u64, u64)>,
    points: VecDeque<Point>,
}

impl Series {
    /// Take a sample of `metrics` at `now_ms`.
    pub fn record(&self, metrics: &Metrics, now_ms: u64) {
        let received = Metrics::total(&metrics.messages_received);
        let sent = Metrics::total(&metrics.messages_sent);
        let connections = Metrics::get(&metrics.clients_connected);
        let mut inner = self.inner.lock();
        let Inner { last, points } = &mut *inner;
        if let Some((at, r, s)) = *last {
            let secs = now_ms.saturating_sub(at) as f64 / 1000.0;
            if secs > 0.0 {
                if points.len() == KEPT {
                    points.pop_front();
                }
                points.push_back(Point {
                    at_unix_ms: now_ms,
                    received_per_sec: received.saturating_sub(r) as f64 / secs,
                    sent_per_sec: sent.saturating_sub(s) as f64 / secs,
                    connections,
                });
            }
        }
        *last = Some((now_ms, received, sent));
    }

    pub fn view(&self) -> SeriesView {
        SeriesView {
            interval_ms: SAMPLE_EVERY.as_millis() as u64,
            points: self.inner.lock().points.iter().cloned().collect(),
        }
    }
}

/// Sample every `SAMPLE_EVERY` until the admin API is gone.
pub(super) async fn sample(state: Weak<Shared>) {
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    loop {
        ticker.tick().await;
        let Some(s) = state.upgrade() else {
            return;
        };
        s.series.record(&s.metrics, crate::clock::now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_between_samples() {
        let series = Series::default();
        let m = Metrics::default();
        series.record(&m, 10_000);
        Metrics::add(&m.messages_received[1], 30);
        Metrics::add(&m.messages_sent[0], 10);
        m.client_connected();
        series.record(&m, 12_000);
        let v = series.view();
        assert_eq!(
            v.points,
            [Point {
                at_unix_ms: 12_000,
                received_per_sec: 15.0,
                sent_per_sec: 5.0,
                connections: 1,
            }]
        );
    }
}
