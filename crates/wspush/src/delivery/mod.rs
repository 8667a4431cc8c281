//! The delivery core: who listens to what, and how a push reaches them. It knows no
//! transport and no door: WebSocket handlers, RPC methods and the broker call into it.
//!
//! - [`hub`]: connections, channels, fan-out.
//! - [`subscribers`]: one stream's subscribers (raw, positioned, resuming) and its fan-out.
//! - [`flush`]: the caller's hint of what follows a push (who writes it).
//! - [`payload`]: what a pushed value becomes on the wire.
//! - [`position`]: stream positions and their wire form for subscribers that ask.
//! - [`query`]: what a subscriber asks for (channels, positions, `since`).
//! - [`history`]: recent messages per stream and what a resuming subscriber missed.
//! - [`events`]: browser events forwarded to the programs that listen.
//! - [`conn_id`]: connection ids that carry their node.

pub mod conn_id;
pub mod events;
pub mod flush;
pub mod history;
pub mod hub;
pub mod payload;
pub mod position;
pub mod query;
pub mod subscribers;
