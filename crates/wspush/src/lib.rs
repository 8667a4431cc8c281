//! wspush: push data from any program to every browser watching it.
//!
//! ```text
//! programs:  rpc (MessagePack-RPC methods) --+                    +--> ws (WebSocket frames) --> browsers
//!            api (HTTP, Centrifugo's shape) -+
//!            broker (Redis, other nodes) ----+--> delivery (hub) -+
//! browsers:  ws (handler) --> delivery (hub, events) --> programs that called listen()
//! ```
//!
//! Dependencies point one way: the doors ([`rpc`], [`api`]) and transports ([`ws`]) use the
//! [`delivery`] core; the [`broker`] feeds it; [`shared`] is the state they share.
//! With `--broker redis://…`, pushes go program --> rpc::cluster --> Redis (numbered,
//! kept, published) --> every node's subscriber --> `Hub::deliver`.
//!
//! - [`delivery`]: hub, subscribers, history, positions, payloads, events.
//! - [`ws`]: the public port (WebSocket handler, demo page, `/health`, `/metrics`).
//! - [`sse`]: Server-Sent Events on the public port (`/sse`).
//! - [`poll`]: long-polling on the public port (`/poll`), answered from history.
//! - [`rpc`]: the MessagePack-RPC methods (`push_data`, `publish`, `send`, …).
//! - [`api`]: the HTTP server API (Centrifugo's methods, `POST /pub`), their twins.
//! - [`broker`]: embedded or Redis; the Redis publisher and subscriber.
//! - [`auth`]: JWT connect auth, channel permissions, allowed origins.
//! - [`shared`]: state shared by the doors and transports; counters' sources.
//! - [`stats`]: one snapshot of the counters for `stats()` and `/metrics`.
//! - [`config`]: settings from flags, `WSPUSH_*` environment and a TOML file.
//! - [`serve`]: every listener on one runtime, with graceful shutdown.

pub mod api;
pub mod auth;
pub mod broker;
pub mod config;
pub mod delivery;
pub mod poll;
pub mod rpc;
pub mod serve;
pub mod shared;
pub mod sse;
pub mod stats;
pub mod ws;
