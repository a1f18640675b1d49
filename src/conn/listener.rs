//! Accept loops. Each accepted socket passes the door (`crate::limits::Door`: total, per-IP
//! and per-IP rate limits) or is closed at once, before anything is allocated for it; an
//! admitted one gets its own task. A failed accept (e.g. out of file descriptors) is logged
//! and retried after a short pause instead of ending the listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::task;
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
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // rustls verified the chain against tls.client_ca_file; the leaf names
                    // the client.
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| certificate_identity(leaf));
                    let transport = Transport::Tls { identity };
                    task::run(tls, peer, transport, ticket, broker).await
                }
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => {
                    Metrics::add(&broker.metrics.connect_timeouts, 1);
                    debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    })
    .await;
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
