//! The virtual IP (DESIGN: "Fencing and the VIP"): the active node holds it, nobody else.
//!
//! # Layout
//! - `mod.rs`: `spawn` (the task that follows the cluster's `active` flag), `VipHandle`.
//! - `netlink`: adding and removing the address (CAP_NET_ADMIN).
//! - `garp`: gratuitous ARP announcements (CAP_NET_RAW).
//! - `hooks`: operator commands instead of the two above.
//!
//! One task reacts to `Cluster::active_changes()`: on `true` it adds the address and sends a
//! burst of gratuitous ARP (every time, so a lease regained after a partition is announced
//! again); on `false` it removes the address before anything else. The connection tasks
//! close on the same signal at the same moment: the removal does not wait for them, and it
//! is a single netlink request, so it is done within a millisecond or so of the flag.
//!
//! Failures never stop the broker. A node that cannot take the VIP keeps serving, because it
//! is still the one leader holding the lease and clients may reach it by its own address or
//! through a load balancer that checks `/readyz`; the error is logged once per transition,
//! shown in `VipHandle::status()`, and (netlink mode) retried every `RETRY` while it lasts.

mod garp;
mod hooks;
mod netlink;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use raftmq_raft::NodeId;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::{ConfigError, VipAddress, VipConfig, VipMode};

use hooks::{Event as HookEvent, HookEnv};

/// How often a failed netlink add or remove is tried again while it is still wanted.
const RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum VipError {
    #[error("invalid [vip] configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("interface {0:?} not found")]
    NoInterface(String),
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("cannot {op} {address} on {interface}: {detail}")]
    Netlink {
        op: &'static str,
        address: String,
        interface: String,
        detail: String,
    },
    #[error("gratuitous ARP on {interface}: {message}")]
    Garp { interface: String, message: String },
    #[error("{event} hook {message}")]
    Hook {
        event: &'static str,
        message: String,
    },
}

/// What `/cluster/status` and metrics show about this node's VIP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VipStatus {
    /// `netlink`, `hooks` or `off`.
    pub mode: &'static str,
    /// As configured (`10.0.0.100/24`), empty when none.
    pub address: String,
    pub interface: String,
    /// This node holds the VIP now (netlink: the address is on the interface; hooks: the up
    /// hook succeeded and no down hook ran since).
    pub held: bool,
    /// The last failure, cleared when a later step succeeds.
    pub error: Option<String>,
}

/// Cheap to clone. Dropping it does not release the VIP: call `release` at shutdown.
#[derive(Clone)]
pub struct VipHandle {
    status: Arc<Mutex<VipStatus>>,
    stop: Arc<watch::Sender<bool>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl VipHandle {
    pub fn status(&self) -> VipStatus {
        self.status.lock().clone()
    }

    /// Whether this node holds the VIP now.
    pub fn held(&self) -> bool {
        self.status.lock().held
    }

    /// Give the VIP up and stop following the active flag (shutdown). Returns once the
    /// address is removed (or the down hook finished): call it before closing connections.
    pub async fn release(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                error!(error = %e, "VIP task failed");
            }
        }
    }
}

/// Start following `active` (from `Cluster::active_changes()`). Needs a tokio runtime.
pub fn spawn(
    config: &VipConfig,
    node_id: NodeId,
    active: watch::Receiver<bool>,
) -> Result<VipHandle, VipError> {
    config.validate()?;
    let address = config.parse_address()?;
    let mode = config.effective_mode();
    let status = Arc::new(Mutex::new(VipStatus {
        mode: mode.as_str(),
        address: config.address.trim().to_owned(),
        interface: config.interface.clone(),
        held: false,
        error: None,
    }));
    let stop = Arc::new(watch::channel(false).0);
    let manager = match (mode, address) {
        (VipMode::Netlink, Some(address)) => Some(Manager::Netlink {
            netlink: netlink::Netlink::new(config.interface.clone(), address),
            address,
            interface: config.interface.clone(),
            garp_count: config.garp_count,
            garp_interval: Duration::from_millis(config.garp_interval_ms),
        }),
        (VipMode::Hooks, _) => Some(Manager::Hooks {
            up: config.up_command.trim().to_owned(),
            down: config.down_command.trim().to_owned(),
            env: HookEnv {
                address: config.address.trim().to_owned(),
                interface: config.interface.clone(),
                node_id,
            },
            timeout: Duration::from_millis(config.hook_timeout_ms),
        }),
        _ => None,
    };
    let task = manager.map(|manager| {
        info!(mode = mode.as_str(), address = %config.address.trim(),
              interface = %config.interface, "VIP management on");
        let refresh = Duration::from_secs(config.garp_refresh_secs);
        tokio::spawn(run(manager, active, stop.clone(), status.clone(), refresh))
    });
    Ok(VipHandle {
        status,
        stop,
        task: Arc::new(Mutex::new(task)),
    })
}

enum Manager {
    Netlink {
        netlink: netlink::Netlink,
        address: VipAddress,
        interface: String,
        garp_count: u32,
        garp_interval: Duration,
    },
    Hooks {
        up: String,
        down: String,
        env: HookEnv,
        timeout: Duration,
    },
}

impl Manager {
    async fn up(&mut self) -> Result<(), VipError> {
        match self {
            Manager::Netlink { netlink, .. } => netlink.add().await,
            Manager::Hooks {
                up, env, timeout, ..
            } => run_hook(up, env, HookEvent::Up, *timeout).await,
        }
    }

    /// `Ok(false)` when there was nothing to remove.
    async fn down(&mut self) -> Result<bool, VipError> {
        match self {
            Manager::Netlink { netlink, .. } => netlink.remove().await,
            Manager::Hooks {
                down, env, timeout, ..
            } => run_hook(down, env, HookEvent::Down, *timeout)
                .await
                .map(|()| !down.is_empty()),
        }
    }

    /// A failed netlink step is retried; a hook runs once per transition (like keepalived's
    /// notify scripts), since running an operator's failing script in a loop helps nobody.
    fn retries(&self) -> bool {
        matches!(self, Manager::Netlink { .. })
    }

    /// Start a gratuitous ARP burst in the background (netlink mode); the returned guard
    /// cancels it when dropped.
    fn announce(&self, status: &Arc<Mutex<VipStatus>>, failing: &Arc<AtomicBool>) -> Burst {
        let Manager::Netlink {
            address,
            interface,
            garp_count,
            garp_interval,
            ..
        } = self
        else {
            return Burst(None);
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let (ip, interface, count, interval) =
            (address.ip, interface.clone(), *garp_count, *garp_interval);
        let (flag, status, failing) = (cancelled.clone(), status.clone(), failing.clone());
        tokio::spawn(async move {
            let sent = tokio::task::spawn_blocking(move || {
                garp::send_burst(&interface, ip, count, interval, &flag)
            })
            .await;
            match sent {
                Ok(Ok(())) => {
                    if failing.swap(false, Ordering::AcqRel) {
                        info!("gratuitous ARP works again");
                    }
                    debug!(count, "gratuitous ARP burst sent");
                }
                Ok(Err(e)) => {
                    // Once per run of failures: the same missing capability would otherwise
                    // be logged on every refresh.
                    if !failing.swap(true, Ordering::AcqRel) {
                        error!(error = %e, "cannot announce the VIP; clients may keep \
                               using the previous holder until their ARP entries expire");
                    }
                    status.lock().error = Some(e.to_string());
                }
                Err(e) => error!(error = %e, "gratuitous ARP task failed"),
            }
        });
        Burst(Some(cancelled))
    }
}

/// The running gratuitous ARP burst, if any; cancelled when replaced or dropped.
#[derive(Default)]
struct Burst(Option<Arc<AtomicBool>>);

impl Burst {
    fn cancel(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Release);
        }
    }

    fn replace(&mut self, next: Burst) {
        self.cancel();
        *self = next;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.cancel();
    }
}

async fn run_hook(
    command: &str,
    env: &HookEnv,
    event: HookEvent,
    timeout: Duration,
) -> Result<(), VipError> {
    if command.is_empty() {
        return Ok(());
    }
    let outcome = hooks::run(command, env, event, timeout).await?;
    if outcome.stderr.is_empty() {
        info!(event = event.as_str(), "VIP hook succeeded");
    } else {
        info!(event = event.as_str(), stderr = %outcome.stderr, "VIP hook succeeded");
    }
    Ok(())
}

/// What this node has done to the VIP, as far as it knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    No,
    Yes,
    /// At start-up (a crashed predecessor may have left it) or after a failed step.
    Unknown,
}

async fn run(
    mut manager: Manager,
    mut active: watch::Receiver<bool>,
    stop_tx: Arc<watch::Sender<bool>>,
    status: Arc<Mutex<VipStatus>>,
    refresh: Duration,
) {
    // Holding the sender keeps `stop.changed()` from failing when every handle is dropped
    // (then nobody can release, and the task simply follows `active` until the runtime ends).
    let mut stop = stop_tx.subscribe();
    let mut held = Held::Unknown;
    let mut cluster_gone = false;
    // The step that failed last: its retries log quietly, a new transition logs again.
    let mut failing: Option<HookEvent> = None;
    let garp_failing = Arc::new(AtomicBool::new(false));
    let mut burst = Burst::default();
    loop {
        let stopping = *stop.borrow_and_update();
        let want = !stopping && !cluster_gone && *active.borrow_and_update();
        let event = match (want, held) {
            (true, Held::Yes) | (false, Held::No) => None,
            (true, _) => Some(HookEvent::Up),
            (false, _) => Some(HookEvent::Down),
        };
        let mut retry = false;
        if let Some(event) = event {
            // Stop announcing first: a burst must never outlive the address.
            burst.cancel();
            let result = match event {
                HookEvent::Up => tokio::select! {
                    r = manager.up() => r.map(|()| true),
                    // A step-down while an up hook runs kills the hook and goes on to the
                    // down step: stepping down must not wait for it.
                    gone = not_wanted(&mut active, &mut stop) => {
                        warn!("VIP up step interrupted: no longer active");
                        cluster_gone |= gone;
                        held = Held::Unknown;
                        continue;
                    }
                },
                HookEvent::Down => manager.down().await,
            };
            match result {
                Ok(changed) => {
                    if failing.take().is_some() {
                        info!(event = event.as_str(), "VIP step succeeded after failures");
                    }
                    let mut s = status.lock();
                    s.held = event == HookEvent::Up;
                    s.error = None;
                    if event == HookEvent::Up {
                        info!(address = %s.address, interface = %s.interface, "VIP taken");
                        drop(s);
                        burst.replace(manager.announce(&status, &garp_failing));
                    } else if changed {
                        info!(address = %s.address, interface = %s.interface, "VIP released");
                    } else {
                        debug!(address = %s.address, "VIP not held: nothing to release");
                    }
                }
                Err(e) => {
                    if failing == Some(event) {
                        debug!(error = %e, "VIP step failed again");
                    } else {
                        error!(error = %e, event = event.as_str(),
                               "VIP step failed; the broker goes on serving without it");
                    }
                    failing = Some(event);
                    let mut s = status.lock();
                    s.held = false;
                    s.error = Some(e.to_string());
                    retry = manager.retries();
                }
            }
            held = match (event, retry) {
                (HookEvent::Up, false) => Held::Yes,
                (HookEvent::Down, false) => Held::No,
                // A failed add is retried; so is a failed remove (the address may be there).
                (HookEvent::Up, true) => Held::No,
                (HookEvent::Down, true) => Held::Unknown,
            };
            if stopping {
                return;
            }
            if !retry {
                // Changes seen while the step ran are read at the top of the loop.
                continue;
            }
        }
        if stopping {
            return;
        }
        let refreshing = held == Held::Yes && !refresh.is_zero();
        tokio::select! {
            changed = active.changed(), if !cluster_gone => {
                if changed.is_err() {
                    cluster_gone = true;
                }
            }
            _ = stop.changed() => {}
            _ = tokio::time::sleep(RETRY), if retry => {}
            _ = tokio::time::sleep(refresh), if refreshing => {
                burst.replace(manager.announce(&status, &garp_failing));
            }
        }
    }
}

/// Resolves when the VIP is no longer wanted: inactive or stopping; `true` when the
/// cluster's side of `active` is gone (which also means: no longer wanted).
async fn not_wanted(active: &mut watch::Receiver<bool>, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        r = active.wait_for(|a| !*a) => r.is_err(),
        // The task owns a sender of `stop`, so this never fails.
        _ = stop.wait_for(|s| *s) => false,
    }
}

#[cfg(test)]
mod tests;
