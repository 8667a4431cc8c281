//! Errors of the codec layer ([`DecodeError`]) and of method handlers
//! ([`RpcError`]). The client's errors live in `client` (`CallError`).

use rmpv::Value;

/// Why a byte stream is not a MessagePack-RPC message stream.
///
/// Every variant is fatal for the stream: the server closes the connection
/// (and only that one) and logs the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is, or claims to be, longer than the configured limit.
    #[error("message larger than the {limit}-byte limit")]
    TooLarge {
        /// The configured `max_message_size`.
        limit: usize,
    },
    /// Arrays and maps nest deeper than the configured limit.
    #[error("message nests deeper than {limit} levels")]
    TooDeep {
        /// The configured `max_depth`.
        limit: usize,
    },
    /// The message holds more array/map elements than the configured limit.
    #[error("message has more than {limit} elements")]
    TooManyElements {
        /// The configured `max_elements`.
        limit: usize,
    },
    /// The byte 0xc1, which MessagePack reserves and never emits.
    #[error("reserved byte 0xc1 in message")]
    ReservedByte,
    /// The top-level value is not an array.
    #[error("message is not an array")]
    NotAnArray,
    /// The top-level array has neither 3 nor 4 elements.
    #[error("message array has {len} elements, expected 3 or 4")]
    BadLength {
        /// The element count found.
        len: u32,
    },
    /// The first element (the message type) is not an integer.
    #[error("message type is not an integer")]
    TypeNotInteger,
    /// The message type is not 0 (request), 1 (response) or 2 (notification).
    #[error("unknown message type {0}")]
    UnknownType(i64),
    /// A known type with the other type's element count.
    #[error("message type {kind} needs {expected} elements, got {len}")]
    WrongArity {
        /// The message type.
        kind: u8,
        /// Elements the type needs.
        expected: u32,
        /// Elements found.
        len: u32,
    },
    /// The msgid is not an integer in `0..=u32::MAX`.
    #[error("msgid is not an unsigned 32-bit integer")]
    BadMsgId,
    /// The method name is neither str (any width, or old raw) nor bin.
    #[error("method name is not a string")]
    BadMethod,
    /// The message ended inside a value (cannot happen after a successful
    /// scan; reported rather than panicking).
    #[error("message ended inside a value")]
    Truncated,
    /// The params element is not an array.
    #[error("params is not an array")]
    BadParams,
}

impl DecodeError {
    /// Whether the message broke a configured limit (size, depth, element
    /// count) rather than the format.
    #[must_use]
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            DecodeError::TooLarge { .. }
                | DecodeError::TooDeep { .. }
                | DecodeError::TooManyElements { .. }
        )
    }
}

/// The error a method handler returns; the server sends it to the caller in
/// the error field of the response (with a nil result).
///
/// The reference Ruby server sends a plain string, and stock clients show it
/// as the error message, so [`RpcError::message`] is the usual choice.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// Sent as a MessagePack string.
    #[error("{0}")]
    Message(String),
    /// Sent as this value unchanged (for protocols that put maps or codes in
    /// the error field).
    #[error("{0}")]
    Value(Value),
}

impl RpcError {
    /// An error sent as a plain string.
    pub fn message(msg: impl Into<String>) -> Self {
        RpcError::Message(msg.into())
    }

    /// The error as it goes on the wire.
    #[must_use]
    pub fn into_value(self) -> Value {
        match self {
            RpcError::Message(s) => Value::from(s),
            RpcError::Value(v) => v,
        }
    }
}

impl From<String> for RpcError {
    fn from(msg: String) -> Self {
        RpcError::Message(msg)
    }
}

impl From<&str> for RpcError {
    fn from(msg: &str) -> Self {
        RpcError::Message(msg.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<DecodeError>() <= 16);
        assert!(std::mem::size_of::<RpcError>() <= 48);
    }
}
