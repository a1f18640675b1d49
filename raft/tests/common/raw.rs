//! The wire protocol written out by hand from its description in `network/mod.rs`, so the
//! tests check the format, not just that the crate agrees with itself.

use openraft::error::RaftError;
use openraft::raft::{VoteRequest, VoteResponse};
use ring::hmac;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use raftmq_raft::NodeId;

use super::WAIT;

/// The test's own copy of the request enum: bincode encodes a variant by its index.
#[derive(Serialize)]
pub enum Request {
    AppendEntries(()),
    Vote(VoteRequest<NodeId>),
}

/// Boxed or not is the same on the wire.
#[derive(Deserialize, Debug)]
pub enum Reply {
    AppendEntries(()),
    Vote(Box<Result<VoteResponse<NodeId>, RaftError<NodeId>>>),
}

fn sign(secret: &str, nonce: &[u8], role: &[u8], id: u64) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = nonce.to_vec();
    msg.extend_from_slice(role);
    msg.extend_from_slice(&id.to_be_bytes());
    hmac::sign(&key, &msg)
}

/// Connects and reads the server's greeting: the magic and its nonce.
pub async fn greeting(addr: &str) -> (TcpStream, [u8; 32]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut hello = [0u8; 36];
    s.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello[..4], b"RMQ1");
    let mut nonce = [0u8; 32];
    nonce.copy_from_slice(&hello[4..]);
    (s, nonce)
}

/// A full, correct handshake as node `id`; checks the server's proof and id.
pub async fn authenticated(addr: &str, id: u64, secret: &str, server: u64) -> TcpStream {
    let (mut s, nonce_s) = greeting(addr).await;
    let nonce_c = [7u8; 32];
    let mut proof = id.to_be_bytes().to_vec();
    proof.extend_from_slice(&nonce_c);
    proof.extend_from_slice(sign(secret, &nonce_s, b"client", id).as_ref());
    s.write_all(&proof).await.unwrap();
    let mut answer = [0u8; 40];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[..8], server.to_be_bytes());
    assert_eq!(
        &answer[8..],
        sign(secret, &nonce_c, b"server", server).as_ref()
    );
    s
}

pub async fn send_frame(s: &mut TcpStream, payload: &[u8]) {
    s.write_all(&(payload.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(payload).await.unwrap();
}

pub async fn vote(s: &mut TcpStream, req: VoteRequest<NodeId>) -> VoteResponse<NodeId> {
    let bytes =
        bincode::serde::encode_to_vec(Request::Vote(req), bincode::config::standard()).unwrap();
    send_frame(s, &bytes).await;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut frame).await.unwrap();
    let (reply, used): (Reply, usize) =
        bincode::serde::decode_from_slice(&frame, bincode::config::standard()).unwrap();
    assert_eq!(used, frame.len());
    match reply {
        Reply::Vote(result) => result.expect("a vote response"),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Whether the server closed the connection (EOF or reset) within the test bound, reading
/// and discarding anything it still sends.
pub async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let read_to_end = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, read_to_end).await.is_ok()
}
