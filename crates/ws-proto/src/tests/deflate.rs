//! RFC 7692 §7.2.3 examples, negotiation, limits.

use super::*;
use crate::handshake::{DeflateConfig, DeflateParams, negotiate_deflate, parse_deflate_response};
use crate::{Message, PreparedMessage};

fn deflate_client(params: DeflateParams) -> Connection {
    Connection::new_client(Config::default(), Some(params), 7)
}

fn deflate_server(params: DeflateParams, config: Config) -> Connection {
    Connection::new(Role::Server, config, Some(params))
}

#[test]
fn rfc7692_hello_single_and_fragmented() {
    let mut c = deflate_client(DeflateParams::default());
    c.handle_input(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello")]);
    // §7.2.3.1 fragmented: only the first frame carries RSV1.
    let mut c = deflate_client(DeflateParams::default());
    c.handle_input(&[
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ])
    .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello")]);
}

#[test]
fn rfc7692_sharing_window() {
    // §7.2.3.2: the second "Hello" refers back into the first one's window.
    let mut c = deflate_client(DeflateParams::default());
    c.handle_input(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    c.handle_input(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00])
        .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello"), text("Hello")]);
}

#[test]
fn rfc7692_no_compression_block_bfinal_and_two_blocks() {
    let mut c = deflate_client(DeflateParams::default());
    // §7.2.3.3: a stored block.
    c.handle_input(&[
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ])
    .unwrap();
    // §7.2.3.4: BFINAL set.
    c.handle_input(&[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00])
        .unwrap();
    // §7.2.3.5: two deflate blocks in one message.
    c.handle_input(&[
        0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ])
    .unwrap();
    assert_eq!(
        events(&mut c),
        vec![text("Hello"), text("Hello"), text("Hello")]
    );
}

#[test]
fn we_compress_hello_like_the_rfc() {
    let config = Config {
        compression_threshold: 0,
        ..Config::default()
    };
    let mut s = deflate_server(DeflateParams::default(), config);
    s.send(Message::text("Hello")).unwrap();
    assert_eq!(
        transmitted(&mut s),
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
}

#[test]
fn below_threshold_is_sent_plain() {
    let mut s = deflate_server(DeflateParams::default(), Config::default());
    s.send(Message::text("Hello")).unwrap();
    assert_eq!(transmitted(&mut s)[0], 0x81);
}

#[test]
fn rsv1_on_continuation_or_control_is_1002() {
    let params = Some(DeflateParams::default());
    let mut s = Connection::new(Role::Server, Config::default(), params);
    let mut input = masked(0x41, &[0xf2, 0x48]);
    input.extend(masked(0xc0, &[0xcd]));
    expect_failure(&mut s, &input, 1002);
    let mut s = Connection::new(Role::Server, Config::default(), params);
    expect_failure(&mut s, &masked(0xc9, b""), 1002);
}

#[test]
fn corrupt_stream_fails_the_connection() {
    let mut c = deflate_client(DeflateParams::default());
    let err = c.handle_input(&[0xc1, 0x02, 0xff, 0xff]).unwrap_err();
    assert_eq!(err, crate::ProtocolError::Inflate);
    assert!(c.is_closed());
}

#[test]
fn decompression_bomb_is_1009() {
    // 16 MiB of zeros compress to ~16 KiB; the limit is 1 MiB.
    let zeros = vec![0u8; 16 << 20];
    let mut compressed = Vec::new();
    let mut deflater = crate::deflate::Deflater::new(15, true, 6);
    deflater.compress(&zeros, &mut compressed);
    assert!(compressed.len() < 64 << 10);
    let mut s = Connection::new(
        Role::Server,
        Config::default(),
        Some(DeflateParams::default()),
    );
    expect_failure(&mut s, &masked(0xc2, &compressed), 1009);
}

#[test]
fn compressed_text_utf8_checked_after_inflate() {
    let mut compressed = Vec::new();
    crate::deflate::Deflater::new(15, true, 6).compress(&[b'a', 0xff], &mut compressed);
    let mut s = Connection::new(
        Role::Server,
        Config::default(),
        Some(DeflateParams::default()),
    );
    expect_failure(&mut s, &masked(0xc1, &compressed), 1007);
}

fn negotiate(offer: &str, cfg: &DeflateConfig) -> Option<(DeflateParams, String)> {
    negotiate_deflate(&[offer], cfg)
}

/// (offer, server config, expected parameters and response header).
type Case<'a> = (&'a str, &'a DeflateConfig, Option<(DeflateParams, &'a str)>);

#[test]
fn negotiation_table() {
    // A server that lets both sides keep their context unless asked otherwise.
    let keep = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        ..DeflateConfig::default()
    };
    let dflt = DeflateConfig::default();
    let p = |s, c, sb, cb| DeflateParams {
        server_no_context_takeover: s,
        client_no_context_takeover: c,
        server_max_window_bits: sb,
        client_max_window_bits: cb,
    };
    let cases: &[Case<'_>] = &[
        (
            "permessage-deflate",
            &keep,
            Some((p(false, false, 15, 15), "permessage-deflate")),
        ),
        (
            "permessage-deflate",
            &dflt,
            Some((
                p(true, true, 15, 15),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            )),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            &keep,
            Some((p(false, false, 15, 15), "permessage-deflate")),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            &keep,
            Some((
                p(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover",
            )),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            &keep,
            Some((
                p(false, false, 10, 15),
                "permessage-deflate; server_max_window_bits=10",
            )),
        ),
        (
            "permessage-deflate; server_max_window_bits=\"12\"",
            &keep,
            Some((
                p(false, false, 12, 15),
                "permessage-deflate; server_max_window_bits=12",
            )),
        ),
        // zlib cannot deflate with 8 bits: accepted as a last resort, then we never
        // compress (see `server_window_8_sends_plain`).
        (
            "permessage-deflate; server_max_window_bits=8",
            &keep,
            Some((
                p(false, false, 8, 15),
                "permessage-deflate; server_max_window_bits=8",
            )),
        ),
        // Bad values, unknown or repeated parameters: decline.
        ("permessage-deflate; server_max_window_bits=16", &keep, None),
        ("permessage-deflate; server_max_window_bits", &keep, None),
        (
            "permessage-deflate; server_max_window_bits=010",
            &keep,
            None,
        ),
        ("permessage-deflate; client_max_window_bits=7", &keep, None),
        ("permessage-deflate; foo", &keep, None),
        (
            "permessage-deflate; server_no_context_takeover=1",
            &keep,
            None,
        ),
        (
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            &keep,
            None,
        ),
        ("x-webkit-deflate-frame", &keep, None),
        // An offer we can fully honour wins over an earlier 8-bit one.
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
            &keep,
            Some((p(false, false, 15, 15), "permessage-deflate")),
        ),
        (
            "foo, permessage-deflate; server_no_context_takeover",
            &keep,
            Some((
                p(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover",
            )),
        ),
    ];
    for (offer, cfg, expect) in cases {
        let got = negotiate(offer, cfg);
        let expect = expect.map(|(p, r)| (p, r.to_owned()));
        assert_eq!(got, expect, "offer {offer:?}");
    }
    // Server-side window requests.
    let small = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 11,
        client_max_window_bits: 10,
    };
    assert_eq!(
        negotiate(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=13",
            &small
        ),
        Some((
            p(false, false, 11, 10),
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10".into()
        ))
    );
    // Without the client's client_max_window_bits we may not ask for it; our own
    // smaller window is announced even unasked (fuzz: client and server must agree).
    assert_eq!(
        negotiate("permessage-deflate", &small),
        Some((
            p(false, false, 11, 15),
            "permessage-deflate; server_max_window_bits=11".into()
        ))
    );
    let (params, response) = negotiate("permessage-deflate", &small).unwrap();
    assert_eq!(parse_deflate_response(&[&response]), Ok(Some(params)));
}

#[test]
fn client_reads_response() {
    assert_eq!(parse_deflate_response(&[]), Ok(None));
    assert_eq!(
        parse_deflate_response(&[
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=8"
        ]),
        Ok(Some(DeflateParams {
            server_no_context_takeover: true,
            server_max_window_bits: 8,
            ..DeflateParams::default()
        }))
    );
    assert!(parse_deflate_response(&["permessage-deflate; client_max_window_bits"]).is_err());
    // A client told to use 8 bits (zlib cannot) sends uncompressed, and says so.
    let eight = parse_deflate_response(&["permessage-deflate; client_max_window_bits=8"])
        .unwrap()
        .unwrap();
    assert_eq!(eight.client_max_window_bits, 8);
    let config = Config {
        compression_threshold: 0,
        ..Config::default()
    };
    let mut c = Connection::new_client(config, Some(eight), 1);
    c.send(Message::text("Hello")).unwrap();
    assert_eq!(transmitted(&mut c)[0], 0x81, "RSV1 clear");
    assert!(parse_deflate_response(&["foo"]).is_err());
    assert!(parse_deflate_response(&["permessage-deflate, permessage-deflate"]).is_err());
}

#[test]
fn prepared_compressed_variant_for_no_context_takeover() {
    let text_body = "hello hello hello hello ".repeat(40);
    let prepared = PreparedMessage::new(Message::text(text_body.clone()));
    let params = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut a = deflate_server(params, Config::default());
    let mut b = deflate_server(params, Config::default());
    let mut keep = deflate_server(DeflateParams::default(), Config::default());
    for conn in [&mut a, &mut b, &mut keep] {
        conn.send_prepared(&prepared).unwrap();
    }
    let mut out = VecDeque::new();
    a.poll_transmit(&mut out);
    b.poll_transmit(&mut out);
    keep.poll_transmit(&mut out);
    assert_eq!(
        out[0].as_ptr(),
        out[1].as_ptr(),
        "one compressed frame shared"
    );
    assert_eq!(out[0][0], 0xc1);
    assert!(out[0].len() < text_body.len() / 4);
    assert_eq!(out[2].as_ptr(), prepared.plain_frame().as_ptr());
    // Both variants decode on a client.
    for frame in [&out[0], &out[2]] {
        let mut c = deflate_client(params);
        c.handle_input(frame).unwrap();
        assert_eq!(events(&mut c), vec![text(&text_body)]);
    }
}

#[test]
fn unlimited_inflate_does_not_overflow() {
    // Fuzz regression: a limit of usize::MAX overflowed `max + 1`.
    let mut inflater = crate::deflate::Inflater::new(false);
    let mut out = Vec::new();
    inflater
        .inflate(
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            &mut out,
            usize::MAX,
        )
        .unwrap();
    inflater.finish(&mut out, usize::MAX).unwrap();
    assert_eq!(out, b"Hello");
}

#[test]
fn server_window_8_sends_plain_but_inflates() {
    let (params, _) = negotiate(
        "permessage-deflate; server_max_window_bits=8",
        &DeflateConfig::default(),
    )
    .unwrap();
    let config = Config {
        compression_threshold: 0,
        ..Config::default()
    };
    let mut s = deflate_server(params, config);
    s.send(Message::text("Hello")).unwrap();
    let prepared = PreparedMessage::new(Message::text("Hello"));
    s.send_prepared(&prepared).unwrap();
    let sent = transmitted(&mut s);
    assert_eq!(
        sent,
        [&prepared.plain_frame()[..], &prepared.plain_frame()[..]].concat()
    );
    s.handle_input(&masked(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))
        .unwrap();
    assert_eq!(events(&mut s), vec![text("Hello")]);
}

#[test]
fn no_context_takeover_connections_hold_no_compressor() {
    let config = Config {
        compression_threshold: 0,
        ..Config::default()
    };
    let reset = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut s = deflate_server(reset, config.clone());
    s.send(Message::text("Hello")).unwrap();
    s.send(Message::text("Hello")).unwrap();
    // Each message starts from an empty window: both frames are identical.
    let sent = transmitted(&mut s);
    assert_eq!(sent[..9], sent[9..]);
    assert_eq!(
        sent[..9],
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
    let own = |c: &Connection| c.deflate.as_ref().unwrap().deflater.has_own_stream();
    assert!(!own(&s), "borrowed the per-thread compressor");
    // With context takeover the connection keeps its own stream (and the window).
    let mut keep = deflate_server(DeflateParams::default(), config);
    keep.send(Message::text("Hello")).unwrap();
    keep.send(Message::text("Hello")).unwrap();
    assert!(own(&keep));
    let sent = transmitted(&mut keep);
    assert_eq!(sent[9..], [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
}

/// Chrome's exact offer (Firefox and Safari send the same): the default server answers
/// with both no-context-takeover parameters, the second unasked (RFC 7692 §7.1.1.1), and
/// leaves `client_max_window_bits` out (15 is the default; §7.1.2.2).
#[test]
fn chrome_offer_gets_both_no_context_takeovers() {
    let chrome = "permessage-deflate; client_max_window_bits";
    let (params, response) = negotiate(chrome, &DeflateConfig::default()).unwrap();
    assert_eq!(
        response.as_bytes(),
        b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    assert_eq!(
        params,
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    );
    // Our own client reads the answer back to the same parameters.
    assert_eq!(parse_deflate_response(&[&response]), Ok(Some(params)));
    // And the whole 101 response, byte for byte.
    let accept = crate::handshake::ServerAccept {
        accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
        protocols: Vec::new(),
        extensions: vec![chrome.into()],
    };
    assert_eq!(
        accept.response(None, Some(&response)),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
          Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n"
    );
}

/// Compress like a browser told `client_no_context_takeover`: every message from an
/// empty window.
fn client_compressed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::deflate::Deflater::new(15, true, 6).compress(body, &mut out);
    out
}

#[test]
fn no_context_takeover_inflates_across_messages_and_holds_no_stream() {
    let (params, _) = negotiate(
        "permessage-deflate; client_max_window_bits",
        &DeflateConfig::default(),
    )
    .unwrap();
    let mut s = deflate_server(params, Config::default());
    let has = |c: &Connection| c.deflate.as_ref().unwrap().inflater.has_stream();
    assert!(!has(&s));
    let first = br#"{"channel":"chat","text":"hello hello hello, how are you all doing today?"}"#;
    let second = br#"{"channel":"chat","text":"hello again, hello hello"}"#;
    let frame_one = masked(0xc1, &client_compressed(first));
    // The first message split mid-payload: the stream is held only while it is half-read.
    let (head, tail) = frame_one.split_at(frame_one.len() - 3);
    s.handle_input(head).unwrap();
    assert!(has(&s), "a half-read message owns its decompressor");
    s.handle_input(tail).unwrap();
    assert!(!has(&s), "given back to the pool when the message ended");
    // The second, compressed from an empty window, decodes on its own.
    s.handle_input(&masked(0xc1, &client_compressed(second)))
        .unwrap();
    // RFC 7692 §7.2.3.1 fragments: RSV1 on the first only, then a plain message.
    let third = client_compressed(b"Hello");
    let (a, b) = third.split_at(2);
    let mut input = masked(0x41, a);
    input.extend(masked(0x80, b));
    input.extend(masked(0x81, b"plain"));
    s.handle_input(&input).unwrap();
    assert!(!has(&s));
    assert_eq!(
        events(&mut s),
        vec![
            text(std::str::from_utf8(first).unwrap()),
            text(std::str::from_utf8(second).unwrap()),
            text("Hello"),
            text("plain"),
        ]
    );
}

#[test]
fn pooled_inflater_is_clean_for_the_next_connection() {
    let params = DeflateParams {
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };
    // Connection a fails mid-message on corrupt data: its stream is not pooled.
    let mut a = deflate_server(params, Config::default());
    let mut bad = client_compressed(b"Hello there");
    bad.truncate(3);
    a.handle_input(&masked(0x41, &bad)).unwrap();
    expect_failure(&mut a, &masked(0x80, &[0xff, 0xff, 0xff]), 1007);
    // b and c take turns on this thread's pool; each message decodes alone.
    let mut b = deflate_server(params, Config::default());
    let mut c = deflate_server(params, Config::default());
    for round in 0..3 {
        let body = format!("round {round}: hello hello hello");
        b.handle_input(&masked(0xc1, &client_compressed(body.as_bytes())))
            .unwrap();
        c.handle_input(&masked(0xc1, &client_compressed(body.as_bytes())))
            .unwrap();
        assert_eq!(events(&mut b), vec![text(&body)]);
        assert_eq!(events(&mut c), vec![text(&body)]);
    }
}

#[test]
fn context_takeover_keeps_its_own_stream() {
    // A server configured to let clients keep context must keep the window: §7.2.3.2.
    let mut s = deflate_server(DeflateParams::default(), Config::default());
    s.handle_input(&masked(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))
        .unwrap();
    assert!(s.deflate.as_ref().unwrap().inflater.has_stream());
    s.handle_input(&masked(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]))
        .unwrap();
    assert_eq!(events(&mut s), vec![text("Hello"), text("Hello")]);
}
