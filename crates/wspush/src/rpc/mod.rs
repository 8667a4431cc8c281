//! The programs' door: MessagePack-RPC.
//!
//! - [`methods`]: the methods with the embedded broker, the queries, the server.
//! - [`cluster`]: the pushing methods through Redis.
//! - [`auth`]: the shared secret (`auth(secret)` first).
//! - [`args`]: reading call arguments.
//! - [`render`]: MessagePack forms of hub state.

pub mod args;
pub mod auth;
pub mod cluster;
pub mod methods;
pub mod render;

pub use methods::server;
