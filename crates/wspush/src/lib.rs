//! wspush: push data from any program to every browser watching it.
//!
//! ```text
//! program --MessagePack-RPC--> rpc (methods) --> Hub --(one PreparedMessage)--> N connection queues --> browsers
//! browser --WebSocket--> app (ws_server::Handler) --> Hub / events --> RPC clients that called listen()
//! ```
//!
//! With `--broker redis://…`, pushes go program --> rpc_cluster --> Redis
//! (numbered, kept, published) --> every node's subscriber --> Hub::deliver.
//!
//! - [`config`]: settings from flags, `WSPUSH_*` environment and a TOML file.
//! - [`hub`]: connections, channels, fan-out.
//! - [`stream`]: one stream's subscribers (raw, positioned, resuming) and its fan-out.
//! - [`position`]: stream positions and their wire form for browsers that ask.
//! - [`query`]: what a browser asks for in its URL (channels, positions, `since`).
//! - [`history`]: recent messages per stream and what a resuming client missed.
//! - [`broker`]: embedded or Redis; node ids; the Redis publisher and subscriber.
//! - [`data`]: how a pushed msgpack value becomes a WebSocket frame.
//! - [`rpc`]: the MessagePack-RPC methods (`push_data`, `publish`, `send`, …).
//! - [`rpc_auth`]: the RPC shared secret (`auth(secret)` first).
//! - [`rpc_cluster`]: the pushing methods through Redis.
//! - [`events`]: browser events forwarded to listening RPC clients.
//! - [`auth`]: JWT connect auth, channel permissions, allowed origins.
//! - [`app`]: the WebSocket handler: browsers in and out of the hub.
//! - [`web`]: the demo page, `/health`, `/metrics`.
//! - [`stats`]: one snapshot of the counters for `stats()` and `/metrics`.
//! - [`serve`]: both listeners on one runtime, with graceful shutdown.

pub mod app;
pub mod auth;
pub mod broker;
pub mod config;
pub mod data;
pub mod events;
pub mod history;
pub mod hub;
pub mod position;
pub mod query;
pub mod rpc;
pub mod rpc_auth;
pub mod rpc_cluster;
pub mod serve;
pub mod stats;
pub mod stream;
pub mod web;
