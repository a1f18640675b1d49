//! The cluster's credentials and the handshake that checks them, both sides.
//!
//! Server: `"RMQ1"` + nonce_s (32 random bytes).
//! Client: node id (u64 BE) + nonce_c (32) + HMAC-SHA256(secret, nonce_s || "client" || id).
//! Server: its node id (u64 BE) + HMAC-SHA256(secret, nonce_c || "server" || its id).
//! Fresh nonces on both sides make a recorded handshake useless for a replay; the "client" and
//! "server" labels stop a proof from one direction being reflected back in the other. Without
//! TLS this authenticates the peers but does not protect the bytes after it (integrity and
//! secrecy on an untrusted network are what the optional mutual TLS is for).

use std::pin::Pin;
use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::{peer_name, Tls};
use super::{NetworkConfig, TransportError};
use crate::ids::NodeId;

const MAGIC: [u8; 4] = *b"RMQ1";
const NONCE_LEN: usize = 32;
const TAG_LEN: usize = 32;
const ID_LEN: usize = 8;

/// A connection after TLS (if any), plain TCP or TLS alike.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Io for T {}
pub(crate) type BoxIo = Pin<Box<dyn Io>>;

/// What a node needs to let peers in and to prove itself to them: its id, the key derived
/// from the cluster secret, the TLS configuration, and the limits the server applies to
/// each connection. Shared by the client (`Network`) and the server (`serve`).
pub struct ClusterAuth {
    node_id: NodeId,
    key: hmac::Key,
    rng: SystemRandom,
    tls: Option<Tls>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_frame_bytes: u32,
}

impl ClusterAuth {
    /// Reads the TLS files, if configured. Fails on an empty secret or unreadable TLS files.
    pub fn new(config: &NetworkConfig) -> Result<ClusterAuth, TransportError> {
        if config.secret.is_empty() {
            return Err(TransportError::Config("the cluster secret is empty".into()));
        }
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        Ok(ClusterAuth {
            node_id: config.node_id,
            key: hmac::Key::new(hmac::HMAC_SHA256, config.secret.as_bytes()),
            rng: SystemRandom::new(),
            tls,
            handshake_timeout: config.handshake_timeout,
            idle_timeout: config.idle_timeout,
            max_frame_bytes: config.max_frame_bytes,
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Whether connections run over mutual TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// TLS (if configured), then the handshake. Returns the node id the client proved.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> Result<(BoxIo, NodeId), TransportError> {
        let mut io: BoxIo = match &self.tls {
            None => Box::pin(tcp),
            Some(tls) => Box::pin(
                tls.acceptor
                    .accept(tcp)
                    .await
                    .map_err(|e| TransportError::Tls(e.to_string()))?,
            ),
        };
        let peer = self.server_handshake(&mut io).await?;
        Ok((io, peer))
    }

    /// Connect, TLS (if configured), then the handshake, checking the node that answers is
    /// `target`.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        target: NodeId,
    ) -> Result<BoxIo, TransportError> {
        let tcp = TcpStream::connect(addr).await?;
        // One small request waits for one small reply: Nagle would hold the second write of a
        // frame (a snapshot chunk's data) until the first is acknowledged.
        tcp.set_nodelay(true)?;
        let mut io: BoxIo = match &self.tls {
            None => Box::pin(tcp),
            Some(tls) => {
                let name: ServerName<'static> = match &tls.server_name {
                    Some(name) => name.clone(),
                    None => peer_name(addr)?,
                };
                Box::pin(
                    tls.connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| TransportError::Tls(e.to_string()))?,
                )
            }
        };
        self.client_handshake(&mut io, target).await?;
        Ok(io)
    }

    async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut S,
    ) -> Result<NodeId, TransportError> {
        let nonce_s = self.nonce()?;
        let mut hello = [0u8; 4 + NONCE_LEN];
        hello[..4].copy_from_slice(&MAGIC);
        hello[4..].copy_from_slice(&nonce_s);
        io.write_all(&hello).await?;
        io.flush().await?;

        let mut proof = [0u8; ID_LEN + NONCE_LEN + TAG_LEN];
        io.read_exact(&mut proof)
            .await
            .map_err(|_| TransportError::Handshake("client closed before its proof"))?;
        let (id, rest) = proof.split_at(ID_LEN);
        let (nonce_c, tag) = rest.split_at(NONCE_LEN);
        let claimed = node_id(id);
        hmac::verify(&self.key, &signed(&nonce_s, b"client", claimed), tag)
            .map_err(|_| TransportError::ClientRefused { claimed })?;

        let mut answer = [0u8; ID_LEN + TAG_LEN];
        answer[..ID_LEN].copy_from_slice(&self.node_id.0.to_be_bytes());
        let tag = hmac::sign(&self.key, &signed(nonce_c, b"server", self.node_id));
        answer[ID_LEN..].copy_from_slice(tag.as_ref());
        io.write_all(&answer).await?;
        io.flush().await?;
        Ok(claimed)
    }

    async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        target: NodeId,
    ) -> Result<(), TransportError> {
        let mut hello = [0u8; 4 + NONCE_LEN];
        io.read_exact(&mut hello)
            .await
            .map_err(|_| TransportError::Handshake("server closed before its greeting"))?;
        if hello[..4] != MAGIC {
            return Err(TransportError::Handshake("not a raftmq raft port"));
        }
        let nonce_s = &hello[4..];
        let nonce_c = self.nonce()?;
        let mut proof = [0u8; ID_LEN + NONCE_LEN + TAG_LEN];
        proof[..ID_LEN].copy_from_slice(&self.node_id.0.to_be_bytes());
        proof[ID_LEN..ID_LEN + NONCE_LEN].copy_from_slice(&nonce_c);
        let tag = hmac::sign(&self.key, &signed(nonce_s, b"client", self.node_id));
        proof[ID_LEN + NONCE_LEN..].copy_from_slice(tag.as_ref());
        io.write_all(&proof).await?;
        io.flush().await?;

        let mut answer = [0u8; ID_LEN + TAG_LEN];
        // A server that does not accept our proof closes here: most likely the two nodes
        // are configured with different secrets.
        io.read_exact(&mut answer).await.map_err(|_| {
            TransportError::Handshake("server closed after our proof (different cluster secret?)")
        })?;
        let (id, tag) = answer.split_at(ID_LEN);
        let found = node_id(id);
        hmac::verify(&self.key, &signed(&nonce_c, b"server", found), tag)
            .map_err(|_| TransportError::ServerRefused)?;
        if found != target {
            return Err(TransportError::WrongNode {
                expected: target,
                found,
            });
        }
        Ok(())
    }

    fn nonce(&self) -> Result<[u8; NONCE_LEN], TransportError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| TransportError::Random)?;
        Ok(nonce)
    }
}

/// The bytes a proof signs: the other side's nonce, who signs, and the signer's node id.
fn signed(nonce: &[u8], role: &[u8], id: NodeId) -> Vec<u8> {
    let mut msg = Vec::with_capacity(nonce.len() + role.len() + ID_LEN);
    msg.extend_from_slice(nonce);
    msg.extend_from_slice(role);
    msg.extend_from_slice(&id.0.to_be_bytes());
    msg
}

fn node_id(bytes: &[u8]) -> NodeId {
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&bytes[..ID_LEN]);
    NodeId(u64::from_be_bytes(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(id: u64, secret: &str) -> ClusterAuth {
        ClusterAuth::new(&NetworkConfig::new(NodeId(id), secret)).unwrap()
    }

    async fn run(
        server: ClusterAuth,
        client: ClusterAuth,
        target: u64,
    ) -> (Result<NodeId, TransportError>, Result<(), TransportError>) {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let s = tokio::spawn(async move {
            let r = server.server_handshake(&mut a).await;
            drop(a); // a refusing server closes
            r
        });
        let c = client.client_handshake(&mut b, NodeId(target)).await;
        (s.await.unwrap(), c)
    }

    #[tokio::test]
    async fn same_secret_passes_both_ways() {
        let (s, c) = run(auth(1, "k"), auth(2, "k"), 1).await;
        assert_eq!(s.unwrap(), NodeId(2));
        c.unwrap();
    }

    #[tokio::test]
    async fn different_secret_is_refused_by_the_server() {
        let (s, c) = run(auth(1, "k"), auth(2, "other"), 1).await;
        assert!(matches!(
            s,
            Err(TransportError::ClientRefused { claimed: NodeId(2) })
        ));
        assert!(matches!(c, Err(TransportError::Handshake(_))));
    }

    #[tokio::test]
    async fn a_different_node_at_the_address_is_not_accepted() {
        let (s, c) = run(auth(3, "k"), auth(2, "k"), 1).await;
        s.unwrap();
        assert!(matches!(
            c,
            Err(TransportError::WrongNode {
                expected: NodeId(1),
                found: NodeId(3)
            })
        ));
    }

    #[test]
    fn empty_secret_is_a_config_error() {
        assert!(matches!(
            ClusterAuth::new(&NetworkConfig::new(NodeId(1), "")),
            Err(TransportError::Config(_))
        ));
    }
}
