//! MessagePack-RPC (placeholder docs, filled in below).

mod codec;
mod encode;
mod error;
mod message;
mod wire;

pub use codec::{Decoder, Limits};
pub use encode::{encode, encode_value};
pub use error::{DecodeError, RpcError};
pub use message::{Message, NOTIFICATION, REQUEST, RESPONSE, method_name};
pub use rmpv::Value;
