//! `wspush-bench`: a fan-out load generator for wspush and its peers (Nchan).
//!
//! ```text
//!                      one process, one monotonic clock (payload::now_ns)
//!  K publishers ─"seq ts_ns pub x…"─> server under test ──frames──> N subscribers
//!  (K TCP connections:              (wspush: MessagePack-RPC      (one small task each,
//!   push_data / publish calls or     push_data / publish;          frames parsed in place,
//!   notifications, or HTTP POST;     Nchan: HTTP POST)             order per publisher +
//!   in-flight + rate + lag brakes)                                 latency checked)
//!        ▲                                                               │
//!        └───────────── deliveries so far (Tally) ◄──────────── histogram, loss, reorder
//!  runner: /proc/<server pid> RSS + CPU before/after, own CPU, wspush stats() ──> report
//! ```
//!
//! A point ([`scenario::Point`]) connects its subscribers (spread over source
//! addresses 127.0.0.2, 127.0.0.3 … so 50,000 connections do not exhaust one
//! address's ephemeral ports), measures the idle server, warms up until every
//! subscriber is registered, publishes (with the point's
//! [`scenario::PubShape`]: one call at a time by default, as the canonical
//! synchronous client), waits for the last delivery and reports a
//! [`report::PointResult`]. Any loss or reorder at a well-behaved
//! subscriber makes the binary exit non-zero.

pub mod browser;
pub mod calibrate;
pub mod chunked;
pub mod floor;
pub mod handshake;
pub mod histogram;
pub mod order;
pub mod payload;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod sse;
pub mod subscriber;
pub mod tally;
mod wire;
