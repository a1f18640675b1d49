//! The checks a CONNECT passes before any session state is touched: bans (client id, source
//! IP, username), flapping (which may set a ban), and connections per username. A refusal is
//! a reason code and a message; the caller answers CONNACK and closes.

use std::net::IpAddr;

use raftmq_raft::{BanKind, BanTarget, Op};
use tokio::time::Instant;
use tracing::{info, warn};

use super::door::Ticket;
use crate::broker::Broker;
use crate::codec::{reason, Connect, Protocol};
use crate::metrics::Metrics;

/// A CONNECT refused at the door: the CONNACK reason code for this protocol, and why.
pub struct Refusal {
    pub code: u8,
    pub why: String,
}

/// Checks `c`, from `ip`, against bans, flapping and the per-username limit; on success the
/// username (if any) holds a place in `ticket` for the life of the connection.
pub async fn check_connect(
    broker: &Broker,
    c: &Connect,
    ip: IpAddr,
    protocol: Protocol,
    ticket: &mut Ticket,
) -> Result<(), Refusal> {
    let door = &broker.door;
    let now = Instant::now();
    let ip = ip.to_canonical().to_string();
    let banned_code = match protocol {
        Protocol::V5 => reason::BANNED,
        Protocol::V4 => reason::NOT_AUTHORIZED,
    };
    let mut checks = vec![(BanKind::Ip, ip.as_str())];
    if !c.client_id.is_empty() {
        checks.push((BanKind::ClientId, c.client_id.as_str()));
    }
    if let Some(user) = &c.username {
        checks.push((BanKind::Username, user.as_str()));
    }
    let banned = {
        let state = broker.cluster.state().read();
        let wall = crate::clock::now_ms();
        checks.iter().find_map(|(kind, value)| {
            let ban = state.banned(*kind, value, wall)?;
            Some(format!(
                "{kind} {value} is banned for {} s more ({})",
                ban.until_ms.saturating_sub(wall).div_ceil(1000),
                ban.reason
            ))
        })
    };
    if let Some(why) = banned {
        Metrics::add(&broker.metrics.banned_refused, 1);
        if let Some(n) = door.reports.hit(&format!("banned {}", c.client_id), now) {
            info!(client = %c.client_id, %ip, refused = n, why = %why, "banned client refused");
        }
        return Err(Refusal {
            code: banned_code,
            why,
        });
    }
    if let Some(flapping) = &door.flapping {
        if !c.client_id.is_empty() && flapping.connected(&c.client_id, now) {
            let why = ban_flapping(broker, &c.client_id, &ip).await;
            return Err(Refusal {
                code: banned_code,
                why,
            });
        }
    }
    if let Some(user) = &c.username {
        if !door.claim_username(ticket, user) {
            Metrics::add(&broker.metrics.door_refused_username, 1);
            if let Some(n) = door.reports.hit(&format!("username {user}"), now) {
                warn!(username = %user, refused = n, "CONNECT refused: connections.max_per_username reached");
            }
            return Err(Refusal {
                code: match protocol {
                    Protocol::V5 => reason::QUOTA_EXCEEDED,
                    Protocol::V4 => reason::SERVER_UNAVAILABLE,
                },
                why: "too many connections with this username".into(),
            });
        }
    }
    Ok(())
}

/// Bans a flapping client id (and its IP, if configured) through Raft, so the ban holds on
/// whichever node leads next.
async fn ban_flapping(broker: &Broker, client: &str, ip: &str) -> String {
    let cfg = &broker.door.flapping_cfg;
    let until_ms = crate::clock::now_ms() + cfg.ban_secs * 1000;
    let reason = format!(
        "flapping: more than {} connects in {} s",
        cfg.max_connects, cfg.window_secs
    );
    let mut targets = vec![BanTarget {
        kind: BanKind::ClientId,
        value: client.to_owned(),
    }];
    if cfg.ban_ip {
        targets.push(BanTarget {
            kind: BanKind::Ip,
            value: ip.to_owned(),
        });
    }
    Metrics::add(&broker.metrics.flapping_bans, 1);
    warn!(
        client,
        ip,
        ban_secs = cfg.ban_secs,
        "flapping client banned"
    );
    for target in targets {
        let op = Op::Ban {
            target,
            until_ms,
            reason: reason.clone(),
        };
        if let Err(e) = broker.cluster.propose(op).await {
            warn!(client, error = %e, "flapping ban not committed");
        }
    }
    format!("{reason}; banned for {} s", cfg.ban_secs)
}
