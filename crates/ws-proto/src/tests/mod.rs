//! Byte-vector tests of the whole state machine (per-module codec tests sit beside
//! their code).
#![allow(clippy::unwrap_used)]

mod close_rules;
mod deflate;
mod fragmentation;
mod handshake;
mod pair;
mod rfc6455;

use std::collections::VecDeque;

use bytes::Bytes;

use crate::{Config, Connection, Event, Role};

/// A masked client frame (the key is fixed: tests need reproducible bytes).
pub(crate) fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

pub(crate) fn server() -> Connection {
    Connection::new(Role::Server, Config::default(), None)
}

pub(crate) fn client() -> Connection {
    Connection::new_client(Config::default(), None, 42)
}

pub(crate) fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Everything queued for transmission, concatenated.
pub(crate) fn transmitted(conn: &mut Connection) -> Vec<u8> {
    let mut out = VecDeque::new();
    conn.poll_transmit(&mut out);
    out.iter().flat_map(|b| b.iter().copied()).collect()
}

/// Feed `bytes` and expect the error's close code and our close frame on the wire.
pub(crate) fn expect_failure(conn: &mut Connection, bytes: &[u8], code: u16) {
    let err = conn.handle_input(bytes).unwrap_err();
    assert_eq!(err.close_code(), code, "{err:?}");
    assert!(conn.is_closed());
    let sent = transmitted(conn);
    let (header, len) = crate::frame::FrameHeader::parse(&sent).unwrap().unwrap();
    assert_eq!(header.opcode, crate::frame::OpCode::Close, "{sent:x?}");
    let mut payload = sent[len..].to_vec();
    if let Some(key) = header.mask {
        crate::frame::apply_mask(&mut payload, key, 0);
    }
    assert_eq!(&payload[..2], &code.to_be_bytes());
}

pub(crate) fn text(s: &str) -> Event {
    Event::Message(crate::Message::Text(Bytes::copy_from_slice(s.as_bytes())))
}
