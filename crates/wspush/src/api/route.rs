//! Paths and statuses of the API listener.
//!
//! | request | answer |
//! |---|---|
//! | `GET /health` | 200 `ok` (no key needed: for load balancers) |
//! | `GET /metrics` | 200, Prometheus text (key needed when one is set) |
//! | `POST /api/<method>` | 200 `{"result"}` or `{"error"}`; 400 unreadable JSON; 404 unknown method; 503 broker unavailable |
//! | `POST /api/batch` | 200 `{"replies":[...]}` |
//! | `POST /api` | 200, legacy newline-delimited replies |
//! | `POST /pub`, `POST /pub/<channel>` | 200 `{"offset":N,"epoch":"E"}` (raw body pushed) |
//! | missing or wrong key | 401, empty body |
//! | body over the limit | 413 |
//! | other methods on these paths | 405 with `Allow` |
//! | any other path | 404 with an error body |

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::wire::{self, ApiError};
use super::{ApiCounters, Door};
use crate::auth::secret::constant_time_eq;
use crate::delivery::flush::Flush;
use crate::delivery::payload::Payload;

/// An answer of the API listener.
pub type Answer = Response<Full<Bytes>>;

/// Answers one request; `max_body` bounds its body.
pub async fn respond(door: &Door, req: hyper::Request<Incoming>, max_body: usize) -> Answer {
    let answer = route(door, req, max_body).await;
    door.shared.api.answered(answer.status());
    answer
}

async fn route(door: &Door, req: hyper::Request<Incoming>, max_body: usize) -> Answer {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    match path.as_str() {
        "/health" if get => return text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        "/health" | "/metrics" if !get => return not_allowed("GET, HEAD"),
        _ => {}
    }
    let known =
        path == "/api" || path.starts_with("/api/") || path == "/pub" || path.starts_with("/pub/");
    if !known && path != "/metrics" {
        let e = ApiError::UnknownMethod(format!("no such path {path}"));
        return error(StatusCode::NOT_FOUND, &e);
    }
    if !authorized(door, req.headers()) {
        return empty(StatusCode::UNAUTHORIZED);
    }
    if path == "/metrics" {
        let body = door.shared.stats().to_prometheus();
        return text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            body,
        );
    }
    if method != Method::POST {
        return not_allowed("POST");
    }
    let binary = is_octet_stream(req.headers());
    let body = match read_body(req, max_body).await {
        Ok(body) => body,
        Err(status) => return empty(status),
    };
    match path.strip_prefix("/api") {
        Some("") => json_or_error(super::legacy(door, &body).await),
        Some("/batch") => json_or_error(super::batch(door, &body).await),
        Some(m) => {
            let method = m.trim_start_matches('/');
            let reply = super::call(door, method, &body, &body, Flush::Now).await;
            single(door, &reply)
        }
        None => publish_raw(door, &path, body, binary).await,
    }
}

/// `X-API-Key: KEY` or `Authorization: apikey KEY`, compared in constant time.
fn authorized(door: &Door, headers: &HeaderMap) -> bool {
    let Some(key) = &door.key else {
        return true;
    };
    let given = headers.get("x-api-key").map(|v| v.as_bytes()).or_else(|| {
        let auth = headers.get(header::AUTHORIZATION)?.as_bytes();
        let (scheme, rest) = auth.split_at_checked(7)?;
        scheme.eq_ignore_ascii_case(b"apikey ").then_some(rest)
    });
    given.is_some_and(|g| constant_time_eq(g, key.as_bytes()))
}

fn is_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/octet-stream"))
}

/// The whole body, or 413 beyond `max` (told by `Content-Length` before reading when the
/// client sends one), or 400 when it breaks off.
async fn read_body(req: hyper::Request<Incoming>, max: usize) -> Result<Bytes, StatusCode> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}

/// `POST /pub` (the broadcast stream) or `POST /pub/<channel>` (percent-decoded): the body
/// as it is; `application/octet-stream` or invalid UTF-8 makes a binary message.
async fn publish_raw(door: &Door, path: &str, body: Bytes, binary: bool) -> Answer {
    let channel = match path.strip_prefix("/pub/") {
        None => None,
        Some(c) => match percent_decode(c) {
            Some(c) if !c.is_empty() => Some(c),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &ApiError::BadRequest("bad channel in path"),
                );
            }
        },
    };
    let payload = match binary || std::str::from_utf8(&body).is_err() {
        true => Payload::Binary(body),
        false => Payload::Text(body),
    };
    let answer = door
        .shared
        .broker
        .publish(channel.as_deref(), payload, Flush::Now)
        .await;
    match answer {
        Ok(done) => {
            let (offset, epoch) = done
                .position
                .map_or((0, String::new()), |p| (p.seq, p.epoch.to_string()));
            let body = serde_json::json!({"offset": offset, "epoch": epoch}).to_string();
            json(StatusCode::OK, format!("{body}\n"))
        }
        Err(e) => {
            let e = ApiError::from(e);
            error(e.status(), &e)
        }
    }
}

/// `%XX` escapes decoded; `None` when one is broken or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn single(door: &Door, reply: &wire::Reply) -> Answer {
    let status = match reply {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    };
    if status == StatusCode::OK && reply.is_err() {
        ApiCounters::add(&door.shared.api.method_errors, 1);
    }
    json(status, wire::single(reply))
}

fn json_or_error(r: Result<String, ApiError>) -> Answer {
    match r {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => error(e.status(), &e),
    }
}

fn error(status: StatusCode, e: &ApiError) -> Answer {
    json(status, format!("{{\"error\":{}}}", e.body()))
}

fn json(status: StatusCode, body: String) -> Answer {
    text(status, "application/json", body)
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

fn empty(status: StatusCode) -> Answer {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn not_allowed(allow: &'static str) -> Answer {
    let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn channel_paths_are_percent_decoded() {
        assert_eq!(percent_decode("news").as_deref(), Some("news"));
        assert_eq!(percent_decode("a%20b%3Ac").as_deref(), Some("a b:c"));
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
