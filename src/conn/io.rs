//! Bytes in, packets out, and back. The read buffer only grows while a packet is partly
//! read and is released when the connection goes idle, so an idle connection holds no
//! buffers (see DESIGN: idle connection cost).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::{Codec, CodecError, Packet};

/// Initial read size; a packet larger than this grows the buffer to its size.
const READ_CHUNK: usize = 4096;

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
        if self.read.is_empty() && self.read.capacity() > READ_CHUNK * 4 {
            // Give back a buffer a large packet grew.
            self.read = BytesMut::new();
        }
        Ok(packet)
    }

    /// Read more bytes. Cancel-safe (`read_buf` either reads or not), so it can sit in a
    /// `select!`.
    pub async fn fill(&mut self) -> Result<(), ReadError> {
        if self.read.capacity() - self.read.len() < 512 {
            self.read.reserve(READ_CHUNK);
        }
        match self.stream.read_buf(&mut self.read).await {
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
        self.write.clear();
        if self.write.capacity() > READ_CHUNK * 16 {
            self.write = BytesMut::new();
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
