//! The door: admission of new sockets (total connections, connections and new connections
//! per second per source IP) before anything is allocated for them, and of usernames at
//! CONNECT. An admitted socket holds a `Ticket`; dropping it gives its places back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tracing::warn;

use super::bucket::Bucket;
use super::cidr::Cidr;
use super::flapping::Flapping;
use super::report::OncePer;
use crate::config::{Config, ConfigError, ConnectionsConfig, FlappingConfig};
use crate::metrics::Metrics;

/// Source IPs remembered before a sweep forgets those with no connection and a full bucket.
const SWEEP_AT: usize = 4096;

/// Why a socket was refused at the door (it is closed without a word: nothing was read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoorRefusal {
    /// `connections.max` open connections already.
    Total,
    /// `connections.max_per_ip` open from this address already.
    PerIp,
    /// The address opened connections faster than `connections.rate_per_ip`.
    Rate,
}

impl DoorRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            DoorRefusal::Total => "connections.max reached",
            DoorRefusal::PerIp => "connections.max_per_ip reached",
            DoorRefusal::Rate => "connections.rate_per_ip exceeded",
        }
    }
}

pub struct Door {
    cfg: ConnectionsConfig,
    allow: Vec<Cidr>,
    pub flapping: Option<Flapping>,
    pub flapping_cfg: FlappingConfig,
    metrics: Arc<Metrics>,
    open: AtomicU32,
    ips: Mutex<Ips>,
    users: Mutex<HashMap<String, u32>>,
    /// Logs each refused source (or username, or client id) once per interval.
    pub reports: OncePer,
}

struct Ips {
    map: HashMap<IpAddr, IpEntry>,
    sweep_at: usize,
}

struct IpEntry {
    open: u32,
    bucket: Option<Bucket>,
}

/// One admitted socket's places at the door.
pub struct Ticket {
    door: Arc<Door>,
    /// `None` for an allow-listed source (not counted per IP).
    ip: Option<IpAddr>,
    username: Option<String>,
}

impl Door {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Door, ConfigError> {
        Ok(Door {
            allow: config.connections.allow_list()?,
            cfg: config.connections.clone(),
            flapping: Flapping::new(&config.flapping),
            flapping_cfg: config.flapping.clone(),
            metrics,
            open: AtomicU32::new(0),
            ips: Mutex::new(Ips {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
            users: Mutex::new(HashMap::new()),
            reports: OncePer::new(Duration::from_secs(config.connections.log_interval_secs)),
        })
    }

    /// Admits a new socket from `ip`, or says why not. Counted in metrics, logged once per
    /// source per interval.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, DoorRefusal> {
        let ip = ip.to_canonical();
        let now = Instant::now();
        let result = self.try_admit(ip, now);
        if let Err(why) = result {
            let counter = match why {
                DoorRefusal::Total => &self.metrics.door_refused_total,
                DoorRefusal::PerIp => &self.metrics.door_refused_per_ip,
                DoorRefusal::Rate => &self.metrics.door_refused_rate,
            };
            Metrics::add(counter, 1);
            if let Some(n) = self.reports.hit(&format!("ip {ip}"), now) {
                warn!(%ip, why = why.as_str(), refused = n, "connections refused at the door");
            }
        }
        result
    }

    fn try_admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Ticket, DoorRefusal> {
        let max = self.cfg.max;
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(DoorRefusal::Total);
        }
        // From here on the ticket owns the total place: a refusal below drops it.
        let mut ticket = Ticket {
            door: self.clone(),
            ip: None,
            username: None,
        };
        if self.allow.iter().any(|net| net.contains(ip)) {
            return Ok(ticket);
        }
        let mut ips = self.ips.lock();
        if ips.map.len() >= ips.sweep_at {
            ips.map
                .retain(|_, e| e.open > 0 || e.bucket.as_ref().is_some_and(|b| !b.is_full(now)));
            ips.sweep_at = (ips.map.len() * 2).max(SWEEP_AT);
        }
        let (rate, burst) = (self.cfg.rate_per_ip, self.cfg.burst_per_ip);
        let entry = ips.map.entry(ip).or_insert_with(|| IpEntry {
            open: 0,
            bucket: (rate > 0).then(|| Bucket::new(f64::from(rate), f64::from(burst), now)),
        });
        if self.cfg.max_per_ip > 0 && entry.open >= self.cfg.max_per_ip {
            return Err(DoorRefusal::PerIp);
        }
        if let Some(bucket) = &mut entry.bucket {
            if !bucket.try_take(now) {
                return Err(DoorRefusal::Rate);
            }
        }
        entry.open += 1;
        ticket.ip = Some(ip);
        Ok(ticket)
    }

    /// Takes a place for `username` (at CONNECT); false when `connections.max_per_username`
    /// connections already use it.
    pub fn claim_username(&self, ticket: &mut Ticket, username: &str) -> bool {
        let max = self.cfg.max_per_username;
        let mut users = self.users.lock();
        let open = users.entry(username.to_owned()).or_insert(0);
        if max > 0 && *open >= max {
            if *open == 0 {
                users.remove(username);
            }
            return false;
        }
        *open += 1;
        ticket.username = Some(username.to_owned());
        true
    }

    /// Connections open now (admitted and not yet closed).
    pub fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.door.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut ips = self.door.ips.lock();
            if let Some(e) = ips.map.get_mut(&ip) {
                e.open = e.open.saturating_sub(1);
            }
        }
        if let Some(user) = &self.username {
            let mut users = self.door.users.lock();
            if let Some(n) = users.get_mut(user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    users.remove(user);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn door(f: impl FnOnce(&mut Config)) -> Arc<Door> {
        let mut c = Config::default();
        f(&mut c);
        Arc::new(Door::new(&c, Arc::new(Metrics::default())).unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_and_total_places_come_back_on_drop() {
        let d = door(|c| {
            c.connections.max = 3;
            c.connections.max_per_ip = 2;
        });
        let a1 = d.admit(ip("10.0.0.1")).unwrap();
        let _a2 = d.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(d.admit(ip("10.0.0.1")).err(), Some(DoorRefusal::PerIp));
        let _b1 = d.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(d.admit(ip("10.0.0.3")).err(), Some(DoorRefusal::Total));
        assert_eq!(d.open(), 3);
        drop(a1);
        assert_eq!(d.open(), 2);
        assert!(d.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn rate_and_allow_list() {
        let d = door(|c| {
            c.connections.rate_per_ip = 1;
            c.connections.burst_per_ip = 2;
            c.connections.allow = "192.168.0.0/16".into();
        });
        let _t: Vec<_> = (0..2).map(|_| d.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(d.admit(ip("10.0.0.1")).err(), Some(DoorRefusal::Rate));
        let _allowed: Vec<_> = (0..50)
            .map(|_| d.admit(ip("192.168.1.1")).unwrap())
            .collect();
    }

    #[test]
    fn usernames_are_counted_while_connected() {
        let d = door(|c| c.connections.max_per_username = 1);
        let mut t1 = d.admit(ip("10.0.0.1")).unwrap();
        let mut t2 = d.admit(ip("10.0.0.2")).unwrap();
        assert!(d.claim_username(&mut t1, "bob"));
        assert!(!d.claim_username(&mut t2, "bob"));
        drop(t1);
        assert!(d.claim_username(&mut t2, "bob"));
    }
}
