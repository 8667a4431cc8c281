//! The encoder: messages and values into a `BytesMut`, appended, so a
//! connection can batch many messages into one write.
//!
//! Strings of 32..=255 bytes are written as str16 (`da`), never str8 (`d9`):
//! str8 appeared in the 2013 spec revision, so pre-2013 decoders (old Ruby,
//! Python, Java clients still in service) reject it, while every decoder
//! reads `da` as a string (old "raw16"). It costs one byte.

use bytes::{BufMut, BytesMut};
use rmpv::Value;

use crate::message::{Message, NOTIFICATION, REQUEST, RESPONSE};

/// Appends the encoding of `msg` to `out`.
pub fn encode(msg: &Message, out: &mut BytesMut) {
    match msg {
        Message::Request {
            msgid,
            method,
            params,
        } => encode_request(*msgid, method, params, out),
        Message::Response {
            msgid,
            error,
            result,
        } => {
            put_len(out, 4, 0x90, 0xdc, 0xdd);
            put_uint(out, u64::from(RESPONSE));
            put_uint(out, u64::from(*msgid));
            encode_value(error, out);
            encode_value(result, out);
        }
        Message::Notification { method, params } => encode_notification(method, params, out),
    }
}

/// Appends a request without building a [`Message`] (no copy of the method
/// name or params).
pub fn encode_request(msgid: u32, method: &[u8], params: &[Value], out: &mut BytesMut) {
    put_len(out, 4, 0x90, 0xdc, 0xdd);
    put_uint(out, u64::from(REQUEST));
    put_uint(out, u64::from(msgid));
    put_str(out, method);
    put_array(out, params);
}

/// Appends a notification without building a [`Message`].
pub fn encode_notification(method: &[u8], params: &[Value], out: &mut BytesMut) {
    put_len(out, 3, 0x90, 0xdc, 0xdd);
    put_uint(out, u64::from(NOTIFICATION));
    put_str(out, method);
    put_array(out, params);
}

/// Appends the encoding of one value to `out` (smallest integer width,
/// strings never as str8: see the module docs).
pub fn encode_value(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Nil => out.put_u8(0xc0),
        Value::Boolean(b) => out.put_u8(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => put_uint(out, u),
            (None, Some(i)) => put_neg(out, i),
            // rmpv integers are always one of the two.
            (None, None) => out.put_u8(0xc0),
        },
        Value::F32(f) => {
            out.put_u8(0xca);
            out.put_f32(*f);
        }
        Value::F64(f) => {
            out.put_u8(0xcb);
            out.put_f64(*f);
        }
        Value::String(s) => put_str(out, s.as_bytes()),
        Value::Binary(b) => {
            put_bin_len(out, b.len());
            out.put_slice(b);
        }
        Value::Array(items) => put_array(out, items),
        Value::Map(pairs) => {
            put_len(out, pairs.len(), 0x80, 0xde, 0xdf);
            for (k, v) in pairs {
                encode_value(k, out);
                encode_value(v, out);
            }
        }
        Value::Ext(ty, data) => {
            put_ext_header(out, *ty, data.len());
            out.put_slice(data);
        }
    }
}

fn put_array(out: &mut BytesMut, items: &[Value]) {
    put_len(out, items.len(), 0x90, 0xdc, 0xdd);
    for v in items {
        encode_value(v, out);
    }
}

/// MessagePack cannot represent lengths over `u32::MAX`; such a value (4 GiB
/// in one string) would be far over any peer's limit, so it saturates.
fn len32(len: usize) -> u32 {
    debug_assert!(u32::try_from(len).is_ok(), "length {len} not representable");
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Array and map headers: `fix` for 0..16 elements, then 16- and 32-bit.
fn put_len(out: &mut BytesMut, len: usize, fix: u8, m16: u8, m32: u8) {
    let len = len32(len);
    if len < 16 {
        out.put_u8(fix | len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.put_u8(m16);
        out.put_u16(n);
    } else {
        out.put_u8(m32);
        out.put_u32(len);
    }
}

fn put_str(out: &mut BytesMut, s: &[u8]) {
    let len = len32(s.len());
    if len < 32 {
        out.put_u8(0xa0 | len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.put_u8(0xda);
        out.put_u16(n);
    } else {
        out.put_u8(0xdb);
        out.put_u32(len);
    }
    out.put_slice(s);
}

fn put_bin_len(out: &mut BytesMut, len: usize) {
    let len = len32(len);
    if let Ok(n) = u8::try_from(len) {
        out.put_u8(0xc4);
        out.put_u8(n);
    } else if let Ok(n) = u16::try_from(len) {
        out.put_u8(0xc5);
        out.put_u16(n);
    } else {
        out.put_u8(0xc6);
        out.put_u32(len);
    }
}

fn put_ext_header(out: &mut BytesMut, ty: i8, len: usize) {
    let fixed = match len {
        1 => Some(0xd4),
        2 => Some(0xd5),
        4 => Some(0xd6),
        8 => Some(0xd7),
        16 => Some(0xd8),
        _ => None,
    };
    if let Some(marker) = fixed {
        out.put_u8(marker);
    } else {
        let len = len32(len);
        if let Ok(n) = u8::try_from(len) {
            out.put_u8(0xc7);
            out.put_u8(n);
        } else if let Ok(n) = u16::try_from(len) {
            out.put_u8(0xc8);
            out.put_u16(n);
        } else {
            out.put_u8(0xc9);
            out.put_u32(len);
        }
    }
    out.put_i8(ty);
}

fn put_uint(out: &mut BytesMut, n: u64) {
    if n < 0x80 {
        out.put_u8(n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.put_u8(0xcc);
        out.put_u8(n);
    } else if let Ok(n) = u16::try_from(n) {
        out.put_u8(0xcd);
        out.put_u16(n);
    } else if let Ok(n) = u32::try_from(n) {
        out.put_u8(0xce);
        out.put_u32(n);
    } else {
        out.put_u8(0xcf);
        out.put_u64(n);
    }
}

fn put_neg(out: &mut BytesMut, n: i64) {
    if n >= -32 {
        out.put_i8(n as i8);
    } else if let Ok(n) = i8::try_from(n) {
        out.put_u8(0xd0);
        out.put_i8(n);
    } else if let Ok(n) = i16::try_from(n) {
        out.put_u8(0xd1);
        out.put_i16(n);
    } else if let Ok(n) = i32::try_from(n) {
        out.put_u8(0xd2);
        out.put_i32(n);
    } else {
        out.put_u8(0xd3);
        out.put_i64(n);
    }
}
