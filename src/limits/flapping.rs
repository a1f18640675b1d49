//! Flapping detection: a client id that connects more than `max_connects` times within
//! `window_secs` is reported once, so the caller can ban it. Counted on this node only
//! (only the active node accepts connections); the ban itself is replicated.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::FlappingConfig;

/// Client ids remembered before a sweep forgets those whose window has passed.
const SWEEP_AT: usize = 4096;

pub struct Flapping {
    max_connects: u32,
    window: Duration,
    clients: Mutex<Clients>,
}

struct Clients {
    /// Client id -> (start of its window, connects in it).
    map: HashMap<String, (Instant, u32)>,
    sweep_at: usize,
}

impl Flapping {
    /// `None` when flapping detection is off.
    pub fn new(cfg: &FlappingConfig) -> Option<Flapping> {
        cfg.enabled.then(|| Flapping {
            max_connects: cfg.max_connects,
            window: Duration::from_secs(cfg.window_secs),
            clients: Mutex::new(Clients {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        })
    }

    /// Counts one CONNECT of `client`; true when it went over the limit (its count starts
    /// again, so the next report needs a whole new run of connects).
    pub fn connected(&self, client: &str, now: Instant) -> bool {
        let mut clients = self.clients.lock();
        if clients.map.len() >= clients.sweep_at {
            let window = self.window;
            clients
                .map
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            clients.sweep_at = (clients.map.len() * 2).max(SWEEP_AT);
        }
        let entry = clients.map.entry(client.to_owned()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.max_connects {
            clients.map.remove(client);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_connect_over_the_limit_within_the_window() {
        let cfg = FlappingConfig {
            max_connects: 3,
            window_secs: 10,
            ..FlappingConfig::default()
        };
        let f = Flapping::new(&cfg).unwrap();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert!(!f.connected("c", t0));
        assert!(!f.connected("c", t0 + s));
        assert!(!f.connected("c", t0 + 2 * s));
        assert!(f.connected("c", t0 + 3 * s));
        // The window restarts: three more are allowed.
        assert!(!f.connected("c", t0 + 4 * s));
        // Slow reconnects never trip it.
        for i in 0..10 {
            assert!(!f.connected("slow", t0 + 11 * s * i));
        }
    }
}
