//! `wspush-bench`: a fan-out load generator for wspush and its peers (Nchan).
//!
//! ```text
//!                      one process, one monotonic clock (payload::now_ns)
//!  Publisher ──"seq ts_ns xxx…"──> server under test ──frames──> N subscribers
//!  (one TCP connection:             (wspush: MessagePack-RPC      (one small task each,
//!   push_data / publish, or          push_data / publish;          frames parsed in place,
//!   HTTP POST, pipelined,            Nchan: HTTP POST)             order + latency checked)
//!   window + rate + lag brakes)                                          │
//!        ▲                                                               ▼
//!        └───────────── deliveries so far (Tally) ◄──────────── histogram, loss, reorder
//!  runner: /proc/<server pid> RSS + CPU before/after, own CPU, wspush stats() ──> report
//! ```
//!
//! A point ([`scenario::Point`]) connects its subscribers (spread over source
//! addresses 127.0.0.2, 127.0.0.3 … so 50,000 connections do not exhaust one
//! address's ephemeral ports), measures the idle server, warms up until every
//! subscriber is registered, publishes, waits for the last delivery and
//! reports a [`report::PointResult`]. Any loss or reorder at a well-behaved
//! subscriber makes the binary exit non-zero.

pub mod calibrate;
pub mod floor;
pub mod histogram;
pub mod payload;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod subscriber;
pub mod tally;
