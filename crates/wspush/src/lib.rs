//! wspush: push data from any program to every browser watching it.
//!
//! ```text
//! program --MessagePack-RPC--> rpc (methods) --> Hub --(one PreparedMessage)--> N connection queues --> browsers
//! browser --WebSocket--> app (ws_server::Handler) --> Hub / events --> RPC clients that called listen()
//! ```
//!
//! - [`config`]: settings from flags, `WSPUSH_*` environment and a TOML file.
//! - [`hub`]: connections, channels, fan-out.
//! - [`data`]: how a pushed msgpack value becomes a WebSocket frame.
//! - [`rpc`]: the MessagePack-RPC methods (`push_data`, `publish`, `send`, …).
//! - [`events`]: browser events forwarded to listening RPC clients.
//! - [`app`]: the WebSocket handler: browsers in and out of the hub.
//! - [`web`]: the demo page, `/health`, `/metrics`.
//! - [`stats`]: one snapshot of the counters for `stats()` and `/metrics`.
//! - [`serve`]: both listeners on one runtime, with graceful shutdown.

pub mod app;
pub mod config;
pub mod data;
pub mod events;
pub mod hub;
pub mod rpc;
pub mod serve;
pub mod stats;
pub mod web;
