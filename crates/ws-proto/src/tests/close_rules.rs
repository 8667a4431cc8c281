//! The close handshake (RFC 6455 §5.5.1, §7) and its code rules.

use bytes::Bytes;

use super::*;
use crate::{CloseFrame, Message, SendError, State};

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

#[test]
fn peer_close_is_echoed_then_closed() {
    let mut s = server();
    s.handle_input(&masked(0x88, &close_payload(1000, "bye")))
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Close(CloseFrame {
            code: 1000,
            reason: "bye".into()
        })]
    );
    assert_eq!(transmitted(&mut s), [0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(s.state(), State::Closed);
    assert!(s.is_closed());
    assert_eq!(s.send(Message::text("late")), Err(SendError::Closed));
}

#[test]
fn empty_close_reports_1005_and_echoes_empty() {
    let mut s = server();
    s.handle_input(&masked(0x88, b"")).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Close(CloseFrame {
            code: 1005,
            reason: String::new()
        })]
    );
    assert_eq!(transmitted(&mut s), [0x88, 0x00]);
}

#[test]
fn every_valid_code_is_accepted() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut s = server();
        s.handle_input(&masked(0x88, &close_payload(code, "")))
            .unwrap();
        let sent = transmitted(&mut s);
        assert_eq!(&sent[2..4], &code.to_be_bytes(), "{code}");
    }
}

#[test]
fn every_invalid_code_is_1002() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        expect_failure(&mut server(), &masked(0x88, &close_payload(code, "")), 1002);
    }
}

#[test]
fn one_byte_close_is_1002() {
    expect_failure(&mut server(), &masked(0x88, &[0x03]), 1002);
}

#[test]
fn invalid_utf8_reason_is_1007() {
    let mut p = close_payload(1000, "");
    p.extend([0xce, 0xba, 0xed, 0xa0, 0x80]);
    expect_failure(&mut server(), &masked(0x88, &p), 1007);
}

#[test]
fn we_close_first_then_data_ignored_until_peer_close() {
    let mut s = server();
    s.close(1001, "shutdown").unwrap();
    assert_eq!(s.state(), State::Closing);
    let sent = transmitted(&mut s);
    assert_eq!(&sent[..4], &[0x88, 10, 0x03, 0xe9]);
    assert_eq!(&sent[4..], b"shutdown");
    // Data (even a would-be protocol error in fragmentation) is discarded; pings get
    // no pong after our close.
    let mut input = masked(0x81, b"ignored");
    input.extend(masked(0x80, b"continuation"));
    input.extend(masked(0x89, b"p"));
    s.handle_input(&input).unwrap();
    assert_eq!(events(&mut s), vec![Event::Ping(Bytes::from_static(b"p"))]);
    assert!(!s.has_transmit());
    s.handle_input(&masked(0x88, &close_payload(1000, "")))
        .unwrap();
    assert_eq!(s.state(), State::Closed);
    assert!(!s.has_transmit(), "no second close frame");
    assert!(matches!(s.poll_event(), Some(Event::Close(_))));
}

#[test]
fn local_close_code_rules() {
    for code in [1004u16, 1005, 1006, 1015, 999, 2000, 5000] {
        assert_eq!(
            server().close(code, ""),
            Err(SendError::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        server().close(1000, &"x".repeat(124)),
        Err(SendError::ControlTooLong)
    );
    server().close(1000, &"x".repeat(123)).unwrap();
    let mut s = server();
    s.close(1000, "").unwrap();
    assert_eq!(s.close(1000, ""), Err(SendError::Closed));
    assert_eq!(s.ping(Bytes::new()), Err(SendError::Closed));
    assert_eq!(
        server().ping(Bytes::from(vec![0; 126])),
        Err(SendError::ControlTooLong)
    );
}
