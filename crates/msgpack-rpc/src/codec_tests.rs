#![allow(clippy::unwrap_used)]

use super::*;
use crate::encode::{encode, encode_value};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// What a stock Ruby client sends for `call(:push_data, '{"hello":"world"}')`.
const RUBY_PUSH: &str = "94 00 00 a9 70757368 5f64617461 91 b1 7b2268656c6c6f223a22776f726c64227d";

fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty(), "left over: {buf:02x?}");
    Ok(out)
}

fn decode_one(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut all = decode_all(bytes)?;
    assert_eq!(all.len(), 1);
    Ok(all.remove(0))
}

fn push_request(method: &'static str) -> Message {
    Message::request(0, method, vec![Value::from(r#"{"hello":"world"}"#)])
}

#[test]
fn ruby_push_data_request_and_reply() {
    assert_eq!(
        decode_one(&hex(RUBY_PUSH)).unwrap(),
        push_request("push_data")
    );
    let mut out = BytesMut::new();
    encode(&push_request("push_data"), &mut out);
    assert_eq!(&out[..], &hex(RUBY_PUSH)[..]);
    out.clear();
    encode(&Message::response_ok(0, Value::Nil), &mut out);
    assert_eq!(&out[..], &hex("94 01 00 c0 c0")[..]);
    assert_eq!(
        decode_one(&out).unwrap(),
        Message::response_ok(0, Value::Nil)
    );
}

#[test]
fn one_byte_at_a_time() {
    let bytes = hex(RUBY_PUSH);
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let got = dec.decode(&mut buf).unwrap();
        if i + 1 < bytes.len() {
            assert_eq!(got, None, "complete after {} bytes", i + 1);
        } else {
            assert_eq!(got, Some(push_request("push_data")));
        }
    }
    assert!(buf.is_empty());
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
}

#[test]
fn many_messages_in_one_buffer_split_anywhere() {
    let mut stream = BytesMut::new();
    let mut expected = Vec::new();
    for i in 0..50u32 {
        let msg = match i % 3 {
            0 => Message::request(
                i,
                "m",
                vec![Value::from(i), Value::from("x".repeat(i as usize * 7))],
            ),
            1 => Message::response_err(i, Value::from("boom")),
            _ => Message::notification("n", vec![Value::Array(vec![Value::Nil; i as usize])]),
        };
        encode(&msg, &mut stream);
        expected.push(msg);
    }
    assert_eq!(decode_all(&stream).unwrap(), expected);
    for chunk in [1, 2, 3, 7, 64, 1000] {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, expected, "chunk {chunk}");
    }
}

#[test]
fn every_string_width_for_method_and_values() {
    // fixraw, old raw16 (da), raw32 (db), str8 (d9), bin8/16/32.
    let forms = [
        "a9 70757368 5f64617461",
        "da 0009 70757368 5f64617461",
        "db 00000009 70757368 5f64617461",
        "d9 09 70757368 5f64617461",
        "c4 09 70757368 5f64617461",
        "c5 0009 70757368 5f64617461",
        "c6 00000009 70757368 5f64617461",
    ];
    for form in forms {
        let msg = decode_one(&hex(&format!("94 00 07 {form} 90"))).unwrap();
        assert_eq!(msg, Message::request(7, "push_data", vec![]), "{form}");
        let note = decode_one(&hex(&format!("93 02 {form} 91 {form}"))).unwrap();
        let Message::Notification { method, params } = note else {
            panic!()
        };
        assert_eq!(&method[..], b"push_data");
        assert_eq!(params.len(), 1);
        assert_eq!(
            params[0]
                .as_slice()
                .or(params[0].as_str().map(str::as_bytes)),
            Some(&b"push_data"[..])
        );
    }
}

#[test]
fn invalid_utf8_is_kept_as_bytes() {
    let msg = decode_one(&hex("94 00 01 a2 ff fe 91 a3 61 ff 62")).unwrap();
    let Message::Request { method, params, .. } = msg else {
        panic!()
    };
    assert_eq!(&method[..], &[0xff, 0xfe]);
    assert_eq!(crate::message::method_name(&method), "\u{fffd}\u{fffd}");
    let Value::String(s) = &params[0] else {
        panic!("{params:?}")
    };
    assert!(s.is_err());
    assert_eq!(s.as_bytes(), &[0x61, 0xff, 0x62]);
    // And it round-trips byte for byte.
    let mut out = BytesMut::new();
    encode_value(&params[0], &mut out);
    assert_eq!(&out[..], &hex("a3 61 ff 62")[..]);
}

#[test]
fn values_round_trip_with_smallest_widths() {
    let cases: &[(Value, &str)] = &[
        (Value::from(0), "00"),
        (Value::from(127), "7f"),
        (Value::from(128), "cc 80"),
        (Value::from(65535), "cd ffff"),
        (Value::from(65536), "ce 00010000"),
        (Value::from(u64::MAX), "cf ffffffffffffffff"),
        (Value::from(-1), "ff"),
        (Value::from(-32), "e0"),
        (Value::from(-33), "d0 df"),
        (Value::from(-129), "d1 ff7f"),
        (Value::from(-40000), "d2 ffff63c0"),
        (Value::from(i64::MIN), "d3 8000000000000000"),
        (Value::from(true), "c3"),
        (Value::F32(1.5), "ca 3fc00000"),
        (Value::F64(1.5), "cb 3ff8000000000000"),
        (
            Value::from("a".repeat(32)),
            &format!("da 0020 {}", "61".repeat(32)),
        ),
        (Value::Binary(vec![1, 2]), "c4 02 0102"),
        (Value::Ext(5, vec![9; 4]), "d6 05 09090909"),
        (Value::Ext(-1, vec![9; 3]), "c7 03 ff 090909"),
        (
            Value::Map(vec![(Value::from("k"), Value::Nil)]),
            "81 a1 6b c0",
        ),
        (
            Value::Array((0..16).map(Value::from).collect()),
            "dc 0010 000102030405060708090a0b0c0d0e0f",
        ),
    ];
    for (value, bytes) in cases {
        let mut out = BytesMut::new();
        encode_value(value, &mut out);
        assert_eq!(&out[..], &hex(bytes)[..], "{value:?}");
        let msg = decode_one(&hex(&format!("94 01 00 c0 {bytes}"))).unwrap();
        assert_eq!(msg, Message::response_ok(0, value.clone()));
    }
    // Signed widths, which some encoders use for small positives, too.
    let msg = decode_one(&hex("94 d0 01 d1 0005 c0 d2 00000003")).unwrap();
    assert_eq!(msg, Message::response_ok(5, Value::from(3)));
}

#[test]
fn malformed_messages_are_typed_errors() {
    let cases: &[(&str, DecodeError)] = &[
        ("c0", DecodeError::NotAnArray),
        ("a3 616263", DecodeError::NotAnArray),
        ("82 00 00 01 01", DecodeError::NotAnArray),
        ("92 00 00", DecodeError::BadLength { len: 2 }),
        ("95 00 00 a1 6d 90 c0", DecodeError::BadLength { len: 5 }),
        ("94 03 00 a1 6d 90", DecodeError::UnknownType(3)),
        ("94 ff 00 a1 6d 90", DecodeError::UnknownType(-1)),
        ("94 a1 30 00 a1 6d 90", DecodeError::TypeNotInteger),
        (
            "93 00 00 a1 6d",
            DecodeError::WrongArity {
                kind: 0,
                expected: 4,
                len: 3,
            },
        ),
        (
            "93 01 00 c0",
            DecodeError::WrongArity {
                kind: 1,
                expected: 4,
                len: 3,
            },
        ),
        (
            "94 02 a1 6d 90 c0",
            DecodeError::WrongArity {
                kind: 2,
                expected: 3,
                len: 4,
            },
        ),
        ("94 00 ff a1 6d 90", DecodeError::BadMsgId),
        ("94 00 cf 0000000100000000 a1 6d 90", DecodeError::BadMsgId),
        ("94 00 a1 31 a1 6d 90", DecodeError::BadMsgId),
        ("94 00 00 01 90", DecodeError::BadMethod),
        ("94 00 00 c0 90", DecodeError::BadMethod),
        ("93 02 90 90", DecodeError::BadMethod),
        ("94 00 00 a1 6d c0", DecodeError::BadParams),
        ("94 00 00 a1 6d a0", DecodeError::BadParams),
        ("c1", DecodeError::ReservedByte),
        ("94 00 00 a1 6d 91 c1", DecodeError::ReservedByte),
    ];
    for (bytes, err) in cases {
        assert_eq!(decode_all(&hex(bytes)), Err(err.clone()), "{bytes}");
    }
    // The largest msgid is fine.
    let msg = decode_one(&hex("94 00 ce ffffffff a1 6d 90")).unwrap();
    assert_eq!(msg, Message::request(u32::MAX, "m", vec![]));
}

#[test]
fn limits_are_checked_from_headers_before_the_body_arrives() {
    let mut dec = Decoder::new(1024);
    // A 4 GiB string header: refused after 9 bytes, nothing allocated.
    let mut buf = BytesMut::from(&hex("94 00 00 db ffffffff")[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(DecodeError::TooLarge { limit: 1024 })
    );
    // An array claiming 2^32-1 elements in a tiny message.
    let mut buf = BytesMut::from(&hex("94 00 00 a1 6d dd ffffffff")[..]);
    assert_eq!(
        Decoder::new(1024).decode(&mut buf),
        Err(DecodeError::TooLarge { limit: 1024 })
    );
    // A map claiming many pairs is counted twice.
    let limits = Limits {
        max_elements: 10,
        ..Limits::default()
    };
    let mut buf = BytesMut::from(&hex("94 00 00 a1 6d 91 85")[..]);
    let got = Decoder::with_limits(limits).decode(&mut buf);
    assert_eq!(got, Err(DecodeError::TooManyElements { limit: 10 }));
    // Nesting.
    let limits = Limits {
        max_depth: 4,
        ..Limits::default()
    };
    let ok = hex("94 00 00 a1 6d 91 91 91 c0");
    assert!(
        Decoder::with_limits(limits)
            .decode(&mut BytesMut::from(&ok[..]))
            .unwrap()
            .is_some()
    );
    let deep = hex("94 00 00 a1 6d 91 91 91 91 c0");
    let got = Decoder::with_limits(limits).decode(&mut BytesMut::from(&deep[..]));
    assert_eq!(got, Err(DecodeError::TooDeep { limit: 4 }));
    // Many small elements past the size limit, without any large header.
    let mut big = hex("94 00 00 a1 6d dc ffff");
    big.extend(std::iter::repeat_n(0xc0, 2000));
    let got = Decoder::new(1024).decode(&mut BytesMut::from(&big[..]));
    assert_eq!(got, Err(DecodeError::TooLarge { limit: 1024 }));
}

/// Feeds `stream` in `chunk`-byte pieces; the bytes fed when decoding failed.
fn fed_until_error(dec: &mut Decoder, stream: &[u8], chunk: usize) -> Option<usize> {
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        if dec.decode(&mut buf).is_err() {
            return Some(buf.len());
        }
    }
    None
}

/// A server holds no more of a message than its limit (plus one read) before refusing
/// it: with a 4 KiB limit, as before `auth`, a 16 MiB push is refused from its header
/// and a message of small strings once the scan passes 4 KiB.
#[test]
fn a_small_limit_refuses_a_large_message_after_a_few_kib() {
    let limit = 4 << 10;
    let mut one_string = BytesMut::new();
    let blob = Value::Binary(vec![7; 16 << 20]);
    encode(
        &Message::request(1, "push_data", vec![blob]),
        &mut one_string,
    );
    let fed = fed_until_error(&mut Decoder::new(limit), &one_string, 1024);
    assert_eq!(fed, Some(1024), "refused from the bin32 header");

    let mut many = BytesMut::new();
    let strings = vec![Value::from("x".repeat(100)); 1000];
    encode(&Message::request(1, "push_data", strings), &mut many);
    let fed = fed_until_error(&mut Decoder::new(limit), &many, 512).unwrap();
    assert!(fed <= limit + 512, "refused after {fed} bytes");
}

/// What a server does once `auth` succeeded: the next message is decoded under
/// the raised limits, also when it was already partly scanned.
#[test]
fn raised_limits_apply_to_the_next_message_and_to_one_half_scanned() {
    let small = Limits {
        max_message_size: 4 << 10,
        ..Limits::default()
    };
    let mut stream = BytesMut::new();
    encode(&push_request("auth"), &mut stream);
    let big = Message::request(1, "push_data", vec![Value::from("y".repeat(64 << 10))]);
    encode(&big, &mut stream);
    let mut dec = Decoder::with_limits(small);
    assert_eq!(dec.decode(&mut stream).unwrap(), Some(push_request("auth")));
    dec.set_limits(Limits::default());
    assert_eq!(dec.decode(&mut stream).unwrap(), Some(big));

    // Eight 1000-byte strings: the first three are scanned under 4 KiB.
    let parts = Message::request(2, "m", vec![Value::from("z".repeat(1000)); 8]);
    let mut whole = BytesMut::new();
    encode(&parts, &mut whole);
    let mut dec = Decoder::with_limits(small);
    let mut buf = BytesMut::from(&whole[..3100]);
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    dec.set_limits(Limits::default());
    buf.extend_from_slice(&whole[3100..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(parts));
}

#[test]
fn large_message_in_chunks_scans_each_byte_once() {
    let payload = "z".repeat(1 << 20);
    let msg = Message::notification("big", vec![Value::from(payload.as_str()); 4]);
    let mut stream = BytesMut::new();
    encode(&msg, &mut stream);
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    let mut got = None;
    for piece in stream.chunks(64 << 10) {
        buf.extend_from_slice(piece);
        assert!(got.is_none());
        got = dec.decode(&mut buf).unwrap();
        // The scan position only moves forward and never past the buffer.
        assert!(dec.pos <= buf.len());
    }
    assert_eq!(got, Some(msg));
}

#[test]
fn value_size_matches_the_documented_amplification() {
    assert!(std::mem::size_of::<Value>() <= 40);
}
