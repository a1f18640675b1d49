//! The server side: an accept loop and one task per connection, each doing the handshake
//! under a deadline, then request -> Raft -> reply until the peer leaves. Anything wrong
//! with a connection (bad proof, garbage, oversized frame) closes that connection only.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::auth::ClusterAuth;
use super::wire::{self, Inbound, Reply};
use super::TransportError;
use crate::ids::NodeId;
use crate::types::TypeConfig;

/// After a failed accept (out of file descriptors, usually): retrying at once would spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves Raft RPCs from `listener` to `raft` until `shutdown` completes. Then it stops
/// accepting and closes every open connection before returning: a node that was shut down
/// must stop answering at once, or its peers would go on counting it as alive.
pub async fn serve<F>(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    auth: Arc<ClusterAuth>,
    shutdown: F,
) where
    F: Future<Output = ()>,
{
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(addr = ?listener.local_addr().ok(), node = %auth.node_id(),
        tls = auth.tls_enabled(), "raft rpc server listening");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    conns.spawn(connection(tcp, peer, raft.clone(), Arc::clone(&auth)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "raft rpc accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            // Reap finished connection tasks so the set holds live ones only.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
    tracing::info!(node = %auth.node_id(), "raft rpc server stopped");
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    raft: Raft<TypeConfig>,
    auth: Arc<ClusterAuth>,
) {
    match handle(tcp, &raft, &auth).await {
        Ok(()) => tracing::debug!(%peer, "raft connection closed by peer"),
        Err(e) => log_closed(auth.node_id(), peer, &e),
    }
}

async fn handle(
    tcp: TcpStream,
    raft: &Raft<TypeConfig>,
    auth: &ClusterAuth,
) -> Result<(), TransportError> {
    tcp.set_nodelay(true)?;
    // Nothing is read as a frame before the peer proved the secret, and a peer that connects
    // and says nothing holds a task only this long.
    let (mut io, node) = timeout(auth.handshake_timeout, auth.accept(tcp))
        .await
        .map_err(|_| TransportError::Timeout("handshake"))??;
    tracing::debug!(%node, "raft peer authenticated");
    let max = auth.max_frame_bytes;
    loop {
        let frame = match timeout(auth.idle_timeout, wire::read_frame(&mut io, max)).await {
            Err(_) => return Ok(()), // idle: the client reconnects when it needs to
            Ok(read) => match read? {
                None => return Ok(()),
                Some(frame) => frame,
            },
        };
        let reply = match wire::decode_request(frame)? {
            Inbound::AppendEntries(rpc) => Reply::AppendEntries(raft.append_entries(rpc).await),
            Inbound::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
            Inbound::InstallSnapshot(rpc) => {
                tracing::debug!(node = %auth.node_id(), from = %node, offset = rpc.offset,
                    len = rpc.data.len(), done = rpc.done, "snapshot chunk received");
                Reply::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
        };
        let bytes = wire::encode_reply(&reply)?;
        wire::write_frame(&mut io, &bytes, &[], max).await?;
    }
}

/// The log line for a connection that ended with `err`.
fn log_closed(node: NodeId, peer: SocketAddr, err: &TransportError) {
    match err {
        TransportError::ClientRefused { claimed } => tracing::warn!(
            %node,
            %peer,
            claimed_node = %claimed,
            "refused raft peer: it did not prove the cluster secret"
        ),
        TransportError::Handshake(_) | TransportError::Tls(_) | TransportError::Timeout(_) => {
            tracing::warn!(%node, %peer, error = %err, "refused raft peer: handshake failed")
        }
        _ => tracing::info!(%node, %peer, error = %err, "raft connection closed"),
    }
}
