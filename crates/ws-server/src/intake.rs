//! A new plain-TCP connection's first request, looked at before hyper sees the connection:
//! an event stream the handler accepts gets the socket for itself (see
//! `crate::event_stream`), answered here and handed to a connection task
//! ([`crate::task::run_stream`]). Anything else goes to hyper untouched: the request was only
//! peeked.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_proto::handshake::RequestHead;

use crate::handler::{Handler, Request};
use crate::inner::Inner;
use crate::limits::IpSlot;
use crate::stats::Stats;

/// Bytes of the first request looked at. A longer head goes to hyper, which serves it all
/// the same (an event stream then goes through hyper).
const PEEK_BYTES: usize = 4096;

/// What became of a new plain connection.
pub(crate) enum Intake {
    /// Not an event stream on its own socket: hyper serves it, nothing was read.
    Http(TcpStream),
    /// Served here (a stream, a refusal) or gone (timeout, shutdown, error).
    Done,
}

/// Looks at the first request of `tcp`: an event stream the handler accepts is answered
/// and run here; everything else goes back untouched.
pub(crate) async fn intake<H: Handler>(
    inner: &Arc<Inner<H>>,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Option<Arc<IpSlot>>,
) -> Intake {
    let mut buf = vec![0u8; PEEK_BYTES];
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(inner.config.handshake_timeout, tcp.peek(&mut buf)) => peeked,
        () = inner.stop_http.cancelled() => return Intake::Done,
    };
    let n = match peeked {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection failed before its request");
            return Intake::Done;
        }
        Err(_) => {
            Stats::add(&inner.stats.handshake_timeouts, 1);
            tracing::info!(%peer, "request head not received within the handshake timeout");
            return Intake::Done;
        }
    };
    let Some((len, request)) = stream_request(&buf[..n], peer) else {
        return Intake::Http(tcp);
    };
    drop(buf);
    let head = match inner.handler.on_stream(&request) {
        Ok(None) => return Intake::Http(tcp),
        Ok(Some(head)) => head,
        Err(refusal) => {
            refuse(inner, tcp, len, *refusal).await;
            return Intake::Done;
        }
    };
    let permit = match crate::http::admission(inner) {
        Ok(permit) => permit,
        Err((status, why)) => {
            let mut refusal = Response::new(Bytes::from_static(why.as_bytes()));
            *refusal.status_mut() = status;
            refuse(inner, tcp, len, refusal).await;
            return Intake::Done;
        }
    };
    let mut tcp = tcp;
    if consume(inner, &mut tcp, len).await.is_err() {
        return Intake::Done;
    }
    // Marks the connection an event stream (`Connection::is_event_stream`); the task ends
    // it through the close state, so nothing waits on the token.
    let kill = Some(tokio_util::sync::CancellationToken::new());
    let admitted = crate::task::admit(inner, &request, permit, kill).await;
    drop(request);
    let mut preamble = response_head(StatusCode::OK, &head.headers, None);
    preamble.extend_from_slice(&head.preamble);
    crate::task::run_stream(admitted, tcp, preamble.freeze(), head.heartbeat, slot).await;
    Intake::Done
}

/// The request at the start of `buf` when it may be an event stream: complete, `GET`, not a
/// WebSocket upgrade attempt, with a target and headers `http` accepts.
fn stream_request(buf: &[u8], peer: SocketAddr) -> Option<(usize, Request)> {
    let (len, head) = RequestHead::parse(buf).ok()??;
    if head.method != "GET" {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (name, value) in &head.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(value).ok()?);
    }
    if crate::http::is_upgrade_attempt(&headers) {
        return None;
    }
    let uri: Uri = head.path.parse().ok()?;
    Some((len, Request::new(Method::GET, uri, headers, peer)))
}

/// Reads the request head that was peeked (`len` bytes, already in the socket's buffer).
async fn consume<H: Handler>(
    inner: &Inner<H>,
    tcp: &mut TcpStream,
    len: usize,
) -> std::io::Result<()> {
    let mut head = vec![0u8; len];
    match tokio::time::timeout(inner.config.handshake_timeout, tcp.read_exact(&mut head)).await {
        Ok(read) => read.map(drop),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Answers a refused stream (status, headers and body from the handler) and closes.
async fn refuse<H: Handler>(
    inner: &Inner<H>,
    mut tcp: TcpStream,
    len: usize,
    refusal: Response<Bytes>,
) {
    if consume(inner, &mut tcp, len).await.is_err() {
        return;
    }
    let (parts, body) = refusal.into_parts();
    let mut out = response_head(parts.status, &parts.headers, Some(body.len()));
    out.extend_from_slice(&body);
    let write = async {
        tcp.write_all(&out).await?;
        tcp.shutdown().await
    };
    if tokio::time::timeout(inner.config.close_timeout, write)
        .await
        .is_err()
    {
        tracing::debug!("refusal not written within the close timeout");
    }
}

/// An HTTP/1.1 response head: `status`, `headers` (any framing headers among them dropped),
/// `Content-Length` when the body's length is known, and `Connection: close`: the body ends
/// when the connection does.
fn response_head(status: StatusCode, headers: &HeaderMap, body_len: Option<usize>) -> BytesMut {
    let mut out = BytesMut::with_capacity(256);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if let Some(len) = body_len {
        out.put_slice(format!("content-length: {len}\r\n").as_bytes());
    }
    out.put_slice(b"connection: close\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5000))
    }

    #[test]
    fn a_plain_get_is_a_candidate_with_its_head_length() {
        let raw =
            b"GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\nextra";
        let (len, req) = stream_request(raw, peer()).unwrap_or_else(|| panic!("not parsed"));
        assert_eq!(len, raw.len() - b"extra".len());
        assert_eq!(req.path(), "/sse");
        assert_eq!(req.query(), Some("channel=a"));
        assert_eq!(req.headers()["accept"], "text/event-stream");
    }

    #[test]
    fn upgrades_other_methods_and_partial_heads_go_to_hyper() {
        let upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
        assert!(stream_request(upgrade, peer()).is_none());
        let key = b"GET / HTTP/1.1\r\nSec-WebSocket-Key: abc\r\n\r\n";
        assert!(stream_request(key, peer()).is_none());
        assert!(stream_request(b"POST /sse HTTP/1.1\r\n\r\n", peer()).is_none());
        assert!(stream_request(b"GET /sse HTTP/1.1\r\nHost:", peer()).is_none());
        assert!(stream_request(b"\x16\x03\x01garbage", peer()).is_none());
    }

    #[test]
    fn the_head_ends_with_connection_close_and_drops_framing_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let head = response_head(StatusCode::OK, &headers, None);
        assert_eq!(
            &head[..],
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        );
        let refusal = response_head(StatusCode::FORBIDDEN, &HeaderMap::new(), Some(3));
        assert_eq!(
            &refusal[..],
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\nconnection: close\r\n\r\n"
        );
    }
}
