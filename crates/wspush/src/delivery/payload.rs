//! How a MessagePack value pushed by a program becomes a WebSocket message.
//!
//! The mapping is the same everywhere (`push_data`, `publish`, `send`, the CLI):
//! - a msgpack **str** becomes a **text** frame holding exactly those bytes (the
//!   seed contract: a program that JSON-encodes its data itself, as the Ruby
//!   example does, gets that JSON delivered untouched);
//! - a msgpack **bin** becomes a **binary** frame;
//! - any other value (map, array, number, bool, nil…) becomes a **text** frame
//!   holding its JSON, so a program may also hand over structured data as is.
//!   Inside it, a **bin** becomes a JSON string of its standard base64
//!   (RFC 4648 §4, padded: `atob()` in a browser): 4 characters per 3 bytes,
//!   where an array of numbers took about 4 per byte.
//!
//! A str that is not valid UTF-8 (old clients send arbitrary bytes as "raw")
//! cannot be a text frame (RFC 6455 §5.6 would make browsers fail the
//! connection), so it is delivered as a binary frame rather than altered.

use bytes::Bytes;
use rmpv::Value;

/// A WebSocket payload ready to be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A text frame; the bytes are valid UTF-8.
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
}

impl Payload {
    /// Maps a pushed value to the frame a browser receives (see the module docs).
    pub fn from_value(value: Value) -> Payload {
        match value {
            // rmpv keeps a str that is not UTF-8 as bytes; `is_str` tells which.
            Value::String(s) if s.is_str() => Payload::Text(Bytes::from(s.into_bytes())),
            Value::String(s) => Payload::Binary(Bytes::from(s.into_bytes())),
            Value::Binary(b) => Payload::Binary(Bytes::from(b)),
            other => Payload::Text(Bytes::from(to_json(&other))),
        }
    }

    /// The payload bytes, whatever the frame type.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Payload::Text(b) | Payload::Binary(b) => b,
        }
    }

    /// Turns the payload into the WebSocket message that carries it.
    pub fn into_message(self) -> ws_proto::Message {
        match self {
            Payload::Text(b) => ws_proto::Message::Text(b),
            Payload::Binary(b) => ws_proto::Message::Binary(b),
        }
    }
}

/// Renders a MessagePack value as JSON text.
///
/// Map keys that are not strings are rendered as their JSON text (JSON keys
/// must be strings); binary becomes a string of its padded standard base64;
/// NaN and the infinities become `null`; extension values become
/// `{"type": t, "data": "<base64>"}`.
pub fn to_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    use std::fmt::Write;
    match value {
        Value::Nil => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::F32(f) => write_float(f64::from(*f), out),
        Value::F64(f) => write_float(*f, out),
        Value::String(s) => write_json_string(&String::from_utf8_lossy(s.as_bytes()), out),
        Value::Binary(b) => write_base64(b, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    Value::String(s) => {
                        write_json_string(&String::from_utf8_lossy(s.as_bytes()), out)
                    }
                    other => write_json_string(&to_json(other), out),
                }
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
        Value::Ext(ty, data) => {
            let _ = write!(out, "{{\"type\":{ty},\"data\":");
            write_base64(data, out);
            out.push('}');
        }
    }
}

fn write_float(f: f64, out: &mut String) {
    if f.is_finite() {
        out.push_str(
            &serde_json::Number::from_f64(f).map_or_else(|| "null".into(), |n| n.to_string()),
        );
    } else {
        out.push_str("null");
    }
}

fn write_base64(bytes: &[u8], out: &mut String) {
    use base64::Engine;
    // The base64 alphabet needs no JSON escaping.
    out.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
    out.push('"');
}

fn write_json_string(s: &str, out: &mut String) {
    // serde_json's escaping is the reference; a str always serialises.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn str_is_text_untouched() {
        let v = Value::from("{\"hello\":\"world\"}");
        assert_eq!(
            Payload::from_value(v),
            Payload::Text(Bytes::from_static(b"{\"hello\":\"world\"}"))
        );
    }

    #[test]
    fn bin_is_binary() {
        let v = Value::Binary(vec![0, 159, 255]);
        assert_eq!(
            Payload::from_value(v),
            Payload::Binary(Bytes::from_static(&[0, 159, 255]))
        );
    }

    #[test]
    fn invalid_utf8_str_is_binary_with_its_bytes() {
        // fixstr of 2 bytes that are not UTF-8, as an old client sends them.
        let v = rmpv::decode::read_value(&mut &[0xa2, 0xff, 0x61][..]).unwrap();
        assert_eq!(
            Payload::from_value(v),
            Payload::Binary(Bytes::from_static(&[0xff, 0x61]))
        );
    }

    #[test]
    fn structured_values_become_json_text() {
        let v = Value::Map(vec![
            (Value::from("hello"), Value::from("world")),
            (
                Value::from(1),
                Value::Array(vec![Value::from(true), Value::Nil]),
            ),
            (Value::from("f"), Value::F64(1.5)),
            (Value::from("nan"), Value::F64(f64::NAN)),
            (Value::from("b"), Value::Binary(vec![1, 2])),
            (Value::from("q"), Value::from("a\"b\n")),
        ]);
        assert_eq!(
            Payload::from_value(v),
            Payload::Text(Bytes::from_static(
                br#"{"hello":"world","1":[true,null],"f":1.5,"nan":null,"b":"AQI=","q":"a\"b\n"}"#
            ))
        );
        assert_eq!(to_json(&Value::from(-7)), "-7");
        assert_eq!(to_json(&Value::from(u64::MAX)), "18446744073709551615");
    }

    #[test]
    fn binary_inside_json_is_base64_and_does_not_balloon() {
        let bytes: Vec<u8> = (0..=255).cycle().take(3 << 10).collect();
        let v = Value::Map(vec![(Value::from("b"), Value::Binary(bytes.clone()))]);
        let json = to_json(&v);
        // {"b":"…"}: 4 characters per 3 bytes plus the frame of the map.
        assert_eq!(json.len(), 4 + (4 << 10) + 4);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        use base64::Engine;
        let back = base64::engine::general_purpose::STANDARD
            .decode(parsed["b"].as_str().unwrap())
            .unwrap();
        assert_eq!(back, bytes);
        assert_eq!(
            to_json(&Value::Array(vec![
                Value::Binary(vec![]),
                Value::Binary(vec![0xff])
            ])),
            r#"["","/w=="]"#
        );
        assert_eq!(
            to_json(&Value::Ext(5, vec![1, 2, 3])),
            r#"{"type":5,"data":"AQID"}"#
        );
    }
}
