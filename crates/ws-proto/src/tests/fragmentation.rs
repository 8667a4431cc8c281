//! Each framing/fragmentation rule of RFC 6455 §5 and the size limits.

use bytes::Bytes;

use super::*;
use crate::{Message, ProtocolError};

#[test]
fn control_frames_interleaved_in_fragmented_message() {
    let mut s = server();
    let mut input = masked(0x01, b"Hel");
    input.extend(masked(0x89, b"p"));
    input.extend(masked(0x00, b"l"));
    input.extend(masked(0x8a, b"q"));
    input.extend(masked(0x80, b"o"));
    s.handle_input(&input).unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            Event::Ping(Bytes::from_static(b"p")),
            Event::Pong(Bytes::from_static(b"q")),
            text("Hello"),
        ]
    );
    assert_eq!(transmitted(&mut s), [0x8a, 0x01, b'p']);
}

#[test]
fn empty_fragments() {
    let mut s = server();
    let mut input = masked(0x01, b"");
    input.extend(masked(0x00, b""));
    input.extend(masked(0x80, b""));
    s.handle_input(&input).unwrap();
    assert_eq!(events(&mut s), vec![text("")]);
}

#[test]
fn continuation_without_start_is_1002() {
    expect_failure(&mut server(), &masked(0x80, b"x"), 1002);
    expect_failure(&mut server(), &masked(0x00, b"x"), 1002);
}

#[test]
fn new_data_frame_inside_fragmented_message_is_1002() {
    let mut input = masked(0x01, b"a");
    input.extend(masked(0x81, b"b"));
    expect_failure(&mut server(), &input, 1002);
    let mut input = masked(0x02, b"a");
    input.extend(masked(0x01, b"b"));
    expect_failure(&mut server(), &input, 1002);
}

#[test]
fn fragmented_control_is_1002() {
    for opcode in [0x08, 0x09, 0x0a] {
        expect_failure(&mut server(), &masked(opcode, b""), 1002);
    }
}

#[test]
fn control_over_125_is_1002() {
    expect_failure(&mut server(), &masked(0x89, &[0u8; 126]), 1002);
    // 125 is fine.
    let mut s = server();
    s.handle_input(&masked(0x89, &[0u8; 125])).unwrap();
}

#[test]
fn reserved_opcodes_are_1002() {
    for opcode in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        expect_failure(&mut server(), &masked(0x80 | opcode, b""), 1002);
    }
}

#[test]
fn rsv_bits_without_extension_are_1002() {
    for rsv in [0x40u8, 0x20, 0x10] {
        expect_failure(&mut server(), &masked(0x81 | rsv, b"x"), 1002);
        expect_failure(&mut server(), &masked(0x89 | rsv, b"x"), 1002);
    }
}

#[test]
fn masking_rules() {
    // Server: unmasked client frame.
    expect_failure(&mut server(), &[0x81, 0x01, b'x'], 1002);
    // Client: masked server frame.
    expect_failure(&mut client(), &masked(0x81, b"x"), 1002);
}

#[test]
fn frame_and_message_limits_are_1009() {
    let config = Config {
        max_frame_size: 100,
        max_message_size: 150,
        ..Config::default()
    };
    // Rejected from the header alone: no payload needed.
    let mut s = Connection::new(Role::Server, config.clone(), None);
    let err = s.handle_input(&masked(0x82, &[0; 101])[..8]).unwrap_err();
    assert_eq!(err, ProtocolError::FrameTooLarge { len: 101, max: 100 });
    assert_eq!(err.close_code(), 1009);
    let mut s = Connection::new(Role::Server, config, None);
    let mut input = masked(0x02, &[0; 100]);
    input.extend(masked(0x80, &[0; 51]));
    expect_failure(&mut s, &input, 1009);
}

#[test]
fn huge_declared_length_is_1009_not_allocation() {
    let mut s = server();
    let header = [0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
    expect_failure(&mut s, &header, 1009);
    expect_failure(
        &mut server(),
        &[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
        1002,
    );
}

#[test]
fn utf8_fails_fast_inside_a_frame() {
    // A 20-byte text frame: the invalid ED A0 arrives before the frame is complete.
    let mut payload = vec![
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
    ];
    payload.extend([0xed, 0xa0, 0x80, b'e', b'd', b'i', b't', b'e', b'd']);
    let frame = masked(0x81, &payload);
    let mut s = server();
    s.handle_input(&frame[..6 + 11]).unwrap();
    s.handle_input(&frame[6 + 11..6 + 12]).unwrap();
    let err = s.handle_input(&frame[6 + 12..6 + 13]).unwrap_err();
    assert_eq!(err.close_code(), 1007);
    // Across fragments too.
    let mut s = server();
    s.handle_input(&masked(0x01, &payload[..11])).unwrap();
    s.handle_input(&masked(0x00, &payload[11..12])).unwrap();
    expect_failure(&mut s, &masked(0x00, &payload[12..13]), 1007);
}

#[test]
fn utf8_split_code_point_across_fragments_is_fine() {
    let bytes = "κόσμε".as_bytes();
    let mut s = server();
    let mut input = masked(0x01, &bytes[..1]);
    input.extend(masked(0x00, &bytes[1..4]));
    input.extend(masked(0x80, &bytes[4..]));
    s.handle_input(&input).unwrap();
    assert_eq!(events(&mut s), vec![text("κόσμε")]);
}

#[test]
fn truncated_code_point_at_message_end_is_1007() {
    expect_failure(&mut server(), &masked(0x81, &[0xe2, 0x82]), 1007);
}

#[test]
fn binary_is_not_validated() {
    let mut s = server();
    s.handle_input(&masked(0x82, &[0xff, 0xfe])).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Message(Message::Binary(Bytes::from_static(&[
            0xff, 0xfe
        ])))]
    );
}

#[test]
fn input_after_failure_is_ignored() {
    let mut s = server();
    expect_failure(&mut s, &masked(0x83, b""), 1002);
    s.handle_input(&masked(0x81, b"x")).unwrap();
    assert!(s.poll_event().is_none());
    assert!(!s.has_transmit());
}
