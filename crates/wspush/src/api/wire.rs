//! The HTTP API's wire forms, as sans-IO code: request bodies in (bytes), reply bodies out
//! (bytes). No sockets, no hub: `methods.rs` does the work between the two.
//!
//! ```text
//! POST /api/<method>  {..}                      -> {"result":{..}} | {"error":{"code","message"}}
//! POST /api/batch     {"commands":[{"m":{..}}]} -> {"replies":[{"m":{..}} | {"error":..}]}
//! POST /api           {"method","params"}\n...  -> {"result"|"error"}\n... (no trailing newline)
//! ```
//!
//! Field names and forms are Centrifugo's server API (v5/v6); unknown fields are ignored,
//! a field of the wrong type fails the whole body (HTTP 400), as Go's `json.Unmarshal`
//! does there.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::broker::BrokerError;

/// Why a request failed, with the Centrifugo error code it answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body (or a command's params) is not JSON of the method's shape: HTTP 400
    /// at the top level, code 107 inside a batch.
    #[error("bad request: {0}")]
    Decode(String),
    /// No such method: HTTP 404 at the top level, code 104 inside a batch.
    #[error("method not found: {0}")]
    UnknownMethod(String),
    /// A field's value is not acceptable (code 107).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// `history` from a position the history no longer covers (code 112).
    #[error("unrecoverable position")]
    Unrecoverable,
    /// The broker could not carry it out (code 100; HTTP 503 at the top level).
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl ApiError {
    /// Centrifugo's error code.
    pub fn code(&self) -> u32 {
        match self {
            ApiError::Decode(_) | ApiError::BadRequest(_) => 107,
            ApiError::UnknownMethod(_) => 104,
            ApiError::Unrecoverable => 112,
            ApiError::Broker(_) => 100,
        }
    }

    /// The HTTP status of a single-method request that failed so. Method errors are 200
    /// with an error body (Centrifugo: clients read the code); a body we cannot read,
    /// an unknown method and a broker that cannot be reached are HTTP errors as well.
    pub fn status(&self) -> http::StatusCode {
        match self {
            ApiError::Decode(_) => http::StatusCode::BAD_REQUEST,
            ApiError::UnknownMethod(_) => http::StatusCode::NOT_FOUND,
            ApiError::Broker(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadRequest(_) | ApiError::Unrecoverable => http::StatusCode::OK,
        }
    }

    /// `{"code":N,"message":"..."}`.
    pub fn body(&self) -> String {
        let message = serde_json::to_string(&self.to_string()).unwrap_or_else(|_| "\"\"".into());
        format!("{{\"code\":{},\"message\":{message}}}", self.code())
    }
}

/// A method's result object, as JSON text.
pub type Reply = Result<Box<RawValue>, ApiError>;

/// Serialises a result object. Our result shapes (structs, maps with string keys) always
/// serialise; should one not, the client gets `{}` rather than a dropped connection.
pub fn to_raw(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| empty())
}

/// `{}`.
pub fn empty() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("`{}` is JSON")
}

/// Decodes a method's params; unknown fields are ignored.
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    // An empty body reads as `{}`: every field has a default.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::Decode(e.to_string()))
}

/// The body of a single-method answer: `{"result":..}` or `{"error":..}`.
pub fn single(reply: &Reply) -> String {
    match reply {
        Ok(result) => format!("{{\"result\":{}}}", result.get()),
        Err(e) => format!("{{\"error\":{}}}", e.body()),
    }
}

/// `batch`'s request: each command is an object whose one key names the method.
#[derive(Debug, Deserialize)]
pub struct Batch<'a> {
    /// The commands, run in order.
    #[serde(borrow, default)]
    pub commands: Vec<std::collections::BTreeMap<String, &'a RawValue>>,
}

/// One reply of a batch: `{"<method>":{..}}` or `{"error":{..}}`.
pub fn batch_reply(method: &str, reply: &Reply) -> String {
    match reply {
        Ok(result) => {
            let key = serde_json::to_string(method).unwrap_or_else(|_| "\"\"".into());
            format!("{{{key}:{}}}", result.get())
        }
        Err(e) => format!("{{\"error\":{}}}", e.body()),
    }
}

/// `{"replies":[..]}`: Centrifugo's batch answer has no `result` wrapper.
pub fn batch_body(replies: &[String]) -> String {
    format!("{{\"replies\":[{}]}}", replies.join(","))
}

/// One command of the legacy `POST /api` stream.
#[derive(Debug, Deserialize)]
pub struct Legacy<'a> {
    /// Echoed in the reply when set.
    #[serde(default)]
    pub id: Option<u32>,
    /// The method: a name (any case) or Centrifugo's number for it.
    #[serde(borrow)]
    pub method: &'a RawValue,
    /// Its params.
    #[serde(borrow, default)]
    pub params: Option<&'a RawValue>,
}

/// Centrifugo's numbers of the legacy methods (its `MethodType` enum).
const LEGACY_METHODS: [&str; 13] = [
    "publish",
    "broadcast",
    "unsubscribe",
    "disconnect",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "rpc",
    "subscribe",
    "refresh",
];

impl Legacy<'_> {
    /// The method name, lower case; `None` when it names nothing we know of.
    pub fn method_name(&self) -> Option<String> {
        match serde_json::from_str::<serde_json::Value>(self.method.get()).ok()? {
            serde_json::Value::String(s) => Some(s.to_ascii_lowercase()),
            serde_json::Value::Number(n) => {
                let i = usize::try_from(n.as_u64()?).ok()?;
                LEGACY_METHODS.get(i).map(|m| (*m).to_owned())
            }
            _ => None,
        }
    }

    /// The params as bytes (`{}` when absent).
    pub fn params(&self) -> &[u8] {
        self.params.map_or(b"{}", |p| p.get().as_bytes())
    }
}

/// Splits the legacy stream: JSON objects one after another (newlines or any whitespace
/// between them), as Go's `json.Decoder` reads them. A broken object fails the request.
pub fn split_legacy(body: &[u8]) -> Result<Vec<Legacy<'_>>, ApiError> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Legacy<'_>>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Decode(e.to_string()))
}

/// One reply line of the legacy stream.
pub fn legacy_reply(id: Option<u32>, reply: &Reply) -> String {
    let id = id.map_or_else(String::new, |id| format!("\"id\":{id},"));
    match reply {
        Ok(result) => format!("{{{id}\"result\":{}}}", result.get()),
        Err(e) => format!("{{{id}\"error\":{}}}", e.body()),
    }
}

/// The legacy answer: reply lines joined by `\n`, with no trailing newline (cent.js
/// `pipeline()` splits on `\n` and parses every piece).
pub fn legacy_body(lines: &[String]) -> String {
    lines.join("\n")
}

/// Data as it arrived: `data` (any JSON, its text kept byte for byte) or `b64data`
/// (standard base64: binary). Each request struct has both fields itself: serde's
/// `flatten` cannot carry a borrowed `RawValue`.
#[derive(Debug, Default)]
pub struct Data<'a> {
    /// Any JSON value; subscribers receive its text exactly.
    pub data: Option<&'a RawValue>,
    /// Binary data, base64 (RFC 4648 §4); wins over `data` when not empty.
    pub b64data: &'a str,
}

impl<'a> Data<'a> {
    /// The two fields of a request.
    pub fn new(data: Option<&'a RawValue>, b64data: &'a str) -> Data<'a> {
        Data { data, b64data }
    }
}

/// The payload a [`Data`] makes, sharing `body`'s bytes when it can.
pub fn payload_of(
    data: &Data<'_>,
    body: &bytes::Bytes,
) -> Result<crate::delivery::payload::Payload, ApiError> {
    use crate::delivery::payload::Payload;
    use base64::Engine;
    if !data.b64data.is_empty() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.b64data.as_bytes())
            .map_err(|_| ApiError::BadRequest("b64data is not base64"))?;
        return Ok(Payload::Binary(bytes::Bytes::from(bytes)));
    }
    let raw = data
        .data
        .ok_or(ApiError::BadRequest("data or b64data is required"))?;
    Ok(Payload::Text(slice_of(body, raw.get().as_bytes())))
}

/// `part` as a slice of `body` when it lies inside it (no copy), else a copy.
fn slice_of(body: &bytes::Bytes, part: &[u8]) -> bytes::Bytes {
    let (start, end) = (body.as_ptr() as usize, body.as_ptr() as usize + body.len());
    let p = part.as_ptr() as usize;
    if p >= start && p + part.len() <= end {
        body.slice_ref(part)
    } else {
        bytes::Bytes::copy_from_slice(part)
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
