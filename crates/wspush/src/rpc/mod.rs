//! The programs' door: MessagePack-RPC.
//!
//! - [`methods`]: every method, one table for every broker; the server.
//! - [`auth`]: the shared secret (`auth(secret)` first).
//! - [`args`]: reading call arguments.
//! - [`render`]: MessagePack forms of hub state.

pub mod args;
pub mod auth;
pub mod methods;
pub mod render;

pub use methods::server;
