//! Close codes (RFC 6455 §7.4) and the rules for which may appear on the wire.

use crate::error::ProtocolError;

/// 1000: normal closure.
pub const NORMAL: u16 = 1000;
/// 1001: endpoint going away (server shutdown, page navigation).
pub const GOING_AWAY: u16 = 1001;
/// 1002: protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: a data type the endpoint cannot accept.
pub const UNSUPPORTED: u16 = 1003;
/// 1005: no status code was present. Reported locally, never sent.
pub const NO_STATUS: u16 = 1005;
/// 1006: closed without a close frame. Reported locally, never sent.
pub const ABNORMAL: u16 = 1006;
/// 1007: payload inconsistent with the message type (bad UTF-8).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: policy violation (e.g. a slow consumer over its queue limit).
pub const POLICY: u16 = 1008;
/// 1009: message too big to process.
pub const TOO_BIG: u16 = 1009;
/// 1010: the client expected an extension the server did not negotiate.
pub const MANDATORY_EXTENSION: u16 = 1010;
/// 1011: unexpected server condition.
pub const INTERNAL_ERROR: u16 = 1011;
/// 1012: service restart.
pub const SERVICE_RESTART: u16 = 1012;
/// 1013: try again later.
pub const TRY_AGAIN_LATER: u16 = 1013;

/// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4.1/§7.4.2 and
/// the IANA registry): 1000–1003, 1007–1014, 3000–4999. Never 1004/1005/1006/1015.
#[must_use]
pub fn is_valid_wire_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The peer's close frame (or, for a close without a payload, code 1005).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; [`NO_STATUS`] (1005) when the frame had no payload.
    pub code: u16,
    /// The UTF-8 reason, possibly empty.
    pub reason: String,
}

impl CloseFrame {
    /// Parse and validate a close payload (§5.5.1): empty → 1005; one byte → 1002;
    /// an invalid code → 1002; a reason that is not UTF-8 → 1007.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        match payload {
            [] => Ok(Self {
                code: NO_STATUS,
                reason: String::new(),
            }),
            [_] => Err(ProtocolError::CloseTooShort),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_wire_code(code) {
                    return Err(ProtocolError::InvalidCloseCode(code));
                }
                let reason = simdutf8::basic::from_utf8(reason)
                    .map_err(|_| ProtocolError::InvalidUtf8)?
                    .to_owned();
                Ok(Self { code, reason })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        for code in [1000, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 4999] {
            assert!(is_valid_wire_code(code), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_wire_code(code), "{code}");
        }
    }

    #[test]
    fn parse_rules() {
        assert_eq!(CloseFrame::parse(&[]).unwrap().code, NO_STATUS);
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(ProtocolError::CloseTooShort)
        );
        let ok = CloseFrame::parse(b"\x03\xe8bye").unwrap();
        assert_eq!((ok.code, ok.reason.as_str()), (1000, "bye"));
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xed]).unwrap_err().close_code(),
            PROTOCOL_ERROR
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff])
                .unwrap_err()
                .close_code(),
            INVALID_PAYLOAD
        );
    }
}
