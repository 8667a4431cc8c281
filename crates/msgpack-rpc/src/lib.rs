//! MessagePack-RPC (placeholder docs, filled in below).

mod codec;
mod encode;
mod error;
mod message;
mod wire;

pub use codec::{Decoder, Limits};
pub use encode::{encode, encode_notification, encode_request, encode_value};
pub use error::{DecodeError, RpcError};
pub use message::{Message, NOTIFICATION, REQUEST, RESPONSE, method_name};
pub use rmpv::Value;

#[cfg(feature = "tokio")]
mod client;
#[cfg(feature = "tokio")]
mod connection;
#[cfg(feature = "tokio")]
mod context;
#[cfg(feature = "tokio")]
mod methods;
#[cfg(feature = "tokio")]
mod server;

#[cfg(feature = "tokio")]
pub use context::{Context, Notifier, NotifyError};
#[cfg(feature = "tokio")]
pub use methods::Arity;
#[cfg(feature = "tokio")]
pub use server::{DEFAULT_TCP_ADDR, Server, ServerBuilder, ServerConfig};
#[cfg(feature = "tokio")]
pub use client::{CallError, Client, ClientConfig, Notification};
