//! A minimal MQTT 3.1.1 client on mqttbytes, so the workload controls every packet id,
//! DUP flag and PUBREL itself: the history must say exactly what was sent and acknowledged,
//! which a client library that retries on its own would hide.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use mqttbytes::v4::{self, ConnAck, Connect, ConnectReturnCode, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use mqttbytes::QoS;

const MAX_PACKET: usize = 1024 * 1024;

pub struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

/// How a CONNECT ended when the broker answered.
pub struct Connected {
    pub conn: Conn,
    pub session_present: bool,
}

impl Conn {
    /// Connect and wait for CONNACK within `timeout`. A refusal is an error carrying the
    /// return code (`Refused`), so callers can tell "a node said no" from "nobody answered".
    pub async fn connect(
        addr: SocketAddr,
        client_id: &str,
        clean: bool,
        timeout: Duration,
    ) -> Result<Connected> {
        tokio::time::timeout(timeout, Self::connect_inner(addr, client_id, clean))
            .await
            .map_err(|_| anyhow!("no CONNACK from {addr} within {timeout:?}"))?
    }

    async fn connect_inner(addr: SocketAddr, client_id: &str, clean: bool) -> Result<Connected> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true).ok();
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(8 * 1024),
            wbuf: BytesMut::with_capacity(1024),
        };
        let mut connect = Connect::new(client_id);
        connect.keep_alive = 10;
        connect.clean_session = clean;
        connect
            .write(&mut conn.wbuf)
            .map_err(|e| anyhow!("{e:?}"))?;
        conn.flush().await?;
        match conn.recv().await? {
            Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Success,
                session_present,
            }) => Ok(Connected {
                conn,
                session_present,
            }),
            Packet::ConnAck(ConnAck { code, .. }) => Err(Refused(code as u8).into()),
            other => bail!("expected CONNACK, got {other:?}"),
        }
    }

    /// Queue a packet; `flush` sends everything queued.
    pub fn queue(&mut self, packet: Packet) -> Result<()> {
        let res = match &packet {
            Packet::Publish(p) => p.write(&mut self.wbuf),
            Packet::PubAck(p) => p.write(&mut self.wbuf),
            Packet::PubRec(p) => p.write(&mut self.wbuf),
            Packet::PubRel(p) => p.write(&mut self.wbuf),
            Packet::PubComp(p) => p.write(&mut self.wbuf),
            Packet::Subscribe(p) => p.write(&mut self.wbuf),
            Packet::PingReq => v4::PingReq.write(&mut self.wbuf),
            Packet::Disconnect => v4::Disconnect.write(&mut self.wbuf),
            other => bail!("the client never sends {other:?}"),
        };
        res.map(|_| ()).map_err(|e| anyhow!("encode: {e:?}"))
    }

    pub async fn send(&mut self, packet: Packet) -> Result<()> {
        self.queue(packet)?;
        self.flush().await
    }

    pub async fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// The next packet from the broker. Cancel-safe: bytes are only appended to the read
    /// buffer when a read completes, and a packet is only taken out whole.
    pub async fn recv(&mut self) -> Result<Packet> {
        loop {
            match v4::read(&mut self.rbuf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => bail!("malformed packet from broker: {e:?}"),
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                bail!("connection closed by broker");
            }
        }
    }

    /// Send DISCONNECT and close; errors do not matter any more.
    pub async fn close(mut self) {
        let _ = self.send(Packet::Disconnect).await;
        let _ = self.stream.shutdown().await;
    }
}

/// CONNACK with a non-zero return code.
#[derive(Debug)]
pub struct Refused(pub u8);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CONNACK return code {}", self.0)
    }
}

impl std::error::Error for Refused {}
