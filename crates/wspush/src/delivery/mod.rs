//! The delivery core: who listens to what, and how a push reaches them. It knows no
//! transport and no door: WebSocket handlers, RPC methods and the broker call into it.
//!
//! - [`hub`]: connections, channels, fan-out.
//! - [`subscribers`]: one stream's subscribers and its fan-out, outside the hub's lock.
//! - [`outlet`]: a subscriber and its wire format; each push encoded once per format.
//! - [`joining`]: pushes that meet a fan-out of their stream in progress go out in its
//!   next pass.
//! - [`tally`]: what a fan-out did, for the counters.
//! - [`flush`]: the caller's hint of what follows a push (who writes it).
//! - [`payload`]: what a pushed value becomes on the wire.
//! - [`position`]: stream positions and their wire form for subscribers that ask.
//! - [`query`]: what a subscriber asks for (channels, positions, `since`).
//! - [`history`]: recent messages per stream and what a resuming subscriber missed.
//! - [`event_stream`]: the Server-Sent Events form of pushes and the id that resumes them.
//! - [`events`]: browser events forwarded to the programs that listen.
//! - [`conn_id`]: connection ids that carry their node.

pub mod conn_id;
pub mod event_stream;
pub mod events;
pub mod flush;
pub mod history;
pub mod hub;
pub mod joining;
pub mod outlet;
pub mod payload;
pub mod position;
pub mod query;
pub mod subscribers;
pub mod tally;
