//! The application's side of the server: the [`Handler`] trait and what it is given.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
pub use ws_proto::Message;

use crate::connection::Connection;

/// The events of a WebSocket server, implemented by the application.
///
/// Every method has a default that does nothing (or accepts / answers 404), so an echo
/// server only writes `on_message`. The `on_*` methods of one connection are called in order
/// from that connection's task: while one runs, that connection reads nothing more (natural
/// back-pressure), other connections are not affected. They must not block the thread.
pub trait Handler: Send + Sync + 'static {
    /// The upgrade is accepted: called just before the `101` response is written, so that a
    /// client that sees its connection open is already known to the application and misses
    /// nothing sent to it afterwards. Messages sent from here go out right after the `101`.
    /// If the upgrade then fails (the client left), [`Handler::on_close`] follows with 1006.
    fn on_open(&self, conn: &Connection, req: &Request) -> impl Future<Output = ()> + Send {
        let _ = (conn, req);
        async {}
    }

    /// A whole message arrived (fragments joined, inflated, text checked as UTF-8).
    fn on_message(&self, conn: &Connection, msg: Message) -> impl Future<Output = ()> + Send {
        let _ = (conn, msg);
        async {}
    }

    /// The connection is finished (called exactly once per opened connection, also at shutdown).
    fn on_close(&self, conn: &Connection, close: CloseInfo) -> impl Future<Output = ()> + Send {
        let _ = (conn, close);
        async {}
    }

    /// Decides a valid upgrade request before the 101 is sent: `Ok(Some(p))` accepts and selects
    /// the subprotocol `p` (it should be one the client listed in `Sec-WebSocket-Protocol`),
    /// `Ok(None)` accepts without a subprotocol, `Err(status)` refuses with that status (401, 403...).
    fn on_upgrade(&self, req: &Request) -> Result<Option<String>, StatusCode> {
        let _ = req;
        Ok(None)
    }

    /// Answers a plain HTTP request (not an upgrade attempt): static pages, health, metrics.
    /// `None` answers 404. Request bodies are not read.
    fn on_http(&self, req: &Request) -> Option<http::Response<Bytes>> {
        let _ = req;
        None
    }

    /// Decides whether a plain HTTP request (asked before [`Handler::on_http`]) becomes an
    /// event stream: a `200` whose body is fed by a [`Connection`]'s bounded queue (Server-Sent
    /// Events). `Ok(None)`: not a stream, `on_http` answers; `Err(response)` refuses (401, 403,
    /// 429…) before any byte of a stream. An accepted stream is a connection like a WebSocket:
    /// it counts against the connection cap, [`Handler::on_open`] runs before its head is
    /// written, [`Handler::on_close`] when it ends, and it takes only
    /// [`Connection::send_chunk`].
    fn on_stream(&self, req: &Request) -> Result<Option<StreamHead>, Box<http::Response<Bytes>>> {
        let _ = req;
        Ok(None)
    }
}

/// How an accepted event stream starts and is kept alive.
#[derive(Debug, Clone, Default)]
pub struct StreamHead {
    /// Response headers (`Content-Type` and the like); the status is 200.
    pub headers: HeaderMap,
    /// Bytes written first, before anything queued.
    pub preamble: Bytes,
    /// Bytes written after this long without any other write (a comment that keeps proxies
    /// from closing an idle stream and finds a vanished client).
    pub heartbeat: Option<(std::time::Duration, Bytes)>,
}

impl<H: Handler> Handler for Arc<H> {
    fn on_open(&self, conn: &Connection, req: &Request) -> impl Future<Output = ()> + Send {
        (**self).on_open(conn, req)
    }
    fn on_message(&self, conn: &Connection, msg: Message) -> impl Future<Output = ()> + Send {
        (**self).on_message(conn, msg)
    }
    fn on_close(&self, conn: &Connection, close: CloseInfo) -> impl Future<Output = ()> + Send {
        (**self).on_close(conn, close)
    }
    fn on_upgrade(&self, req: &Request) -> Result<Option<String>, StatusCode> {
        (**self).on_upgrade(req)
    }
    fn on_http(&self, req: &Request) -> Option<http::Response<Bytes>> {
        (**self).on_http(req)
    }
    fn on_stream(&self, req: &Request) -> Result<Option<StreamHead>, Box<http::Response<Bytes>>> {
        (**self).on_stream(req)
    }
}

/// A handler that sends every message back unchanged: conformance suites, measurements, tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Handler for Echo {
    async fn on_message(&self, conn: &Connection, msg: Message) {
        // A full queue or a closing connection loses the echo, as for any send.
        let _ = match msg {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
        };
    }
}

/// An HTTP request head as the server received it (the body is never read).
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) peer_addr: SocketAddr,
}

impl Request {
    /// Builds a request head (for tests of handlers).
    pub fn new(method: Method, uri: Uri, headers: HeaderMap, peer_addr: SocketAddr) -> Self {
        Self {
            method,
            uri,
            headers,
            peer_addr,
        }
    }

    /// The method (`GET` for every upgrade).
    pub fn method(&self) -> &Method {
        &self.method
    }
    /// The request target as sent.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
    /// The path part of the target, e.g. `/chat`.
    pub fn path(&self) -> &str {
        self.uri.path()
    }
    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }
    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The TCP peer (the browser, or the last proxy).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }
}

/// How a connection ended, given to [`Handler::on_close`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseInfo {
    /// The close code: the peer's when the close handshake completed (1005 if its close frame
    /// had no code), the one we sent when we failed or closed the connection and the peer did
    /// not answer, 1006 when the TCP connection ended without any close frame.
    pub code: u16,
    /// The reason text that goes with `code`.
    pub reason: String,
    /// Whether both close frames were exchanged (RFC 6455 §7.1.4 "cleanly").
    pub clean: bool,
}

impl CloseInfo {
    /// Builds a close description.
    pub fn new(code: u16, reason: impl Into<String>, clean: bool) -> Self {
        Self {
            code,
            reason: reason.into(),
            clean,
        }
    }
}
