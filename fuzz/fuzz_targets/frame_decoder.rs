//! Arbitrary bytes, in arbitrary chunking, into a server `Connection` (with and without
//! permessage-deflate, small limits). Checks: no panic, delivered text is UTF-8, an
//! error leaves the connection closed with a close frame queued.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use ws_proto::handshake::DeflateParams;
use ws_proto::{Config, Connection, Event, Message, Role};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&chunk, input)) = rest.split_first() else {
        return;
    };
    let deflate = (flags & 1 != 0).then(|| DeflateParams {
        client_no_context_takeover: flags & 2 != 0,
        ..DeflateParams::default()
    });
    let role = if flags & 4 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let config = Config {
        max_frame_size: 4096,
        max_message_size: 8192,
        ..Config::default()
    };
    let mut conn = Connection::new(role, config, deflate);
    let chunk = usize::from(chunk).max(1);
    let mut out = VecDeque::new();
    for piece in input.chunks(chunk) {
        let result = conn.handle_input(piece);
        while let Some(event) = conn.poll_event() {
            if let Event::Message(Message::Text(t)) = event {
                assert!(std::str::from_utf8(&t).is_ok());
            }
        }
        conn.poll_transmit(&mut out);
        if let Err(e) = result {
            assert!(conn.is_closed());
            assert!([1002, 1007, 1009].contains(&e.close_code()));
            break;
        }
    }
});
