//! Accept loops. Each accepted socket gets its own task; a failed accept (e.g. out of file
//! descriptors) is logged and retried after a short pause instead of ending the listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::task;
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
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
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
