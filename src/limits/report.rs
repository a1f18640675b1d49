//! Logging once per offender per interval: a refused source that retries a thousand times a
//! second gets one log line per interval, carrying how many refusals it stands for.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Offenders remembered before a sweep forgets those quiet for a whole interval.
const SWEEP_AT: usize = 4096;

pub struct OncePer {
    interval: Duration,
    seen: Mutex<Seen>,
}

struct Seen {
    /// Offender -> (last logged at, refusals since then).
    map: HashMap<String, (Instant, u64)>,
    sweep_at: usize,
}

impl OncePer {
    pub fn new(interval: Duration) -> OncePer {
        OncePer {
            interval,
            seen: Mutex::new(Seen {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }

    /// Records one refusal of `offender`. `Some(n)` when it is time to log it: `n`
    /// refusals (this one included) since the last line.
    pub fn hit(&self, offender: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock();
        if seen.map.len() >= seen.sweep_at {
            let interval = self.interval;
            seen.map
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < interval);
            seen.sweep_at = (seen.map.len() * 2).max(SWEEP_AT);
        }
        match seen.map.get_mut(offender) {
            Some((at, count)) if now.saturating_duration_since(*at) < self.interval => {
                *count += 1;
                None
            }
            Some((at, count)) => {
                let n = *count + 1;
                *at = now;
                *count = 0;
                Some(n)
            }
            None => {
                seen.map.insert(offender.to_owned(), (now, 0));
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let t0 = Instant::now();
        let once = OncePer::new(Duration::from_secs(10));
        assert_eq!(once.hit("a", t0), Some(1));
        assert_eq!(once.hit("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(once.hit("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(once.hit("b", t0 + Duration::from_secs(2)), Some(1));
        assert_eq!(once.hit("a", t0 + Duration::from_secs(10)), Some(3));
    }
}
