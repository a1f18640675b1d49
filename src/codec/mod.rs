//! The MQTT codec: bytes <-> `Packet`. PLACEHOLDER: the real decoder/encoder replace the
//! bodies below; the API is the contract the connection layer uses.

pub mod packet;
pub mod reason;

use bytes::BytesMut;
use thiserror::Error;

pub use packet::*;

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

/// One connection's codec. It learns the protocol from the CONNECT and enforces the
/// packet order rules that need no session (CONNECT first, exactly once).
#[derive(Debug)]
pub struct Codec {
    protocol: Option<Protocol>,
    max_incoming: u32,
}

impl Codec {
    /// `max_incoming`: the largest packet accepted (total bytes, fixed header included).
    pub fn new(max_incoming: u32) -> Codec {
        Codec {
            protocol: None,
            max_incoming,
        }
    }

    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// `Ok(None)`: need more bytes (nothing consumed). `Err`: these bytes are wrong; close.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        let _ = (buf, self.max_incoming);
        Ok(None)
    }

    /// Encode for this connection's protocol (V5 before a CONNECT was read).
    pub fn encode(&self, packet: &Packet, out: &mut BytesMut) -> Result<(), CodecError> {
        let _ = (packet, out);
        Ok(())
    }
}
