//! Accept loops. Each accepted socket gets its own task; a failed accept (e.g. out of file
//! descriptors) is logged and retried after a short pause instead of ending the listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::{task, ws};
use crate::broker::Broker;

pub async fn serve_tcp(listener: TcpListener, broker: Arc<Broker>) {
    let b = broker.clone();
    accept_loop(listener, broker, move |stream, peer| {
        tokio::spawn(task::run(stream, peer, b.clone()));
    })
    .await;
}

pub async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, broker: Arc<Broker>) {
    let handshake_timeout = Duration::from_secs(broker.config.mqtt.connect_timeout_secs);
    let b = broker.clone();
    accept_loop(listener, broker, move |stream, peer| {
        let acceptor = acceptor.clone();
        let broker = b.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => task::run(tls, peer, broker).await,
                Ok(Err(e)) => {
                    info!(
                        %peer,
                        reason = "tls_handshake_failed",
                        detail = %e,
                        "connection closed: TLS handshake failed"
                    );
                }
                Err(_) => {
                    info!(
                        %peer,
                        reason = "tls_handshake_timeout",
                        "connection closed: TLS handshake timed out"
                    );
                }
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
    accept_loop(listener, broker, move |stream, peer| {
        let tls = tls.clone();
        let broker = b.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + handshake_timeout;
            match tls {
                None => upgrade(stream, peer, broker, deadline).await,
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => upgrade(tls, peer, broker, deadline).await,
                        Ok(Err(e)) => {
                            info!(
                                %peer,
                                reason = "tls_handshake_failed",
                                detail = %e,
                                "connection closed: TLS handshake failed"
                            );
                        }
                        Err(_) => {
                            info!(
                                %peer,
                                reason = "tls_handshake_timeout",
                                "connection closed: TLS handshake timed out"
                            );
                        }
                    }
                }
            }
        });
    })
    .await;
}

async fn upgrade<S>(stream: S, peer: SocketAddr, broker: Arc<Broker>, deadline: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let max_packet = broker.config.limits.max_packet_size;
    match tokio::time::timeout_at(deadline, ws::accept(stream, max_packet)).await {
        Ok(Ok(ws)) => task::run(ws, peer, broker).await,
        Ok(Err(e)) => {
            info!(%peer, reason = "ws_upgrade_refused", detail = %e, "connection closed: WebSocket upgrade refused");
        }
        Err(_) => {
            info!(%peer, reason = "ws_upgrade_timeout", "connection closed: WebSocket upgrade timed out");
        }
    }
}

/// Accept until shutdown, handing each socket (Nagle off: MQTT packets are small and
/// latency-bound) to `spawn`.
async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    spawn: impl Fn(TcpStream, SocketAddr),
) {
    let mut shutdown = broker.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                spawn(stream, peer);
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
