//! MQTT over WebSocket: the HTTP upgrade (path `/mqtt`, subprotocol `mqtt`) and an adapter
//! that makes the WebSocket a plain byte stream, so the connection task above it is the
//! same for TCP, TLS, WS and WSS.
//!
//! MQTT 5.0 section 6 (and 3.1.1 section 6): packets travel in binary frames; a frame may
//! hold part of a packet or several packets, so the adapter just concatenates frame
//! payloads. A text frame is a protocol violation and closes the connection.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The only path MQTT is served on (Mosquitto, EMQX and browser clients use it).
pub const PATH: &str = "/mqtt";

/// Subprotocols accepted, in order of preference: `mqtt` (3.1.1 and 5.0), and `mqttv3.1`,
/// which older clients offer and Mosquitto accepts.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Slack above the largest MQTT packet for one WebSocket message: a message may carry the
/// tail of one packet and the head of the next.
const MESSAGE_SLACK: usize = 64 * 1024;

/// Answer the HTTP upgrade on `stream`. Anything but a WebSocket upgrade of `/mqtt` (with
/// an MQTT subprotocol, if the client offers any) gets an HTTP error and the error back.
pub async fn accept<S>(stream: S, max_packet_size: u32) -> Result<WsStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max_message = usize::try_from(max_packet_size)
        .unwrap_or(usize::MAX)
        .saturating_add(MESSAGE_SLACK);
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, check_upgrade, Some(config))
        .await?;
    Ok(WsStream {
        ws,
        pending: Bytes::new(),
    })
}

// The signature is tungstenite's handshake callback; its error type is an HTTP response.
#[allow(clippy::result_large_err)]
fn check_upgrade(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() != PATH {
        return Err(refusal(
            StatusCode::NOT_FOUND,
            format!("not found: MQTT over WebSocket is served on {PATH}"),
        ));
    }
    let offered: Vec<&str> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        // A client that names no subprotocol still speaks MQTT on /mqtt.
        return Ok(resp);
    }
    let Some(chosen) = SUBPROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p)))
    else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            format!(
                "unsupported WebSocket subprotocol {:?}: expected \"mqtt\"",
                offered.join(", ")
            ),
        ));
    };
    resp.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(chosen),
    );
    Ok(resp)
}

fn refusal(status: StatusCode, message: String) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(message));
    *resp.status_mut() = status;
    resp
}

/// A WebSocket carrying MQTT, read and written as a byte stream.
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What the connection task has not read yet of the last binary frame. Emptied (and the
    /// frame freed) as soon as it is read, so an idle connection holds no frame.
    pending: Bytes,
}

fn io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                if n == self.pending.len() {
                    self.pending = Bytes::new();
                } else {
                    let _ = self.pending.split_to(n);
                }
                return Poll::Ready(Ok(()));
            }
            // Pings are answered by tungstenite itself; a close or the end of the stream is
            // the end of the byte stream (read of 0 bytes).
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text frame: MQTT travels in binary WebSocket frames",
                    )))
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Poll::Ready(Ok(()))
                }
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    /// Each write is one binary frame; the connection task writes everything it queued in
    /// one call, so one flush of packets is one frame.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_error)
    }
}
