//! A client `Connection` and a server `Connection` driven against each other in memory.

use bytes::Bytes;

use super::*;
use crate::handshake::{DeflateConfig, negotiate_deflate};
use crate::{CloseFrame, Message, PreparedMessage, State};

/// Move everything `from` wants to send into `to`, in chunks of `chunk` bytes.
fn pump(from: &mut Connection, to: &mut Connection, chunk: usize) {
    let bytes = transmitted(from);
    for piece in bytes.chunks(chunk.max(1)) {
        to.handle_input(piece).unwrap();
    }
}

fn pair(compressed: bool) -> (Connection, Connection) {
    let params = compressed.then(|| {
        let offer = DeflateConfig::default().client_offer();
        negotiate_deflate(&[&offer], &DeflateConfig::default())
            .unwrap()
            .0
    });
    let config = Config {
        compression_threshold: 16,
        ..Config::default()
    };
    (
        Connection::new_client(config.clone(), params, 0xDEAD_BEEF),
        Connection::new(Role::Server, config, params),
    )
}

#[test]
fn messages_both_ways_with_and_without_compression() {
    for compressed in [false, true] {
        for chunk in [1, 7, 4096] {
            let (mut c, mut s) = pair(compressed);
            let long = "the quick brown fox jumps over the lazy dog ".repeat(50);
            let binary: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            for msg in [
                Message::text("hi"),
                Message::text(long.clone()),
                Message::binary(binary.clone()),
                Message::text(long.clone()),
            ] {
                c.send(msg.clone()).unwrap();
                pump(&mut c, &mut s, chunk);
                assert_eq!(events(&mut s), vec![Event::Message(msg.clone())]);
                s.send(msg.clone()).unwrap();
                pump(&mut s, &mut c, chunk);
                assert_eq!(events(&mut c), vec![Event::Message(msg)]);
            }
            // Prepared frames from the server reach the client.
            let prepared = PreparedMessage::new(Message::text(long.clone()));
            s.send_prepared(&prepared).unwrap();
            pump(&mut s, &mut c, chunk);
            assert_eq!(events(&mut c), vec![Event::Message(Message::text(long))]);
            // And a client can send a prepared message (re-encoded with a mask).
            c.send_prepared(&prepared).unwrap();
            pump(&mut c, &mut s, chunk);
            assert_eq!(events(&mut s).len(), 1);
            ping_and_close(&mut c, &mut s);
        }
    }
}

fn ping_and_close(c: &mut Connection, s: &mut Connection) {
    c.ping(Bytes::from_static(b"are you there")).unwrap();
    pump(c, s, 3);
    assert_eq!(
        events(s),
        vec![Event::Ping(Bytes::from_static(b"are you there"))]
    );
    pump(s, c, 3);
    assert_eq!(
        events(c),
        vec![Event::Pong(Bytes::from_static(b"are you there"))]
    );
    c.close(1000, "done").unwrap();
    assert_eq!(c.state(), State::Closing);
    pump(c, s, 5);
    let close = CloseFrame {
        code: 1000,
        reason: "done".into(),
    };
    assert_eq!(events(s), vec![Event::Close(close)]);
    assert!(s.is_closed());
    pump(s, c, 5);
    assert!(c.is_closed());
    assert!(matches!(c.poll_event(), Some(Event::Close(f)) if f.code == 1000));
}

#[test]
fn client_masks_every_frame_with_varying_keys() {
    let (mut c, _) = pair(false);
    c.send(Message::text("a")).unwrap();
    c.send(Message::text("a")).unwrap();
    let bytes = transmitted(&mut c);
    assert_eq!(bytes.len(), 14);
    assert_eq!(bytes[1] & 0x80, 0x80);
    assert_eq!(bytes[8] & 0x80, 0x80);
    assert_ne!(bytes[2..6], bytes[9..13], "keys differ");
}
