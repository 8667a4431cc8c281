//! Arbitrary operation sequences on a client/server pair (with or without deflate):
//! sends, pings, closes, raw input, and pumping in arbitrary chunk sizes. Checks that
//! whatever one side sends the other accepts, messages arrive intact and in order.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ws_proto::handshake::DeflateParams;
use ws_proto::{Config, Connection, Event, Message, PreparedMessage, Role};

#[derive(Debug, Arbitrary)]
enum Op {
    SendText {
        from_client: bool,
        text: String,
    },
    SendBinary {
        from_client: bool,
        data: Vec<u8>,
    },
    SendPrepared(String),
    Ping {
        from_client: bool,
        data: Vec<u8>,
    },
    Close {
        from_client: bool,
        code: u16,
        reason: String,
    },
    Pump {
        to_server: bool,
        chunk: u8,
    },
    /// Raw bytes into the server: may break the protocol, after which the pair stops.
    Garbage(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    deflate: Option<(bool, bool, u8, u8)>,
    threshold: u8,
    ops: Vec<Op>,
}

struct Side {
    conn: Connection,
    expected: VecDeque<Message>,
}

fuzz_target!(|input: Input| {
    let params = input.deflate.map(|(s, c, sb, cb)| DeflateParams {
        server_no_context_takeover: s,
        client_no_context_takeover: c,
        server_max_window_bits: 9 + sb % 7,
        client_max_window_bits: 9 + cb % 7,
    });
    let config = Config {
        compression_threshold: usize::from(input.threshold),
        ..Config::default()
    };
    let mut client = Side {
        conn: Connection::new_client(config.clone(), params, 1),
        expected: VecDeque::new(),
    };
    let mut server = Side {
        conn: Connection::new(Role::Server, config, params),
        expected: VecDeque::new(),
    };
    let mut broken = false;
    for op in input.ops.into_iter().take(64) {
        match op {
            Op::SendText { from_client, text } => {
                let (from, to) = pick(&mut client, &mut server, from_client);
                if from.conn.send(Message::text(text.clone())).is_ok() {
                    to.expected.push_back(Message::text(text));
                }
            }
            Op::SendBinary { from_client, data } => {
                let (from, to) = pick(&mut client, &mut server, from_client);
                if from.conn.send(Message::binary(data.clone())).is_ok() {
                    to.expected.push_back(Message::binary(data));
                }
            }
            Op::SendPrepared(text) => {
                let prepared = PreparedMessage::new(Message::text(text.clone()));
                if server.conn.send_prepared(&prepared).is_ok() {
                    client.expected.push_back(Message::text(text));
                }
            }
            Op::Ping { from_client, data } => {
                let (from, _) = pick(&mut client, &mut server, from_client);
                let _ = from.conn.ping(Bytes::from(data));
            }
            Op::Close {
                from_client,
                code,
                reason,
            } => {
                let (from, _) = pick(&mut client, &mut server, from_client);
                let _ = from.conn.close(code, &reason);
            }
            Op::Pump { to_server, chunk } => {
                let (to, from) = pick(&mut server, &mut client, to_server);
                let mut out = VecDeque::new();
                from.conn.poll_transmit(&mut out);
                let bytes: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
                for piece in bytes.chunks(usize::from(chunk).max(1)) {
                    if !broken {
                        to.conn.handle_input(piece).expect("peer output is valid");
                    }
                }
                while let Some(event) = to.conn.poll_event() {
                    if let Event::Message(m) = event {
                        if !broken {
                            assert_eq!(Some(m), to.expected.pop_front());
                        }
                    }
                }
            }
            Op::Garbage(data) => {
                // Garbage may complete or start frames, or fail the connection:
                // expectations no longer hold either way.
                let _ = server.conn.handle_input(&data);
                broken = true;
            }
        }
    }
});

fn pick<'a>(a: &'a mut Side, b: &'a mut Side, first: bool) -> (&'a mut Side, &'a mut Side) {
    if first { (a, b) } else { (b, a) }
}
