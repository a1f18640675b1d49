//! The MQTT codec: bytes <-> `Packet` for one connection, server side. It learns the
//! protocol from the CONNECT and enforces the packet rules that need no session: CONNECT
//! first and once, the size limit, well-formed packets, valid topics and filters.
//!
//! # Layout
//! - `packet`: our packet model (a superset of 3.1.1 and 5.0); nothing above sees mqttbytes.
//! - `reason`: 5.0 reason codes.
//! - `frame`: fixed header: packet type and flags, Remaining Length, size limit.
//! - `wire`: integers, Variable Byte Integers, strings and binary data for our own parsing.
//! - `props`: 5.0 properties.
//! - `connect`: CONNECT for both versions.
//! - `v4`: 3.1.1 through mqttbytes::v4, with the checks it lacks.
//! - `v5`: 5.0, our own (mqttbytes::v5 is not usable: see there).
//! - `validate`: topic names, filters and the UTF-8 rules; public for the broker.

mod connect;
mod frame;
pub mod packet;
mod props;
pub mod reason;
mod v4;
mod v5;
mod validate;
mod wire;

#[cfg(test)]
mod tests;

use bytes::BytesMut;
use thiserror::Error;

use frame::Kind;
pub use packet::*;
pub use validate::{valid_topic_filter, valid_topic_name};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge { size: usize, max: u32 },
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocol(u8),
    #[error("invalid topic name: {0}")]
    TopicName(String),
    #[error("invalid topic filter: {0}")]
    TopicFilter(String),
}

impl CodecError {
    /// The 5.0 reason code to close the connection with.
    pub fn reason_code(&self) -> u8 {
        match self {
            CodecError::PacketTooLarge { .. } => reason::PACKET_TOO_LARGE,
            CodecError::Malformed(_) => reason::MALFORMED_PACKET,
            CodecError::Protocol(_) => reason::PROTOCOL_ERROR,
            CodecError::UnsupportedProtocol(_) => reason::UNSUPPORTED_PROTOCOL_VERSION,
            CodecError::TopicName(_) => reason::TOPIC_NAME_INVALID,
            CodecError::TopicFilter(_) => reason::TOPIC_FILTER_INVALID,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    Connected(Protocol),
}

/// One connection's codec.
#[derive(Debug)]
pub struct Codec {
    state: State,
    /// The protocol packets are encoded in: set from the CONNECT's level as soon as it is
    /// read, even when that CONNECT is then refused, so the refusal can be answered in the
    /// client's version.
    protocol: Option<Protocol>,
    max_incoming: u32,
}

impl Codec {
    /// `max_incoming`: the largest packet accepted (total bytes, fixed header included).
    pub fn new(max_incoming: u32) -> Codec {
        Codec {
            state: State::AwaitingConnect,
            protocol: None,
            max_incoming,
        }
    }

    /// The protocol this connection speaks: from the CONNECT's level (V4 below 5, V5 from 5
    /// up, also for a CONNECT that was refused); `None` before a CONNECT was read.
    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// Skips the CONNECT: decodes and encodes as `protocol` from now on, and refuses a
    /// CONNECT. For tests and tools that start mid-connection.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = Some(protocol);
        self.state = State::Connected(protocol);
    }

    /// `Ok(None)`: need more bytes (nothing consumed). `Err`: these bytes are wrong; close.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        let Some(&byte1) = buf.first() else {
            return Ok(None);
        };
        // The first byte alone decides whether this packet may come now, so a client that
        // opens with anything but CONNECT is refused before its length is read.
        let kind = frame::kind(byte1)?;
        let protocol = self.admit(kind)?;
        let Some(header) = frame::read_header(buf)? else {
            return Ok(None);
        };
        let size = header.frame_len();
        if size > self.max_incoming as usize {
            return Err(CodecError::PacketTooLarge {
                size,
                max: self.max_incoming,
            });
        }
        if buf.len() < size {
            // Grow with what has arrived, never beyond the announced size: a large payload
            // costs amortised linear copying instead of one reallocation per read, and a
            // peer that only announces a large packet gets no more than it sent.
            buf.reserve((size - buf.len()).min(buf.len()));
            return Ok(None);
        }
        // The frame is cut from the buffer without copying; a PUBLISH payload is a slice
        // of it.
        let frame = buf.split_to(size).freeze();
        let packet = match protocol {
            None => {
                let mut level = None;
                let connect = connect::decode(frame.slice(header.header_len..), &mut level);
                if let Some(level) = level {
                    self.protocol = Some(if level < 5 {
                        Protocol::V4
                    } else {
                        Protocol::V5
                    });
                }
                let connect = connect?;
                if let Some(p) = connect.protocol {
                    self.state = State::Connected(p);
                }
                Packet::Connect(Box::new(connect))
            }
            Some(Protocol::V4) => v4::decode(&header, frame)?,
            Some(Protocol::V5) => v5::decode(&header, frame.slice(header.header_len..))?,
        };
        Ok(Some(packet))
    }

    /// Whether a packet of this type may come now; `None` for the awaited CONNECT,
    /// otherwise the protocol to read it with.
    fn admit(&self, kind: Kind) -> Result<Option<Protocol>, CodecError> {
        let protocol = match (self.state, kind) {
            (State::AwaitingConnect, Kind::Connect) => return Ok(None),
            (State::AwaitingConnect, _) => {
                return Err(CodecError::Protocol(format!(
                    "first packet must be CONNECT, not {kind:?}"
                )))
            }
            (State::Connected(_), Kind::Connect) => {
                return Err(CodecError::Protocol("second CONNECT".into()))
            }
            (State::Connected(p), _) => p,
        };
        match kind {
            Kind::ConnAck | Kind::SubAck | Kind::UnsubAck | Kind::PingResp => Err(
                CodecError::Protocol(format!("{kind:?} is sent by servers only")),
            ),
            // Enhanced authentication is not offered: a client cannot have been asked to
            // continue one, so any AUTH is out of place.
            Kind::Auth if protocol == Protocol::V5 => {
                Err(CodecError::Protocol("AUTH not supported".into()))
            }
            Kind::Auth => Err(CodecError::Malformed("reserved packet type 15".into())),
            _ => Ok(Some(protocol)),
        }
    }

    /// Encode for this connection's protocol (V5 before a CONNECT was read). On error
    /// nothing is written.
    pub fn encode(&self, packet: &Packet, out: &mut BytesMut) -> Result<(), CodecError> {
        let start = out.len();
        let written = match self.protocol.unwrap_or(Protocol::V5) {
            Protocol::V4 => v4::encode(packet, out),
            Protocol::V5 => v5::encode(packet, out),
        };
        if written.is_err() {
            // mqttbytes writes the fixed header before it finds a problem: never leave
            // half a packet in the output.
            out.truncate(start);
        }
        written
    }
}
