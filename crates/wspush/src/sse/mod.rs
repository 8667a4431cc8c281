//! Server-Sent Events on the public port: `GET /sse?channel=…&token=…` for browsers whose
//! network breaks WebSocket. The same query grammar, JWT, channel permissions, Origin
//! allowlist and per-IP limits as the upgrade decide it before any byte of the stream; the
//! hub then treats the connection as an outlet of the SSE format (see
//! [`crate::delivery::event_stream`] for the events and the id that resumes them).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use ws_server::{Request, StreamHead};

use crate::auth::{Gate, Refusal};
use crate::delivery::event_stream::resume_from;
use crate::delivery::query::ClientOptions;

/// The path of the event stream.
pub const PATH: &str = "/sse";

/// How long an EventSource waits before it reconnects by itself (sent once, `retry:`).
const RETRY_MILLIS: u64 = 2_000;

/// The `Last-Event-ID` an EventSource sends when it reconnects by itself.
const LAST_EVENT_ID: &str = "last-event-id";

/// Decides a request for the event stream: `Ok(None)` if it is not one, a refusal with its
/// status (and CORS headers, so the page can read it), or the stream's head.
pub fn decide(
    req: &Request,
    gate: &Gate,
    heartbeat: Option<Duration>,
) -> Result<Option<StreamHead>, Box<http::Response<Bytes>>> {
    if req.path() != PATH {
        return Ok(None);
    }
    let refuse = |why: Refusal| {
        let mut resp = http::Response::new(Bytes::from_static(why.reason().as_bytes()));
        *resp.status_mut() = why.status();
        cors(req, resp.headers_mut());
        Box::new(resp)
    };
    let admission = gate.admit(req).map_err(|why| {
        tracing::info!(peer = %req.peer_addr(), ?why, "event stream refused");
        refuse(why)
    })?;
    let mut opts = admission.options;
    if let Some(last) = last_event_id(req) {
        resume_from(last, &mut opts).map_err(|_| refuse(Refusal::BadRequest))?;
    }
    let mut head = StreamHead::default();
    let h = &mut head.headers;
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx and others buffer responses unless told not to.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    cors(req, h);
    let mut preamble = BytesMut::new();
    sse_proto::encode::retry(&mut preamble, RETRY_MILLIS);
    head.preamble = preamble.freeze();
    head.heartbeat = heartbeat.map(|every| (every, Bytes::from_static(b":\n\n")));
    Ok(Some(head))
}

/// What an event stream asks for: the query's options, with `Last-Event-ID`'s resume
/// points in place of the query's `since` when the browser reconnected by itself.
pub fn options(req: &Request, mut opts: ClientOptions) -> ClientOptions {
    if let Some(last) = last_event_id(req) {
        // Checked in `decide`: a malformed one was refused before the stream began.
        let _ = resume_from(last, &mut opts);
    }
    opts
}

fn last_event_id(req: &Request) -> Option<&str> {
    let value = req.headers().get(LAST_EVENT_ID)?.to_str().ok()?;
    (!value.is_empty()).then_some(value)
}

/// EventSource with `withCredentials` needs the exact origin and credentials allowed; the
/// gate has already refused an origin outside the allowlist.
pub(crate) fn cors(req: &Request, headers: &mut HeaderMap) {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}
