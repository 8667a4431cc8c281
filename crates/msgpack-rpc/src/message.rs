//! The three MessagePack-RPC messages.

use std::borrow::Cow;

use bytes::Bytes;
use rmpv::Value;

/// Message type of a request: `[0, msgid, method, params]`.
pub const REQUEST: u8 = 0;
/// Message type of a response: `[1, msgid, error, result]`.
pub const RESPONSE: u8 = 1;
/// Message type of a notification: `[2, method, params]`.
pub const NOTIFICATION: u8 = 2;

/// One MessagePack-RPC message.
///
/// Method names are kept as raw bytes: old clients send them as "raw",
/// some as bin, and nothing forces them to be UTF-8. [`method_name`] gives a
/// printable form.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `[0, msgid, method, params]`: answered by a response with the same msgid.
    Request {
        /// Chosen by the caller; responses may come in any order.
        msgid: u32,
        /// The method name bytes.
        method: Bytes,
        /// The arguments.
        params: Vec<Value>,
    },
    /// `[1, msgid, error, result]`: `error` is nil on success.
    Response {
        /// The msgid of the request this answers.
        msgid: u32,
        /// Nil on success, else the error (a string for the reference server).
        error: Value,
        /// The result (nil when `error` is not).
        result: Value,
    },
    /// `[2, method, params]`: never answered.
    Notification {
        /// The method name bytes.
        method: Bytes,
        /// The arguments.
        params: Vec<Value>,
    },
}

impl Message {
    /// A request.
    pub fn request(msgid: u32, method: impl Into<Bytes>, params: Vec<Value>) -> Self {
        Message::Request {
            msgid,
            method: method.into(),
            params,
        }
    }

    /// A notification.
    pub fn notification(method: impl Into<Bytes>, params: Vec<Value>) -> Self {
        Message::Notification {
            method: method.into(),
            params,
        }
    }

    /// A successful response.
    #[must_use]
    pub fn response_ok(msgid: u32, result: Value) -> Self {
        Message::Response {
            msgid,
            error: Value::Nil,
            result,
        }
    }

    /// An error response (result nil), as the reference server sends.
    #[must_use]
    pub fn response_err(msgid: u32, error: Value) -> Self {
        Message::Response {
            msgid,
            error,
            result: Value::Nil,
        }
    }
}

/// A method name for messages and logs: UTF-8 as is, other bytes replaced.
#[must_use]
pub fn method_name(method: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(method)
}
