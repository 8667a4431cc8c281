//! What a publisher writes and reads: MessagePack-RPC requests or
//! notifications (wspush), or HTTP/1.1 POSTs on a keep-alive connection
//! (Nchan, the floor server), and their replies.

use bytes::{Buf, BytesMut};
use msgpack_rpc::{Decoder, Message, Value};

use crate::publisher::PublishError;

/// Encodes requests and decodes replies of one protocol.
pub(crate) enum Wire {
    /// MessagePack-RPC: `push_data` (broadcast) or `publish` (a channel).
    Rpc { next_id: u32, decoder: Decoder },
    /// `POST {path}` with `{channel}` replaced (`all` when broadcasting) and `{/channel}`
    /// by `/name` (nothing when broadcasting: wspush's `/pub`). The path `/api` is wspush's
    /// HTTP API: a JSON `publish` (`push_data` when broadcasting) with the payload as a
    /// JSON string, which subscribers then read with its quotes.
    Http { host: String, path: String },
}

impl Wire {
    /// A MessagePack-RPC wire (replies up to 1 MiB).
    pub(crate) fn rpc() -> Wire {
        Wire::Rpc {
            next_id: 0,
            decoder: Decoder::new(1 << 20),
        }
    }

    /// Appends one publish of `payload`; a notification (no reply will come)
    /// when `notify`, which only MessagePack-RPC has.
    pub(crate) fn encode(
        &mut self,
        channel: Option<&str>,
        payload: &[u8],
        notify: bool,
        out: &mut BytesMut,
    ) {
        match self {
            Wire::Rpc { .. } => {
                // A str, so wspush sends a text frame holding exactly these bytes.
                let data = Value::from(String::from_utf8_lossy(payload).into_owned());
                let (method, params): (&[u8], _) = match channel {
                    None => (b"push_data", vec![data]),
                    Some(c) => (b"publish", vec![Value::from(c), data]),
                };
                if notify {
                    msgpack_rpc::encode_notification(method, &params, out);
                } else {
                    self.request(method, &params, out);
                }
            }
            Wire::Http { host, path } if path == "/api" => {
                // The payload is ASCII digits, spaces and padding: no escaping needed.
                let data = String::from_utf8_lossy(payload);
                let (method, body) = match channel {
                    None => ("push_data", format!(r#"{{"data":"{data}"}}"#)),
                    Some(c) => ("publish", format!(r#"{{"channel":"{c}","data":"{data}"}}"#)),
                };
                post(
                    out,
                    host,
                    &format!("/api/{method}"),
                    "application/json",
                    body.as_bytes(),
                );
            }
            Wire::Http { host, path } => {
                let path = path
                    .replace(
                        "{/channel}",
                        &channel.map_or(String::new(), |c| format!("/{c}")),
                    )
                    .replace("{channel}", channel.unwrap_or("all"));
                post(out, host, &path, "text/plain", payload);
            }
        }
    }

    /// Appends a MessagePack-RPC request with the next message id; nothing on HTTP.
    pub(crate) fn request(&mut self, method: &[u8], params: &[Value], out: &mut BytesMut) {
        if let Wire::Rpc { next_id, .. } = self {
            let id = *next_id;
            *next_id = id.wrapping_add(1);
            msgpack_rpc::encode_request(id, method, params, out);
        }
    }

    /// Consumes one reply from the front of `buf`; `Ok(None)`: need more bytes.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<()>, PublishError> {
        match self {
            Wire::Rpc { decoder, .. } => match decoder.decode(buf)? {
                None => Ok(None),
                Some(Message::Response { error, .. }) if error.is_nil() => Ok(Some(())),
                Some(Message::Response { error, .. }) => {
                    Err(PublishError::Refused(error.to_string()))
                }
                Some(_) => Err(PublishError::Refused("a request instead of a reply".into())),
            },
            Wire::Http { .. } => decode_http(buf),
        }
    }
}

fn post(out: &mut BytesMut, host: &str, path: &str, content_type: &str, body: &[u8]) {
    out.extend_from_slice(
        format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

fn decode_http(buf: &mut BytesMut) -> Result<Option<()>, PublishError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(PublishError::Http(e.to_string())),
    };
    let mut body_len = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(PublishError::Http(
                "chunked replies are not supported".into(),
            ));
        }
    }
    let body_len =
        body_len.ok_or_else(|| PublishError::Http("reply without Content-Length".into()))?;
    if buf.len() < head + body_len {
        return Ok(None);
    }
    let code = resp.code.unwrap_or(0);
    if !(200..300).contains(&code) {
        let body = String::from_utf8_lossy(&buf[head..head + body_len]).into_owned();
        return Err(PublishError::Refused(format!("HTTP {code}: {body}")));
    }
    buf.advance(head + body_len);
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_replies_one_at_a_time() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\nHTTP/1.1 4"[..],
        );
        assert!(decode_http(&mut buf).unwrap().is_some());
        assert!(decode_http(&mut buf).unwrap().is_some());
        assert!(decode_http(&mut buf).unwrap().is_none());
        let mut bad = BytesMut::from(&b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"[..]);
        assert!(
            matches!(decode_http(&mut bad), Err(PublishError::Refused(m)) if m.contains("403"))
        );
    }

    #[test]
    fn calls_and_notifications() {
        let mut wire = Wire::rpc();
        let mut out = BytesMut::new();
        wire.encode(None, b"1 2 0 ", false, &mut out);
        wire.encode(Some("ch"), b"x", true, &mut out);
        let mut decoder = Decoder::new(1 << 20);
        match decoder.decode(&mut out).unwrap() {
            Some(Message::Request { msgid, method, .. }) => {
                assert_eq!((msgid, method.as_ref()), (0, &b"push_data"[..]));
            }
            other => panic!("{other:?}"),
        }
        match decoder.decode(&mut out).unwrap() {
            Some(Message::Notification { method, params }) => {
                assert_eq!(method.as_ref(), b"publish");
                assert_eq!(params, [Value::from("ch"), Value::from("x")]);
            }
            other => panic!("{other:?}"),
        }
    }
}
