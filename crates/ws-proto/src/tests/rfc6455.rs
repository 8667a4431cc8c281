//! RFC 6455 §5.7 examples and basic flows through a `Connection`.

use bytes::Bytes;

use super::*;
use crate::{Message, State};

#[test]
fn single_frame_unmasked_text_to_client() {
    let mut c = client();
    c.handle_input(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello")]);
}

#[test]
fn single_frame_masked_text_to_server_any_chunking() {
    let bytes = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut s = server();
    s.handle_input(&bytes).unwrap();
    assert_eq!(events(&mut s), vec![text("Hello")]);
    for split in 1..bytes.len() {
        let mut s = server();
        s.handle_input(&bytes[..split]).unwrap();
        assert!(s.poll_event().is_none());
        s.handle_input(&bytes[split..]).unwrap();
        assert_eq!(events(&mut s), vec![text("Hello")], "split {split}");
    }
    let mut s = server();
    for b in bytes {
        s.handle_input(&[b]).unwrap();
    }
    assert_eq!(events(&mut s), vec![text("Hello")]);
}

#[test]
fn fragmented_unmasked_text() {
    let mut c = client();
    c.handle_input(&[0x01, 0x03, 0x48, 0x65, 0x6c]).unwrap();
    assert!(c.poll_event().is_none());
    c.handle_input(&[0x80, 0x02, 0x6c, 0x6f]).unwrap();
    assert_eq!(events(&mut c), vec![text("Hello")]);
}

#[test]
fn ping_answered_with_same_payload() {
    let mut s = server();
    s.handle_input(&masked(0x89, b"Hello")).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Ping(Bytes::from_static(b"Hello"))]
    );
    // §5.7: unmasked pong "8a 05 48 65 6c 6c 6f".
    assert_eq!(
        transmitted(&mut s),
        [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    // A client's pong is masked, and still carries the payload.
    let mut c = client();
    c.handle_input(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        .unwrap();
    let pong = transmitted(&mut c);
    assert_eq!(&pong[..2], &[0x8a, 0x85]);
    let mut payload = pong[6..].to_vec();
    crate::frame::apply_mask(&mut payload, [pong[2], pong[3], pong[4], pong[5]], 0);
    assert_eq!(payload, b"Hello");
}

#[test]
fn unsolicited_pong_ignored() {
    let mut s = server();
    s.handle_input(&masked(0x8a, b"x")).unwrap();
    assert_eq!(events(&mut s), vec![Event::Pong(Bytes::from_static(b"x"))]);
    assert!(!s.has_transmit());
    assert_eq!(s.state(), State::Open);
}

#[test]
fn length_encodings_256_and_64k() {
    for len in [125usize, 126, 256, 65535, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut s = server();
        s.handle_input(&masked(0x82, &payload)).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::Message(Message::Binary(payload.clone().into()))]
        );
        // And the encoder side produces the §5.7 headers.
        let mut s = server();
        s.send(Message::binary(payload.clone())).unwrap();
        let sent = transmitted(&mut s);
        let expect_head: &[u8] = match len {
            125 => &[0x82, 125],
            126 => &[0x82, 0x7e, 0x00, 0x7e],
            256 => &[0x82, 0x7e, 0x01, 0x00],
            65535 => &[0x82, 0x7e, 0xff, 0xff],
            _ => &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0],
        };
        assert_eq!(&sent[..expect_head.len()], expect_head);
        assert_eq!(&sent[expect_head.len()..], &payload[..]);
    }
}

#[test]
fn send_text_checks_utf8() {
    let mut s = server();
    assert_eq!(
        s.send(Message::Text(Bytes::from_static(&[0xff]))),
        Err(crate::SendError::InvalidUtf8)
    );
    s.send(Message::text("Hello")).unwrap();
    assert_eq!(
        transmitted(&mut s),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
}

#[test]
fn large_server_payload_is_not_copied() {
    let payload = Bytes::from(vec![7u8; 4096]);
    let mut s = server();
    s.send(Message::Binary(payload.clone())).unwrap();
    let mut out = VecDeque::new();
    s.poll_transmit(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].as_ptr(), payload.as_ptr());
}

#[test]
fn prepared_frame_shared_without_copy() {
    let prepared = crate::PreparedMessage::new(Message::text("Hello"));
    assert_eq!(
        prepared.plain_frame()[..],
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    let (mut a, mut b) = (server(), server());
    a.send(Message::text("x")).unwrap();
    a.send_prepared(&prepared).unwrap();
    b.send_prepared(&prepared).unwrap();
    let (mut out_a, mut out_b) = (VecDeque::new(), VecDeque::new());
    a.poll_transmit(&mut out_a);
    b.poll_transmit(&mut out_b);
    // Order kept: the small frame first, then the shared one.
    assert_eq!(out_a[0][..], [0x81, 0x01, b'x']);
    assert_eq!(out_a[1].as_ptr(), prepared.plain_frame().as_ptr());
    assert_eq!(out_b[0].as_ptr(), prepared.plain_frame().as_ptr());
}

#[test]
fn idle_connection_is_small() {
    // No buffers allocated up front: the struct itself is all there is.
    assert!(
        std::mem::size_of::<Connection>() < 512,
        "{}",
        std::mem::size_of::<Connection>()
    );
    let mut s = server();
    s.handle_input(&masked(0x82, &[0u8; 1000])).unwrap();
    let _ = events(&mut s);
    let _ = transmitted(&mut s);
    assert_eq!(s.tx_buf_capacity(), 0);
}

#[test]
fn error_sizes() {
    assert!(std::mem::size_of::<crate::ProtocolError>() <= 24);
    assert!(std::mem::size_of::<crate::SendError>() <= 8);
}
