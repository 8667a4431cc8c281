//! Plain HTTP on the WebSocket port: the demo page, health and (with `metrics_public`)
//! metrics. `/metrics` is always served on the API listener; here it is opt-in, since a
//! server's counters are not for every browser on the internet to read.

use bytes::Bytes;
use http::{Response, StatusCode, header};

use crate::stats::Stats;

/// The demo page: no build step, no external assets.
const DEMO_PAGE: &str = include_str!("web/demo.html");

/// Answers a plain (non-upgrade) HTTP GET for `path`; `None` means 404. `/metrics` only
/// when `metrics` (the `metrics_public` setting).
pub fn respond(
    path: &str,
    metrics: bool,
    stats: impl FnOnce() -> Stats,
) -> Option<Response<Bytes>> {
    match path {
        "/" | "/index.html" => Some(ok(
            "text/html; charset=utf-8",
            Bytes::from_static(DEMO_PAGE.as_bytes()),
        )),
        "/health" => Some(ok("text/plain; charset=utf-8", Bytes::from_static(b"ok\n"))),
        "/metrics" if metrics => Some(ok(
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(stats().to_prometheus()),
        )),
        _ => None,
    }
}

fn ok(content_type: &'static str, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
