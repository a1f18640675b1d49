//! Hand-made MQTT bytes of both versions on a plain TCP socket, for the hostile-input tests:
//! a byte builder (nothing here uses the broker's codec, so a codec bug cannot hide behind
//! a matching encoder bug), and a connection that reads whole frames and watches for the
//! broker closing it.

#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// How long the broker may take to react to bad input (it reacts at once; the margin is
/// for a loaded machine). Brokers in these tests get a longer connect timeout and raw
/// clients a keep alive of 0, so no timer of the broker's can close a socket within it.
pub const WITHIN: Duration = Duration::from_secs(10);

/// 5.0 reason codes the tests expect.
pub mod rc {
    pub const SUCCESS: u8 = 0x00;
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    pub const MALFORMED: u8 = 0x81;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
}

/// Packet types (the high nibble of the first byte).
pub mod kind {
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBCOMP: u8 = 7;
    pub const SUBACK: u8 = 9;
    pub const UNSUBACK: u8 = 11;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
}

/// A packet body built field by field.
#[derive(Clone, Debug, Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    pub fn new() -> Body {
        Body(Vec::new())
    }

    pub fn u8(mut self, v: u8) -> Body {
        self.0.push(v);
        self
    }

    pub fn u16(mut self, v: u16) -> Body {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Body {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn varint(mut self, v: usize) -> Body {
        self.0.extend_from_slice(&varint(v));
        self
    }

    /// Bytes as they are, no length prefix.
    pub fn raw(mut self, bytes: &[u8]) -> Body {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A length-prefixed string or binary field. Takes bytes so that invalid UTF-8 can be
    /// written.
    pub fn bin(mut self, bytes: &[u8]) -> Body {
        let len = u16::try_from(bytes.len()).expect("field fits in 64 KiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn str(self, s: &str) -> Body {
        self.bin(s.as_bytes())
    }

    /// A 5.0 property section: its length, then the properties.
    pub fn props(self, props: Body) -> Body {
        let len = props.0.len();
        self.varint(len).raw(&props.0)
    }

    /// An empty 5.0 property section.
    pub fn no_props(self) -> Body {
        self.u8(0)
    }

    /// The whole packet: `first` byte, Remaining Length, this body.
    pub fn packet(self, first: u8) -> Vec<u8> {
        packet(first, &self.0)
    }
}

/// A Variable Byte Integer.
pub fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

/// A fixed header (`first` byte, Remaining Length) followed by `body`.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend_from_slice(&varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// CONNECT flags.
pub const CLEAN: u8 = 0x02;
pub const WILL: u8 = 0x04;

/// The variable header up to and including the keep alive (0: the broker sets no
/// keepalive timer on our raw connections).
fn connect_header(level: u8, flags: u8) -> Body {
    Body::new().str("MQTT").u8(level).u8(flags).u16(0)
}

/// A plain 3.1.1 clean-session CONNECT.
pub fn connect_v4(client_id: &str) -> Vec<u8> {
    connect_header(4, CLEAN).str(client_id).packet(0x10)
}

/// A plain 5.0 clean-start CONNECT without properties.
pub fn connect_v5(client_id: &str) -> Vec<u8> {
    connect_header(5, CLEAN)
        .no_props()
        .str(client_id)
        .packet(0x10)
}

/// A 5.0 CONNECT with a QoS 0 will on `topic`.
pub fn connect_v5_will(client_id: &str, topic: &str, payload: &[u8]) -> Vec<u8> {
    connect_header(5, CLEAN | WILL)
        .no_props()
        .str(client_id)
        .no_props()
        .str(topic)
        .bin(payload)
        .packet(0x10)
}

/// A 3.1.1 CONNECT with a QoS 0 will on `topic`.
pub fn connect_v4_will(client_id: &str, topic: &str, payload: &[u8]) -> Vec<u8> {
    connect_header(4, CLEAN | WILL)
        .str(client_id)
        .str(topic)
        .bin(payload)
        .packet(0x10)
}

/// A CONNECT with any protocol name, level and flags, and `rest` after the keep alive.
pub fn connect_raw(name: &str, level: u8, flags: u8, rest: Body) -> Vec<u8> {
    Body::new()
        .str(name)
        .u8(level)
        .u8(flags)
        .u16(0)
        .raw(&rest.0)
        .packet(0x10)
}

/// A 3.1.1 PUBLISH; `packet_id` is written for QoS 1 and 2 only.
pub fn publish_v4(qos: u8, packet_id: u16, topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = Body::new().bin(topic);
    if qos > 0 {
        b = b.u16(packet_id);
    }
    b.raw(payload).packet(0x30 | qos << 1)
}

/// A 5.0 PUBLISH with the given properties; `packet_id` is written for QoS 1 and 2 only.
pub fn publish_v5(qos: u8, packet_id: u16, topic: &[u8], props: Body, payload: &[u8]) -> Vec<u8> {
    let mut b = Body::new().bin(topic);
    if qos > 0 {
        b = b.u16(packet_id);
    }
    b.props(props).raw(payload).packet(0x30 | qos << 1)
}

/// A 5.0 SUBSCRIBE without properties: (filter bytes, subscription options) pairs.
pub fn subscribe_v5(packet_id: u16, filters: &[(&[u8], u8)]) -> Vec<u8> {
    let mut b = Body::new().u16(packet_id).no_props();
    for (f, o) in filters {
        b = b.bin(f).u8(*o);
    }
    b.packet(0x82)
}

/// A 3.1.1 SUBSCRIBE: (filter bytes, requested QoS byte) pairs.
pub fn subscribe_v4(packet_id: u16, filters: &[(&[u8], u8)]) -> Vec<u8> {
    let mut b = Body::new().u16(packet_id);
    for (f, q) in filters {
        b = b.bin(f).u8(*q);
    }
    b.packet(0x82)
}

/// A packet the broker sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub byte1: u8,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn kind(&self) -> u8 {
        self.byte1 >> 4
    }

    /// The reason code of a 5.0 DISCONNECT (0 for the short form), after checking the
    /// packet is well formed; `None` for any other packet.
    pub fn disconnect_reason(&self) -> Option<u8> {
        if self.byte1 != 0xE0 {
            return None;
        }
        let Some((&code, rest)) = self.body.split_first() else {
            return Some(rc::SUCCESS);
        };
        assert_props_section(rest, "DISCONNECT");
        Some(code)
    }

    /// (session present, return code or reason code) of a CONNACK, either version, after
    /// checking it is well formed; `None` for any other packet.
    pub fn connack(&self) -> Option<(bool, u8)> {
        if self.byte1 != 0x20 {
            return None;
        }
        assert!(self.body.len() >= 2, "CONNACK too short: {self:02x?}");
        assert!(self.body[0] <= 1, "CONNACK flags: {self:02x?}");
        if self.body.len() > 2 {
            assert_props_section(&self.body[2..], "CONNACK");
        }
        Some((self.body[0] == 1, self.body[1]))
    }

    /// The 5.0 CONNACK properties (identifier, value bytes) of a CONNACK.
    pub fn connack_props(&self) -> Vec<(u8, Vec<u8>)> {
        assert!(self.connack().is_some(), "not a CONNACK: {self:02x?}");
        let (len, n) = read_varint(&self.body[2..]).expect("property length");
        let mut props = &self.body[2 + n..2 + n + len];
        let mut out = Vec::new();
        while let Some((&id, rest)) = props.split_first() {
            let size = match id {
                // Byte properties.
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
                // Two Byte Integers.
                0x13 | 0x21 | 0x22 | 0x23 => 2,
                // Four Byte Integers.
                0x02 | 0x11 | 0x18 | 0x27 => 4,
                // Strings and binary data.
                0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                    2 + usize::from(u16::from_be_bytes([rest[0], rest[1]]))
                }
                // User property: two strings.
                0x26 => {
                    let k = 2 + usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    k + 2 + usize::from(u16::from_be_bytes([rest[k], rest[k + 1]]))
                }
                other => panic!("unexpected CONNACK property {other:#04x}: {self:02x?}"),
            };
            out.push((id, rest[..size].to_vec()));
            props = &rest[size..];
        }
        out
    }
}

/// A property section (length, then exactly that many bytes) and nothing after it.
fn assert_props_section(bytes: &[u8], what: &str) {
    let (len, n) = read_varint(bytes).unwrap_or_else(|| panic!("{what}: bad property length"));
    assert_eq!(
        n + len,
        bytes.len(),
        "{what}: property length does not match the packet ({bytes:02x?})"
    );
}

/// (value, bytes used) of a Variable Byte Integer at the start of `bytes`.
fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// What a read saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Frame(Frame),
    /// EOF or reset.
    Closed,
    Timeout,
}

/// A raw client connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Raw {
    pub async fn dial(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the broker");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Dial, send a 5.0 CONNECT and check the CONNACK accepts it.
    pub async fn connect_v5(port: u16, client_id: &str) -> (Raw, Frame) {
        Raw::connect_with(port, &connect_v5(client_id)).await
    }

    /// Dial, send a 3.1.1 CONNECT and check the CONNACK accepts it.
    pub async fn connect_v4(port: u16, client_id: &str) -> Raw {
        let (raw, ack) = Raw::connect_with(port, &connect_v4(client_id)).await;
        assert_eq!(ack.body, [0, 0], "3.1.1 CONNACK");
        raw
    }

    /// Dial, send `connect` and check the CONNACK accepts it.
    pub async fn connect_with(port: u16, connect: &[u8]) -> (Raw, Frame) {
        let mut raw = Raw::dial(port).await;
        raw.send(connect).await;
        let ack = raw.frame(WITHIN).await;
        assert_eq!(
            ack.connack(),
            Some((false, 0)),
            "CONNACK accepting the connection"
        );
        (raw, ack)
    }

    /// Write everything; panics if the socket fails (use `send_lossy` where the broker may
    /// close before it has read it all).
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("write to the broker");
    }

    /// Write what the broker will take: it may close (and reset) before reading it all.
    pub async fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Write everything; false if the socket is closed or reset.
    pub async fn send_ok(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Close our sending side: the broker reads EOF.
    pub async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The next complete packet, EOF/reset, or nothing within `within`.
    pub async fn next(&mut self, within: Duration) -> Next {
        let deadline = Instant::now() + within;
        loop {
            if let Some(f) = self.take_frame() {
                return Next::Frame(f);
            }
            if self.closed {
                return Next::Closed;
            }
            let mut chunk = [0u8; 4096];
            match timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Next::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next packet; panics on close or after `within`.
    pub async fn frame(&mut self, within: Duration) -> Frame {
        match self.next(within).await {
            Next::Frame(f) => f,
            other => panic!("expected a packet within {within:?}, got {other:?}"),
        }
    }

    /// Every packet until the broker closes the socket; panics if it is still open after
    /// `within` or if it ends in the middle of a packet.
    pub async fn until_closed(&mut self, within: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            match self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Next::Frame(f) => frames.push(f),
                Next::Closed => break,
                Next::Timeout => panic!(
                    "the broker did not close the socket within {within:?} (received {frames:02x?})"
                ),
            }
        }
        assert!(
            self.buf.is_empty(),
            "the broker closed in the middle of a packet: {frames:02x?} then {:02x?}",
            self.buf
        );
        frames
    }

    /// Asserts the broker sends nothing more and closes within `within`.
    pub async fn expect_silent_close(&mut self, within: Duration, case: &str) {
        let frames = self.until_closed(within).await;
        assert!(
            frames.is_empty(),
            "{case}: expected a close without any packet, got {frames:02x?}"
        );
    }

    /// Asserts the broker's last words are exactly one 5.0 DISCONNECT with `code`, then the
    /// close. Returns the packets that came before it.
    pub async fn expect_disconnect(
        &mut self,
        code: u8,
        within: Duration,
        case: &str,
    ) -> Vec<Frame> {
        let mut frames = self.until_closed(within).await;
        let last = frames.pop();
        let got = last.as_ref().and_then(Frame::disconnect_reason);
        assert_eq!(
            got,
            Some(code),
            "{case}: expected DISCONNECT {code:#04x} before the close, got {frames:02x?} then {last:02x?}"
        );
        assert!(
            frames.iter().all(|f| f.kind() != kind::DISCONNECT),
            "{case}: more than one DISCONNECT: {frames:02x?}"
        );
        frames
    }

    fn take_frame(&mut self) -> Option<Frame> {
        let (len, n) = read_varint(self.buf.get(1..)?)?;
        let end = 1 + n + len;
        if self.buf.len() < end {
            return None;
        }
        let frame = Frame {
            byte1: self.buf[0],
            body: self.buf[1 + n..end].to_vec(),
        };
        self.buf.drain(..end);
        Some(frame)
    }
}
