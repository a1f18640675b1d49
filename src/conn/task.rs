//! One connection's life: CONNECT within the deadline, CONNACK, then a loop that reads
//! packets, writes replies in order as their proposals commit, writes deliveries from the
//! router, enforces keepalive, and closes when this node stops serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{debug, info};

use super::io::{Io, ReadError};
use crate::auth::Transport;
use crate::broker::Broker;
use crate::codec::{reason, Codec, CodecError, ConnAck, Disconnect, Packet, Protocol};
use crate::limits::{self, PublishThrottle, Ticket};
use crate::metrics::Metrics;
use crate::router::Mailbox;
use crate::session::{self, Close, End, Pending, Session, Step};

/// Mailbox items written per wake-up before other work gets a turn.
const MAILBOX_BATCH: usize = 256;

/// Serves one connection. `ticket` is its place at the door (`crate::limits::Door`), held
/// until it closes.
pub async fn run<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut ticket: Ticket,
    broker: Arc<Broker>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let cfg = &broker.config;
    info!(%peer, "connection accepted");
    let mut io = Io::new(stream, Codec::new(cfg.limits.max_packet_size));
    let deadline = Duration::from_secs(cfg.mqtt.connect_timeout_secs);
    let connect = match tokio::time::timeout(deadline, io.read_packet()).await {
        Err(_) => {
            Metrics::add(&broker.metrics.connect_timeouts, 1);
            info!(
                %peer,
                reason = "connect_timeout",
                secs = cfg.mqtt.connect_timeout_secs,
                "connection closed: no CONNECT in time"
            );
            return;
        }
        Ok(Ok(Packet::Connect(c))) => c,
        Ok(Ok(_)) => {
            broker.metrics.connects_refused.add(reason::PROTOCOL_ERROR);
            info!(
                %peer,
                reason = reason::name(reason::PROTOCOL_ERROR),
                "CONNECT refused: the first packet is not CONNECT"
            );
            return;
        }
        Ok(Err(ReadError::Codec(e))) => {
            refuse_bad_connect(&mut io, &e, peer, &broker.metrics).await;
            return;
        }
        Ok(Err(_)) => {
            info!(%peer, reason = "connection_lost", "connection closed before CONNECT");
            return;
        }
    };
    let protocol = io.codec.protocol().unwrap_or(Protocol::V4);
    let client_id = connect.client_id.clone();
    if let Err(refusal) =
        limits::check_connect(&broker, &connect, peer.ip(), protocol, &mut ticket).await
    {
        broker.metrics.connects_refused.add(refusal.code);
        // Limits log once per offender per interval themselves.
        debug!(client = %client_id, %peer, ?protocol, reason = reason::name(refusal.code), detail = %refusal.why, "CONNECT refused at the door");
        let ack = Packet::ConnAck(Box::new(ConnAck {
            reason: refusal.code,
            reason_string: (protocol == Protocol::V5).then_some(refusal.why),
            ..ConnAck::default()
        }));
        if io.queue(&ack).is_ok() {
            let _ = io.flush().await;
        }
        io.shutdown().await;
        return;
    }
    let accepted = match session::accept(&broker, *connect, protocol, &transport).await {
        Ok(a) => a,
        Err(refused) => {
            let code = refused.code();
            broker.metrics.connects_refused.add(code);
            if refused.quiet {
                debug!(client = %client_id, %peer, ?protocol, reason = reason::name(code), detail = %refused.why, "CONNECT refused");
            } else {
                info!(client = %client_id, %peer, ?protocol, reason = reason::name(code), detail = %refused.why, "CONNECT refused");
            }
            if io.queue(&refused.connack).is_ok() {
                let _ = io.flush().await;
            }
            io.shutdown().await;
            return;
        }
    };
    let session::Accepted {
        mut session,
        connack,
        mut mailbox,
    } = accepted;
    if io.queue(&connack).is_err() || io.flush().await.is_err() {
        broker.router.unregister(session.conn);
        return;
    }
    broker.metrics.client_connected();
    info!(client = %session.client, %peer, conn = %session.conn, ?protocol, keep_alive = session.keep_alive_secs, "client connected");

    let close = serve(&mut io, &mut session, &mut mailbox, &broker).await;

    // Record the end (will, DISCONNECT's session expiry) before the client can see the
    // connection end: a client that reconnects once it has must find it applied, not have
    // its CONNECT overtake it and take the session over as if the connection had dropped.
    if let End::Disconnect {
        graceful,
        session_expiry,
    } = close.end
    {
        if let Err(e) = broker
            .cluster
            .propose(session.disconnect_op(graceful, session_expiry))
            .await
        {
            debug!(client = %session.client, error = %e, "disconnect not recorded; the next leader resets it");
        }
    }
    if let (Some(code), Protocol::V5) = (close.send, protocol) {
        let bye = Packet::Disconnect(Disconnect {
            reason: code,
            ..Disconnect::default()
        });
        if io.queue(&bye).is_ok() {
            let _ = io.flush().await;
        }
    }
    io.shutdown().await;
    broker.router.unregister(session.conn);
    let why = close.reason();
    broker.metrics.client_disconnected(why);
    info!(
        client = %session.client,
        %peer,
        conn = %session.conn,
        reason = why.as_str(),
        code = close.send.map(reason::name),
        detail = close.why,
        "client disconnected"
    );
}

/// A bad first packet: answer CONNACK where the protocol says so, then close.
async fn refuse_bad_connect<S>(io: &mut Io<S>, e: &CodecError, peer: SocketAddr, metrics: &Metrics)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    metrics.connects_refused.add(e.reason_code());
    info!(
        %peer,
        reason = reason::name(e.reason_code()),
        detail = %e,
        "CONNECT refused: bad CONNECT packet"
    );
    let code = match e {
        CodecError::UnsupportedProtocol(_) => Some(reason::UNSUPPORTED_PROTOCOL_VERSION),
        // A 5.0 client gets the precise reason; 3.1.1 has no code for most of these.
        _ if io.codec.protocol() == Some(Protocol::V5) => Some(e.reason_code()),
        _ => None,
    };
    if let Some(code) = code {
        let ack = Packet::ConnAck(Box::new(ConnAck {
            reason: code,
            ..ConnAck::default()
        }));
        if io.queue(&ack).is_ok() {
            let _ = io.flush().await;
        }
    }
    io.shutdown().await;
}

fn read_close(e: ReadError) -> Close {
    match e {
        ReadError::Closed => Close::error(reason::SUCCESS, "socket closed by peer").silent(),
        ReadError::Io => Close::error(reason::SUCCESS, "socket error").silent(),
        ReadError::Codec(e) => Close::error(e.reason_code(), "bad packet"),
    }
}

async fn serve<S>(
    io: &mut Io<S>,
    session: &mut Session,
    mailbox: &mut Mailbox,
    broker: &Broker,
) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
    let close = serve_loop(io, session, mailbox, broker, &mut pending).await;
    // What the client sent before it left still counts, as in Mosquitto: the acks, and the
    // publishes (`mosquitto_pub -r` sends a retained QoS 0 PUBLISH and DISCONNECT at once).
    // A proposal is made when its future is first polled, so finish them; nobody waits for
    // the replies. Not when this node stopped serving: they could only time out.
    if matches!(close.end, End::Disconnect { .. }) {
        while pending.next().await.is_some() {}
    }
    close
}

async fn serve_loop<S>(
    io: &mut Io<S>,
    session: &mut Session,
    mailbox: &mut Mailbox,
    broker: &Broker,
    pending: &mut FuturesOrdered<Pending>,
) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // 1.5 x keepalive without any packet from the client closes it (MQTT 3.1.2.10).
    let keepalive = (session.keep_alive_secs > 0)
        .then(|| Duration::from_millis(u64::from(session.keep_alive_secs) * 1500));
    let mut deadline = keepalive.map(|k| Instant::now() + k);
    let mut active = broker.cluster.active_changes();
    let mut shutdown = broker.shutdown.clone();
    // Stop reading while this many replies wait for commit: back-pressure on the socket.
    // One more than the receive maximum, so that a 5.0 client that publishes beyond it
    // without waiting for acks is read and told so (0x93), not just slowed down.
    let max_pending = usize::from(broker.config.mqtt.receive_maximum) + 1;
    // The publish rate: over it, nothing more is read (buffered or from the socket) until
    // `paused_until`; everything else (deliveries, acks, keepalive) goes on.
    let mut throttle = PublishThrottle::new(&broker.config.limits, Instant::now());
    let mut paused_until: Option<Instant> = None;

    loop {
        while pending.len() < max_pending && paused_until.is_none() {
            match io.next_buffered() {
                Ok(Some(packet)) => {
                    deadline = keepalive.map(|k| Instant::now() + k);
                    if let (Packet::Publish(p), Some(t)) = (&packet, &mut throttle) {
                        paused_until = t.charge(p.payload.len(), Instant::now());
                        if paused_until.is_some() {
                            Metrics::add(&broker.metrics.publish_throttled, 1);
                        }
                    }
                    match session.handle(packet) {
                        Ok(Step::Nothing) => {}
                        Ok(Step::Send(packets)) => {
                            for p in packets {
                                if let Err(c) = write(io, session, &p) {
                                    return c;
                                }
                            }
                        }
                        Ok(Step::Wait(fut)) => pending.push_back(fut),
                        Err(c) => return c,
                    }
                }
                Ok(None) => break,
                Err(e) => return read_close(e),
            }
        }
        if io.has_queued() && io.flush().await.is_err() {
            return Close::error(reason::SUCCESS, "write failed").silent();
        }
        let keepalive_at = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            _ = tokio::time::sleep_until(paused_until.unwrap_or(keepalive_at)), if paused_until.is_some() => {
                paused_until = None;
                deadline = keepalive.map(|k| Instant::now() + k);
            }
            r = io.fill(), if pending.len() < max_pending && paused_until.is_none() => {
                if let Err(e) = r {
                    return read_close(e);
                }
            }
            Some(done) = pending.next(), if !pending.is_empty() => match done {
                Ok(packets) => {
                    for p in packets {
                        if let Err(c) = write(io, session, &p) {
                            return c;
                        }
                    }
                }
                Err(c) => return c,
            },
            item = mailbox.rx.recv() => {
                let Some(item) = item else {
                    return Close::error(reason::SUCCESS, "router dropped the connection").silent();
                };
                if let Err(c) = outbound(io, session, mailbox, item) {
                    return c;
                }
                for _ in 0..MAILBOX_BATCH {
                    let Ok(item) = mailbox.rx.try_recv() else { break };
                    if let Err(c) = outbound(io, session, mailbox, item) {
                        return c;
                    }
                }
            }
            // Not while paused: the client's packets (PINGREQ too) wait unread meanwhile.
            _ = tokio::time::sleep_until(keepalive_at), if deadline.is_some() && paused_until.is_none() => {
                return Close::error(reason::KEEP_ALIVE_TIMEOUT, "keepalive timeout");
            }
            _ = active.changed() => {
                if !*active.borrow() {
                    return Close {
                        send: Some(reason::USE_ANOTHER_SERVER),
                        why: "node stopped serving",
                        end: End::Abandon,
                    };
                }
            }
            _ = shutdown.changed() => {
                return Close {
                    send: Some(reason::SERVER_SHUTTING_DOWN),
                    why: "broker shutting down",
                    end: End::Abandon,
                };
            }
        }
    }
}

fn outbound<S>(
    io: &mut Io<S>,
    session: &mut Session,
    mailbox: &Mailbox,
    item: crate::router::Outbound,
) -> Result<(), Close>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match session.outbound(item, mailbox)? {
        Some(p) => write(io, session, &p),
        None => Ok(()),
    }
}

fn write<S>(io: &mut Io<S>, session: &mut Session, packet: &Packet) -> Result<(), Close>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.queue(packet)
        .map_err(|_| Close::error(reason::UNSPECIFIED_ERROR, "cannot encode packet"))?;
    session.sent(packet);
    Ok(())
}
