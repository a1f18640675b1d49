//! Bytes in, packets out, and back. An idle connection holds no buffers (see DESIGN: idle
//! connection cost): a read lands in a chunk on the stack of the poll that completes it and
//! is copied into the read buffer only when bytes arrived, the read buffer is freed once
//! every packet in it is decoded, and the write buffer is freed after each flush. Only a
//! partly read packet keeps memory while the connection waits.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::codec::{Codec, CodecError, Packet};

/// Bytes taken from the socket per read.
const READ_CHUNK: usize = 8192;

pub struct Io<S> {
    stream: S,
    read: BytesMut,
    write: BytesMut,
    pub codec: Codec,
}

pub enum ReadError {
    Closed,
    Io,
    Codec(CodecError),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub fn new(stream: S, codec: Codec) -> Io<S> {
        Io {
            stream,
            read: BytesMut::new(),
            write: BytesMut::new(),
            codec,
        }
    }

    /// A complete packet already buffered, if any.
    pub fn next_buffered(&mut self) -> Result<Option<Packet>, ReadError> {
        let packet = self
            .codec
            .decode(&mut self.read)
            .map_err(ReadError::Codec)?;
        if self.read.is_empty() && self.read.capacity() > 0 {
            // Nothing left to decode: the connection may now sit idle for hours.
            self.read = BytesMut::new();
        }
        Ok(packet)
    }

    /// Read more bytes. Cancel-safe (a poll either reads or not, and keeps nothing between
    /// polls), so it can sit in a `select!`. The chunk lives on the stack of one poll, not in
    /// the future, so a connection waiting here holds no buffer.
    pub async fn fill(&mut self) -> Result<(), ReadError> {
        let Io { stream, read, .. } = self;
        let got = std::future::poll_fn(|cx| {
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    read.extend_from_slice(buf.filled());
                    Poll::Ready(Ok(buf.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match got {
            Ok(0) => Err(ReadError::Closed),
            Ok(_) => Ok(()),
            Err(_) => Err(ReadError::Io),
        }
    }

    /// Read until one packet is complete.
    pub async fn read_packet(&mut self) -> Result<Packet, ReadError> {
        loop {
            if let Some(p) = self.next_buffered()? {
                return Ok(p);
            }
            self.fill().await?;
        }
    }

    /// Queue a packet for the next flush.
    pub fn queue(&mut self, packet: &Packet) -> Result<(), CodecError> {
        self.codec.encode(packet, &mut self.write)
    }

    pub fn has_queued(&self) -> bool {
        !self.write.is_empty()
    }

    /// Write everything queued, in one write where the socket allows.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.write.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.write).await?;
        self.stream.flush().await?;
        self.write = BytesMut::new();
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
