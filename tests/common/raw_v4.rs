//! Hand-written MQTT 3.1.1 packets on a plain TCP socket, for what a client library will not
//! do: an empty client id, another protocol level, a client that goes silent, or a socket we
//! want to watch for the broker closing it.

#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
pub const PINGRESP: [u8; 2] = [0xD0, 0x00];

/// The CONNACK a 3.1.1 broker sends: `20 02 <session present> <return code>`.
pub fn connack(session_present: bool, code: u8) -> [u8; 4] {
    [0x20, 0x02, u8::from(session_present), code]
}

pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
}

/// A CONNECT packet; `Connect::new(id).bytes()` is a plain 3.1.1 clean-session CONNECT.
pub struct Connect<'a> {
    pub client_id: &'a str,
    pub clean_session: bool,
    pub keep_alive: u16,
    /// Protocol level: 4 is 3.1.1.
    pub level: u8,
    pub will: Option<Will<'a>>,
}

impl<'a> Connect<'a> {
    pub fn new(client_id: &'a str) -> Connect<'a> {
        Connect {
            client_id,
            clean_session: true,
            keep_alive: 60,
            level: 4,
            will: None,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        push_str(&mut body, b"MQTT");
        body.push(self.level);
        let mut flags = 0u8;
        if self.clean_session {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        body.push(flags);
        body.extend_from_slice(&self.keep_alive.to_be_bytes());
        push_str(&mut body, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            push_str(&mut body, w.topic.as_bytes());
            push_str(&mut body, w.payload);
        }
        packet(0x10, &body)
    }
}

/// SUBSCRIBE with one filter.
pub fn subscribe(packet_id: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    push_str(&mut body, filter.as_bytes());
    body.push(qos);
    packet(0x82, &body)
}

/// The SUBACK for a one-filter SUBSCRIBE.
pub fn suback(packet_id: u16, code: u8) -> Vec<u8> {
    let id = packet_id.to_be_bytes();
    vec![0x90, 0x03, id[0], id[1], code]
}

/// A fixed header (`first` byte, remaining length) followed by `body`.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).expect("string fits in 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
}

pub async fn dial(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the broker");
    s.set_nodelay(true).expect("nodelay");
    s
}

pub async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write to the broker");
}

/// Exactly `n` bytes, or panic if the socket closes or `within` passes first.
pub async fn read_exact(stream: &mut TcpStream, n: usize, within: Duration) -> Vec<u8> {
    let mut buf = vec![0; n];
    match tokio::time::timeout(within, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => buf,
        Ok(Err(e)) => panic!("socket ended before {n} bytes arrived: {e}"),
        Err(_) => panic!("{n} bytes did not arrive within {within:?}"),
    }
}

/// Reads until the broker closes the socket (EOF or reset) and returns whatever came before;
/// panics if it is still open after `within`.
pub async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {
                panic!("the broker did not close the socket within {within:?} (read {got:02x?})")
            }
        }
    }
}
