//! Authentication attempts per username: a token bucket each, holding `rate` tokens and
//! refilled at `rate` per second. A CONNECT that finds its bucket empty is refused before
//! any password is hashed, so a client hammering one account costs almost nothing and
//! cannot guess passwords quickly. A login that succeeds gives its token back: scripts
//! that connect often with the right password are not held up, failures are what count
//! (reconnect loops are the flapping detector's business). Each offender is logged at most once per
//! `LOG_INTERVAL`, with how many attempts were refused since.
//!
//! Memory stays bounded: past `MAX_TRACKED` usernames, buckets that have refilled (their
//! users are not hammering) are forgotten; an attacker inventing names only ever holds
//! buckets that are about to refill.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::warn;

const LOG_INTERVAL: Duration = Duration::from_secs(10);
const MAX_TRACKED: usize = 100_000;

struct Bucket {
    tokens: f64,
    last: Instant,
    refused_since_log: u64,
    logged: Option<Instant>,
}

pub struct RateLimiter {
    /// Attempts per second and bucket size; 0 disables the limit.
    rate: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one attempt for `user` now; false when over the limit.
    pub fn attempt(&self, user: &str) -> bool {
        self.attempt_at(user, Instant::now())
    }

    /// The attempt of `user` succeeded: return its token.
    pub fn succeeded(&self, user: &str) {
        if let Some(b) = self.buckets.lock().get_mut(user) {
            b.tokens = (b.tokens + 1.0).min(f64::from(self.rate));
        }
    }

    fn attempt_at(&self, user: &str, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let rate = f64::from(self.rate);
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(user) {
            buckets.retain(|_, b| refill(b, rate, now) < rate);
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: rate,
            last: now,
            refused_since_log: 0,
            logged: None,
        });
        if refill(bucket, rate, now) >= 1.0 {
            bucket.tokens -= 1.0;
            return true;
        }
        bucket.refused_since_log += 1;
        if bucket
            .logged
            .is_none_or(|at| now.duration_since(at) >= LOG_INTERVAL)
        {
            warn!(
                username = %user,
                refused = bucket.refused_since_log,
                limit_per_sec = self.rate,
                "authentication rate limit: refusing logins for this username"
            );
            bucket.logged = Some(now);
            bucket.refused_since_log = 0;
        }
        false
    }
}

/// Add the tokens earned since the bucket was last looked at; returns the tokens now.
fn refill(b: &mut Bucket, rate: f64, now: Instant) -> f64 {
    let earned = now.duration_since(b.last).as_secs_f64() * rate;
    b.tokens = (b.tokens + earned).min(rate);
    b.last = now;
    b.tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let limiter = RateLimiter::new(4);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(limiter.attempt_at("u", t0));
        }
        assert!(!limiter.attempt_at("u", t0));
        assert!(limiter.attempt_at("other", t0), "buckets are per username");
        assert!(!limiter.attempt_at("u", t0 + Duration::from_millis(100)));
        assert!(limiter.attempt_at("u", t0 + Duration::from_millis(400)));
        assert!(!limiter.attempt_at("u", t0 + Duration::from_millis(400)));
    }

    #[test]
    fn successes_give_their_token_back() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(limiter.attempt_at("u", t0));
            limiter.succeeded("u");
        }
        assert!(limiter.attempt_at("u", t0));
        assert!(limiter.attempt_at("u", t0));
        assert!(!limiter.attempt_at("u", t0));
    }

    #[test]
    fn zero_disables() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        assert!((0..100).all(|_| limiter.attempt_at("u", t0)));
    }
}
