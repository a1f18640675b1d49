//! Accept loops. Each accepted socket passes the door (`crate::limits::Door`: total, per-IP
//! and per-IP rate limits) or is closed at once, before anything is allocated for it; an
//! admitted one gets its own task. A failed accept (e.g. out of file descriptors) is logged
//! and retried after a short pause instead of ending the listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::{task, ws};
use crate::auth::{certificate_identity, Transport};
use crate::broker::Broker;
use crate::limits::Ticket;
use crate::metrics::Metrics;

pub async fn serve_tcp(listener: TcpListener, broker: Arc<Broker>) {
    let b = broker.clone();
    accept_loop(listener, broker, move |stream, peer, ticket| {
        tokio::spawn(task::run(stream, peer, Transport::Plain, ticket, b.clone()));
    })
    .await;
}

pub async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, broker: Arc<Broker>) {
    let handshake_timeout = Duration::from_secs(broker.config.mqtt.connect_timeout_secs);
    let b = broker.clone();
    accept_loop(listener, broker, move |stream, peer, ticket| {
        let acceptor = acceptor.clone();
        let broker = b.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + handshake_timeout;
            if let Some((tls, transport)) =
                handshake(&acceptor, stream, peer, deadline, &broker).await
            {
                task::run(tls, peer, transport, ticket, broker).await
            }
        });
    })
    .await;
}

/// MQTT over WebSocket, over TLS when `tls` is given (`wss://`). The TLS and the HTTP
/// upgrade share one deadline, the CONNECT timeout; after the upgrade the connection is the
/// same task as a TCP one.
pub async fn serve_ws(listener: TcpListener, tls: Option<TlsAcceptor>, broker: Arc<Broker>) {
    let handshake_timeout = Duration::from_secs(broker.config.mqtt.connect_timeout_secs);
    let b = broker.clone();
    accept_loop(listener, broker, move |stream, peer, ticket| {
        let tls = tls.clone();
        let broker = b.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + handshake_timeout;
            match tls {
                None => upgrade(stream, peer, Transport::Plain, ticket, broker, deadline).await,
                Some(acceptor) => {
                    if let Some((tls, transport)) =
                        handshake(&acceptor, stream, peer, deadline, &broker).await
                    {
                        upgrade(tls, peer, transport, ticket, broker, deadline).await
                    }
                }
            }
        });
    })
    .await;
}

async fn upgrade<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    ticket: Ticket,
    broker: Arc<Broker>,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let max_packet = broker.config.limits.max_packet_size;
    match tokio::time::timeout_at(deadline, ws::accept(stream, max_packet)).await {
        Ok(Ok(ws)) => task::run(ws, peer, transport, ticket, broker).await,
        Ok(Err(e)) => {
            info!(%peer, reason = "ws_upgrade_refused", detail = %e, "connection closed: WebSocket upgrade refused");
        }
        Err(_) => {
            info!(%peer, reason = "ws_upgrade_timeout", "connection closed: WebSocket upgrade timed out");
        }
    }
}

/// The TLS handshake by `deadline`, with the client's certificate identity; a failure is
/// logged (and a timeout counted) here.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    broker: &Broker,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Transport)> {
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let identity = tls_identity(&tls);
            Some((tls, Transport::Tls { identity }))
        }
        Ok(Err(e)) => {
            info!(
                %peer,
                reason = "tls_handshake_failed",
                detail = %e,
                "connection closed: TLS handshake failed"
            );
            None
        }
        Err(_) => {
            Metrics::add(&broker.metrics.connect_timeouts, 1);
            info!(
                %peer,
                reason = "tls_handshake_timeout",
                "connection closed: TLS handshake timed out"
            );
            None
        }
    }
}

/// The client's certificate identity: rustls verified the chain against
/// tls.client_ca_file, and the leaf names the client.
fn tls_identity<S>(tls: &tokio_rustls::server::TlsStream<S>) -> Option<String> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| certificate_identity(leaf))
}

/// Accept until shutdown, handing each socket (Nagle off: MQTT packets are small and
/// latency-bound) to `spawn`.
async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    spawn: impl Fn(TcpStream, SocketAddr, Ticket),
) {
    let mut shutdown = broker.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => match broker.door.admit(peer.ip()) {
                Ok(ticket) => {
                    let _ = stream.set_nodelay(true);
                    spawn(stream, peer, ticket);
                }
                // Closed unread: the door counted and logged it.
                Err(_) => drop(stream),
            },
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
