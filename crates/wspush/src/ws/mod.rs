//! The public port: browsers connect over WebSocket; plain HTTP serves the demo page,
//! `/health` and `/metrics`.
//!
//! - [`handler`]: the `ws_server::Handler`: browsers into and out of the hub.
//! - [`web`]: the plain HTTP answers.

pub mod handler;
pub mod web;
