//! The hyper service: plain HTTP requests become event streams ([`Handler::on_stream`],
//! see [`crate::event_stream`]) or go to [`Handler::on_http`], upgrade attempts are
//! validated by ws-proto's handshake, admitted (connection cap, [`Handler::on_upgrade`]) and
//! answered `101`; the upgraded socket is then handed to a connection task.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use http::{Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use ws_proto::handshake::{self, HandshakeError, RequestHead};

use crate::event_stream::EventStreamBody;
use crate::handler::{Handler, Request};
use crate::inner::Inner;
use crate::limits::IpSlot;
use crate::stats::Stats;
use crate::transport::Transport;

/// Response body of every answer the server writes: whole, or an event stream.
pub(crate) type Body<H> = Either<Full<Bytes>, EventStreamBody<H>>;

/// Answers one request. Never fails: every problem becomes a status code.
pub(crate) async fn handle<H: Handler>(
    inner: Arc<Inner<H>>,
    peer: SocketAddr,
    slot: Option<Arc<IpSlot>>,
    kill: CancellationToken,
    req: hyper::Request<Incoming>,
) -> Result<Response<Body<H>>, Infallible> {
    if !is_upgrade_attempt(req.headers()) {
        let (parts, _body) = req.into_parts();
        let request = Request::new(parts.method, parts.uri, parts.headers, peer);
        return Ok(plain(&inner, slot, kill, request).await);
    }
    Ok(upgrade(inner, peer, slot, req).await.map(Either::Left))
}

/// A plain request: an event stream if the handler makes it one, else its page (or 404).
async fn plain<H: Handler>(
    inner: &Arc<Inner<H>>,
    slot: Option<Arc<IpSlot>>,
    kill: CancellationToken,
    request: Request,
) -> Response<Body<H>> {
    let whole = |resp: http::Response<Bytes>| resp.map(|b| Either::Left(Full::new(b)));
    match inner.handler.on_stream(&request) {
        Ok(None) => {}
        Err(refusal) => return whole(*refusal),
        Ok(Some(head)) => {
            let permit = match admission(inner) {
                Ok(permit) => permit,
                Err((status, why)) => return text(status, why).map(Either::Left),
            };
            let admitted = crate::task::admit(inner, &request, permit, Some(kill)).await;
            return crate::event_stream::respond(admitted, slot, head);
        }
    }
    match inner.handler.on_http(&request) {
        Some(resp) => whole(resp),
        None => text(StatusCode::NOT_FOUND, "not found").map(Either::Left),
    }
}

/// A connection permit, or why not (status and text): shutting down, or at the connection
/// cap. Taken before the `101` (or a stream's `200`), so beyond the cap the client gets a
/// clean HTTP answer.
pub(crate) fn admission<H>(
    inner: &Arc<Inner<H>>,
) -> Result<OwnedSemaphorePermit, (StatusCode, &'static str)> {
    if inner.shutting_down.load(Ordering::SeqCst) {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    Arc::clone(&inner.permits).try_acquire_owned().map_err(|_| {
        Stats::add(&inner.stats.rejected_full, 1);
        (StatusCode::SERVICE_UNAVAILABLE, "too many connections")
    })
}

/// An upgrade attempt: validated, admitted and answered `101`, or refused.
async fn upgrade<H: Handler>(
    inner: Arc<Inner<H>>,
    peer: SocketAddr,
    slot: Option<Arc<IpSlot>>,
    mut req: hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let accept = match validate(&req) {
        Ok(accept) => accept,
        Err(e) => return upgrade_required(&e),
    };
    let permit = match admission(&inner) {
        Ok(permit) => permit,
        Err((status, why)) => return text(status, why),
    };
    let request = Request::new(
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
        peer,
    );
    let protocol = match inner.handler.on_upgrade(&request) {
        Ok(protocol) => protocol,
        Err(status) => return text(status, status.canonical_reason().unwrap_or("")),
    };
    let negotiated = inner
        .config
        .deflate
        .as_ref()
        .and_then(|cfg| handshake::negotiate_deflate(&accept.extension_offers(), cfg));
    let (deflate, extensions) = match negotiated {
        Some((params, header)) => (Some(params), Some(header)),
        None => (None, None),
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    let admitted = crate::task::admit(&inner, &request, permit, None).await;
    drop(request);
    let task_inner = Arc::clone(&inner);
    inner.tracker.spawn(async move {
        // The WebSocket counts against its address until it ends.
        let _slot = slot;
        let timeout = task_inner.config.handshake_timeout;
        let upgraded = match tokio::time::timeout(timeout, on_upgrade).await {
            Ok(Ok(upgraded)) => upgraded,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "upgrade failed");
                return crate::task::abandon(admitted, "upgrade failed").await;
            }
            Err(_) => {
                tracing::debug!(%peer, "upgrade timed out");
                return crate::task::abandon(admitted, "upgrade timed out").await;
            }
        };
        // Always our own type: `serve_http` hands hyper a `TokioIo<Transport>`.
        let Ok(parts) = upgraded.downcast::<TokioIo<Transport>>() else {
            tracing::error!(%peer, "upgraded connection has an unexpected type");
            return crate::task::abandon(admitted, "unexpected upgraded type").await;
        };
        let io = parts.io.into_inner();
        crate::task::run(admitted, io, parts.read_buf, deflate).await;
    });

    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    insert(headers, "sec-websocket-accept", &accept.accept);
    if let Some(p) = protocol {
        insert(headers, "sec-websocket-protocol", &p);
    }
    if let Some(e) = extensions {
        insert(headers, "sec-websocket-extensions", &e);
    }
    resp
}

/// A request that wants to be a WebSocket, even a broken one, gets a WebSocket answer (426),
/// not the application's pages: it has `Upgrade: websocket` or a `Sec-WebSocket-*` header.
pub(crate) fn is_upgrade_attempt(headers: &HeaderMap) -> bool {
    let upgrade_websocket = headers.get_all(UPGRADE).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
    });
    upgrade_websocket
        || headers.contains_key("sec-websocket-key")
        || headers.contains_key("sec-websocket-version")
}

fn validate(req: &hyper::Request<Incoming>) -> Result<handshake::ServerAccept, HandshakeError> {
    let head = RequestHead {
        method: req.method().as_str(),
        http_minor: match req.version() {
            Version::HTTP_09 | Version::HTTP_10 => 0,
            _ => 1,
        },
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect(),
    };
    handshake::validate_request(&head)
}

/// Every broken upgrade attempt is answered 426 with `Sec-WebSocket-Version: 13` (RFC 6455
/// §4.4 for a wrong version; for the others it tells the client what a valid upgrade needs).
fn upgrade_required(e: &HandshakeError) -> Response<Full<Bytes>> {
    let mut resp = text(StatusCode::UPGRADE_REQUIRED, &e.to_string());
    resp.headers_mut()
        .insert("sec-websocket-version", HeaderValue::from_static("13"));
    resp
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    // Values come from ws-proto (base64, extension tokens) or the application's subprotocol;
    // one that is not a valid header value is left out rather than failing the upgrade.
    match HeaderValue::from_str(value) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => tracing::warn!(header = name, "invalid header value left out"),
    }
}
