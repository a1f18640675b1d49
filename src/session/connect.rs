//! CONNECT: validate, authenticate, take the session over through Raft, answer CONNACK.
//! Credentials are checked before anything is proposed: a refused client touches no
//! session state.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use raftmq_raft::{ClientId, Connect as ConnectOp, Op, Reply};
use tracing::info;

use super::{props, Session};
use crate::auth::{Access, Refusal, Transport};
use crate::broker::Broker;
use crate::codec::{reason, ConnAck, Connect, Packet, Protocol};
use crate::metrics::Metrics;
use crate::router::Mailbox;

/// A session accepted: CONNACK to send, then serve with the mailbox.
pub struct Accepted {
    pub session: Session,
    pub connack: Packet,
    pub mailbox: Mailbox,
}

/// A CONNECT refused: the CONNACK to send (if any) and why, for the log.
#[derive(Debug)]
pub struct Refused {
    pub connack: Packet,
    pub why: String,
    /// Already logged where it was decided (the auth rate limit logs once per offender
    /// per interval): the connection logs it at debug level only.
    pub quiet: bool,
}

impl Refused {
    /// The CONNACK reason code (a 3.1.1 client gets its 3.1.1 equivalent).
    pub fn code(&self) -> u8 {
        match &self.connack {
            Packet::ConnAck(ack) => ack.reason,
            _ => reason::UNSPECIFIED_ERROR,
        }
    }
}

fn refuse(code: u8, why: impl Into<String>, protocol: Protocol) -> Refused {
    let why = why.into();
    let reason_string = (protocol == Protocol::V5).then(|| why.clone());
    Refused {
        connack: Packet::ConnAck(Box::new(ConnAck {
            reason: code,
            reason_string,
            ..ConnAck::default()
        })),
        why,
        quiet: false,
    }
}

/// The CONNACK for a failed authentication.
fn refuse_auth(refusal: Refusal, protocol: Protocol) -> Refused {
    match refusal {
        Refusal::BadCredentials => refuse(
            reason::BAD_USERNAME_OR_PASSWORD,
            "bad username or password",
            protocol,
        ),
        Refusal::NotAuthorized(why) => refuse(reason::NOT_AUTHORIZED, why, protocol),
        Refusal::RateLimited => {
            let code = match protocol {
                Protocol::V4 => reason::BAD_USERNAME_OR_PASSWORD,
                Protocol::V5 => reason::QUOTA_EXCEEDED,
            };
            Refused {
                quiet: true,
                ..refuse(
                    code,
                    "too many authentication attempts for this username",
                    protocol,
                )
            }
        }
    }
}

/// A follower (or a leader without its lease) refuses: 5.0 clients are pointed at the
/// leader's advertised MQTT address (0x9C + Server Reference); 3.1.1 has only "server
/// unavailable".
fn not_active(broker: &Broker, protocol: Protocol) -> Refused {
    match broker.cluster.other_leader() {
        Some((id, leader)) if protocol == Protocol::V5 => {
            let why = format!("not the leader; node {id} is, at {}", leader.mqtt_addr);
            Refused {
                connack: Packet::ConnAck(Box::new(ConnAck {
                    reason: reason::USE_ANOTHER_SERVER,
                    reason_string: Some(why.clone()),
                    server_reference: Some(leader.mqtt_addr),
                    ..ConnAck::default()
                })),
                why,
                quiet: false,
            }
        }
        _ => refuse(
            reason::SERVER_UNAVAILABLE,
            "this node is not the active leader",
            protocol,
        ),
    }
}

/// Accept or refuse one CONNECT. The connection is registered with the router before the
/// proposal so the redeliveries that the commit triggers reach it.
pub async fn accept(
    broker: &Arc<Broker>,
    c: Connect,
    protocol: Protocol,
    transport: &Transport,
) -> Result<Accepted, Refused> {
    let cfg = &broker.config;
    let conn = broker.next_conn_id();
    let mut assigned = None;
    let client_id = if c.client_id.is_empty() {
        if protocol == Protocol::V4 && !c.clean_start {
            return Err(refuse(
                reason::CLIENT_ID_NOT_VALID,
                "empty client id needs clean session",
                protocol,
            ));
        }
        let id = format!("auto-{:x}-{:x}-{:x}", conn.node.0, conn.epoch, conn.seq);
        assigned = Some(id.clone());
        id
    } else {
        c.client_id.clone()
    };
    if client_id.len() > cfg.limits.max_client_id_len {
        return Err(refuse(
            reason::CLIENT_ID_NOT_VALID,
            "client id too long",
            protocol,
        ));
    }
    if let Some(w) = &c.will {
        if w.retain && !cfg.mqtt.retain_available {
            return Err(refuse(
                reason::RETAIN_NOT_SUPPORTED,
                "retained will not allowed",
                protocol,
            ));
        }
    }
    if !broker.cluster.is_active() {
        return Err(not_active(broker, protocol));
    }
    let username = broker
        .auth
        .authenticate(c.username.as_deref(), c.password.as_deref(), transport)
        .map_err(|r| refuse_auth(r, protocol))?;
    let mut acl = broker.auth.view(username.clone(), &client_id);
    // Mosquitto checks a will against the ACL when it fires; wills fire inside the
    // replicated state machine here, which knows no ACLs, so the check happens now and a
    // will the client may not publish is never stored. The connection itself goes ahead.
    let will = match c.will {
        Some(w) if !broker.auth.allows(&mut acl, &w.topic, Access::Write) => {
            Metrics::add(&broker.metrics.acl_denied_will, 1);
            info!(client = %client_id, username = ?username, topic = %w.topic, "will not stored: the ACL denies publishing to its topic");
            None
        }
        w => w,
    };

    let session_expiry = match protocol {
        Protocol::V5 => c.session_expiry.unwrap_or(0),
        Protocol::V4 if c.clean_start => 0,
        Protocol::V4 => u32::MAX,
    };
    let client_receive_max = c.receive_maximum.unwrap_or(u16::MAX);
    let receive_maximum = client_receive_max.min(cfg.limits.max_inflight);
    let client_max_packet = c.maximum_packet_size;
    let now = crate::clock::now_ms();
    let client = ClientId(client_id);
    let will = will
        .as_ref()
        .map(|w| props::will_to_stored(w, &client, now));
    let op = Op::Connect(ConnectOp {
        client: client.clone(),
        conn,
        clean_start: c.clean_start,
        session_expiry,
        receive_maximum,
        maximum_packet_size: client_max_packet,
        max_queued: cfg.limits.max_queued_messages,
        max_queued_bytes: cfg.limits.max_queued_bytes,
        queue_policy: cfg.limits.queue_policy,
        will,
        protocol: match protocol {
            Protocol::V4 => 4,
            Protocol::V5 => 5,
        },
    });

    let mailbox = broker.router.register(conn);
    let session_present = match broker.cluster.propose(op).await {
        Ok(Reply::Connected { session_present }) => session_present,
        Ok(other) => {
            broker.router.unregister(conn);
            return Err(refuse(
                reason::UNSPECIFIED_ERROR,
                format!("unexpected reply {other:?}"),
                protocol,
            ));
        }
        Err(e) => {
            broker.router.unregister(conn);
            return Err(refuse(reason::SERVER_UNAVAILABLE, e.to_string(), protocol));
        }
    };

    let max_keepalive = cfg.mqtt.max_keepalive_secs;
    let (keep_alive, server_keep_alive) = if protocol == Protocol::V5
        && (c.keep_alive > max_keepalive || c.keep_alive == 0 && max_keepalive < u16::MAX)
    {
        (max_keepalive, Some(max_keepalive))
    } else {
        (c.keep_alive, None)
    };
    let problem_info = c.request_problem_info != Some(0);
    let connack = if protocol == Protocol::V5 {
        ConnAck {
            session_present,
            reason: reason::SUCCESS,
            receive_maximum: Some(cfg.mqtt.receive_maximum),
            retain_available: (!cfg.mqtt.retain_available).then_some(0),
            maximum_packet_size: Some(cfg.limits.max_packet_size),
            assigned_client_id: assigned,
            topic_alias_maximum: Some(cfg.mqtt.topic_alias_maximum),
            server_keep_alive,
            response_information: (c.request_response_info == Some(1))
                .then(|| format!("response/{}", client.as_str())),
            ..ConnAck::default()
        }
    } else {
        ConnAck {
            session_present,
            reason: reason::SUCCESS,
            ..ConnAck::default()
        }
    };
    let session = Session {
        broker: broker.clone(),
        client,
        conn,
        protocol,
        keep_alive_secs: keep_alive,
        problem_info,
        connect_expiry: session_expiry,
        client_max_packet,
        aliases_in: HashMap::new(),
        aliases_out: HashMap::new(),
        alias_out_max: c.topic_alias_maximum.unwrap_or(0),
        inbound_open: 0,
        inbound_qos2: BTreeSet::new(),
        acl,
        acl_dropped: BTreeSet::new(),
    };
    Ok(Accepted {
        session,
        connack: Packet::ConnAck(Box::new(connack)),
        mailbox,
    })
}
