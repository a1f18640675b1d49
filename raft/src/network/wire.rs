//! Frames and messages: bytes -> frames (`read_frame`, `write_frame`), frames -> requests and
//! replies (`Request`, `Reply`). A frame is a u32 big-endian length and that many bytes.

use std::io::ErrorKind;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{SnapshotMeta, Vote};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::TransportError;
use crate::ids::NodeId;
use crate::types::{Member, TypeConfig};

/// Never more than this is allocated ahead of the bytes actually arriving: a length prefix
/// alone does not get a 64 MiB buffer.
const READ_CHUNK: usize = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// The chunk's bytes follow the encoded header, unencoded, up to the end of the frame.
    InstallSnapshot(ChunkHeader),
}

/// An `InstallSnapshotRequest` without its data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChunkHeader {
    pub vote: Vote<NodeId>,
    pub meta: SnapshotMeta<NodeId, Member>,
    pub offset: u64,
    pub done: bool,
}

/// Raft's answer, or the error it returned: the client turns an `Err` into openraft's
/// `RemoteError`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The encoded request; for a snapshot chunk, the data to send after it in the same frame.
pub(crate) fn encode_request(req: Outbound) -> Result<(Vec<u8>, Vec<u8>), TransportError> {
    let (msg, tail) = match req {
        Outbound::AppendEntries(r) => (Request::AppendEntries(r), Vec::new()),
        Outbound::Vote(r) => (Request::Vote(r), Vec::new()),
        Outbound::InstallSnapshot(r) => {
            let InstallSnapshotRequest {
                vote,
                meta,
                offset,
                data,
                done,
            } = r;
            let header = ChunkHeader {
                vote,
                meta,
                offset,
                done,
            };
            (Request::InstallSnapshot(header), data)
        }
    };
    let head = encode(&msg, "request")?;
    Ok((head, tail))
}

/// A request as the client has it, before encoding.
pub(crate) enum Outbound {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// A request as the server hands it to Raft.
pub(crate) enum Inbound {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

pub(crate) fn decode_request(mut frame: Vec<u8>) -> Result<Inbound, TransportError> {
    let (msg, used) = decode::<Request>(&frame, "request")?;
    Ok(match msg {
        Request::AppendEntries(r) => {
            no_trailing(used, frame.len(), "request")?;
            Inbound::AppendEntries(r)
        }
        Request::Vote(r) => {
            no_trailing(used, frame.len(), "request")?;
            Inbound::Vote(r)
        }
        Request::InstallSnapshot(h) => {
            // In place: the chunk moves to the front of the buffer it arrived in.
            frame.drain(..used);
            Inbound::InstallSnapshot(InstallSnapshotRequest {
                vote: h.vote,
                meta: h.meta,
                offset: h.offset,
                data: frame,
                done: h.done,
            })
        }
    })
}

pub(crate) fn encode_reply(reply: &Reply) -> Result<Vec<u8>, TransportError> {
    encode(reply, "reply")
}

pub(crate) fn decode_reply(frame: &[u8]) -> Result<Reply, TransportError> {
    let (reply, used) = decode::<Reply>(frame, "reply")?;
    no_trailing(used, frame.len(), "reply")?;
    Ok(reply)
}

fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, TransportError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| TransportError::Encode {
        what,
        detail: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<(T, usize), TransportError> {
    bincode::serde::decode_from_slice(bytes, config()).map_err(|e| TransportError::Decode {
        what,
        detail: e.to_string(),
    })
}

/// Bytes after a complete message mean the peer and we disagree about the format.
fn no_trailing(used: usize, len: usize, what: &'static str) -> Result<(), TransportError> {
    if used == len {
        Ok(())
    } else {
        Err(TransportError::Decode {
            what,
            detail: format!("{} trailing bytes", len - used),
        })
    }
}

/// The whole frame length of `head` and `tail`, if it is within `max`.
pub(crate) fn frame_len(head: &[u8], tail: &[u8], max: u32) -> Result<u32, TransportError> {
    let len = head.len() as u64 + tail.len() as u64;
    match u32::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(TransportError::FrameTooLarge { len, max }),
    }
}

/// One frame holding `head` then `tail`. `tail` is written from where it is, not copied.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    head: &[u8],
    tail: &[u8],
    max: u32,
) -> Result<(), TransportError> {
    let len = frame_len(head, tail, max)?;
    let mut first = Vec::with_capacity(4 + head.len());
    first.extend_from_slice(&len.to_be_bytes());
    first.extend_from_slice(head);
    w.write_all(&first).await?;
    if !tail.is_empty() {
        w.write_all(tail).await?;
    }
    // TLS buffers records: without a flush the request may sit in the writer.
    w.flush().await?;
    Ok(())
}

/// The next frame, or `None` when the peer closed the connection between frames.
/// The length is checked against `max` before any buffer is allocated, and the buffer grows
/// with the bytes that actually arrive.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: u32,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(prefix);
    if len > max {
        return Err(TransportError::FrameTooLarge {
            len: u64::from(len),
            max,
        });
    }
    let len = len as usize;
    let mut buf = Vec::with_capacity(len.min(READ_CHUNK));
    let got = r.take(len as u64).read_to_end(&mut buf).await?;
    if got != len {
        return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "frame cut short").into());
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, SnapshotMeta, StoredMembership};

    #[tokio::test]
    async fn frames_round_trip_and_reject_oversize() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            write_frame(&mut a, b"head", b"tail", 100).await.unwrap();
            write_frame(&mut a, b"", b"", 100).await.unwrap();
            a.write_all(&1000u32.to_be_bytes()).await.unwrap();
        });
        assert_eq!(read_frame(&mut b, 100).await.unwrap().unwrap(), b"headtail");
        assert_eq!(read_frame(&mut b, 100).await.unwrap().unwrap(), b"");
        assert!(matches!(
            read_frame(&mut b, 100).await,
            Err(TransportError::FrameTooLarge { len: 1000, .. })
        ));
        writer.await.unwrap();
        assert!(matches!(
            frame_len(&[0; 60], &[0; 41], 100),
            Err(TransportError::FrameTooLarge { len: 101, .. })
        ));
    }

    #[tokio::test]
    async fn eof_between_frames_is_none_and_mid_frame_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 100).await,
            Err(TransportError::Io(_))
        ));
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        assert!(read_frame(&mut b, 100).await.unwrap().is_none());
    }

    #[test]
    fn snapshot_chunk_data_travels_raw_after_the_header() {
        let leader = CommittedLeaderId::new(3, NodeId(1));
        let req = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(3, NodeId(1)),
            meta: SnapshotMeta {
                last_log_id: Some(LogId::new(leader, 7)),
                last_membership: StoredMembership::default(),
                snapshot_id: "s-7".into(),
            },
            offset: 42,
            data: vec![7u8; 5000],
            done: true,
        };
        let (head, tail) = encode_request(Outbound::InstallSnapshot(req)).unwrap();
        assert!(head.len() < 200);
        assert_eq!(tail, vec![7u8; 5000]);
        let mut frame = head;
        frame.extend_from_slice(&tail);
        let Inbound::InstallSnapshot(back) = decode_request(frame).unwrap() else {
            panic!("wrong variant");
        };
        assert_eq!((back.offset, back.done, back.data.len()), (42, true, 5000));
        assert_eq!(back.meta.snapshot_id, "s-7");
    }

    #[test]
    fn garbage_and_trailing_bytes_are_decode_errors() {
        assert!(matches!(
            decode_request(vec![0xff; 16]),
            Err(TransportError::Decode { .. })
        ));
        let (mut head, _) = encode_request(Outbound::Vote(VoteRequest::new(
            Vote::new(1, NodeId(2)),
            None,
        )))
        .unwrap();
        head.push(0);
        assert!(matches!(
            decode_request(head),
            Err(TransportError::Decode { .. })
        ));
        let reply = Reply::Vote(Ok(VoteResponse::new(Vote::new(1, NodeId(2)), None, true)));
        let bytes = encode_reply(&reply).unwrap();
        assert!(matches!(decode_reply(&bytes), Ok(Reply::Vote(Ok(r))) if r.vote_granted));
    }
}
