//! A connection's publish rate (messages and payload bytes a second), enforced by pausing
//! reads: a publish over the rate is still handled, and the connection reads nothing more
//! until the rate has paid it off. TCP flow control then slows the client down; nothing is
//! dropped and nobody is disconnected.

use tokio::time::Instant;

use super::bucket::Bucket;
use crate::config::Limits;

pub struct PublishThrottle {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl PublishThrottle {
    /// `None` when neither rate is limited.
    pub fn new(limits: &Limits, now: Instant) -> Option<PublishThrottle> {
        let messages = (limits.publish_rate > 0).then(|| {
            Bucket::new(
                f64::from(limits.publish_rate),
                f64::from(limits.publish_burst),
                now,
            )
        });
        // A second's worth of burst: one large message may pass at once, not more.
        let bytes = (limits.publish_bytes_rate > 0).then(|| {
            let rate = limits.publish_bytes_rate as f64;
            Bucket::new(rate, rate, now)
        });
        (messages.is_some() || bytes.is_some()).then_some(PublishThrottle { messages, bytes })
    }

    /// Charges one publish of `payload` bytes; `Some(t)`: read nothing more before `t`.
    pub fn charge(&mut self, payload: usize, now: Instant) -> Option<Instant> {
        let by_count = self.messages.as_mut().map(|b| b.take(1.0, now));
        let by_bytes = self.bytes.as_mut().map(|b| b.take(payload as f64, now));
        let wait = by_count.max(by_bytes).unwrap_or_default();
        (!wait.is_zero()).then(|| now + wait)
    }
}
