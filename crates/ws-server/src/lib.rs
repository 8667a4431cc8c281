//! A tokio WebSocket server with an event-handler API, driving the sans-IO [`ws_proto`] core.
//!
//! ```text
//! TcpListener ──accept──▶ [TLS] ──▶ hyper HTTP/1.1 (keep-alive, pipelining)
//!     │ per-IP limits ──▶ 429        │ head too big   ──▶ 431
//!                                    │ not an upgrade ──▶ Handler::on_http / 404
//!                                    │ broken upgrade ──▶ 426 + Sec-WebSocket-Version: 13
//!                                    │ cap reached    ──▶ 503
//!                                    ▼ valid upgrade: Handler::on_upgrade, 101
//!                     connection task (owns the raw TcpStream / TLS stream)
//!   socket bytes ──▶ ws_proto::Connection::handle_input ──▶ Event ──▶ Handler::on_message
//!   Connection::send_* (any task) ──▶ bounded byte queue ──wake once──▶ ws_proto::send
//!        ──▶ poll_transmit ──▶ one vectored write of many frames ──▶ socket
//!   FanOut::send (one push, many connections) ──▶ the same queues; idle plain-TCP sockets
//!        ──▶ Writers (threads made once) ──▶ one vectored write of what is queued ──▶ socket
//! ```
//!
//! A [`Connection`] handle never waits: it pushes into the connection's queue (bounded in
//! bytes, [`OverflowPolicy`] when full) and wakes the task only if it is not already woken, so
//! a fan-out to many connections costs one wake-up per connection per batch and a slow client
//! slows nobody else. A [`FanOut`] costs no wake-up at all for connections that were idle:
//! its [`Writers`] write them directly (the invariant that keeps the order is in `direct.rs`). [`PreparedMessage`](ws_proto::PreparedMessage)s are encoded once and
//! shared by every connection they go to.
//!
//! ```no_run
//! use ws_server::{Connection, Handler, Message, Server, ServerConfig};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     async fn on_message(&self, conn: &Connection, msg: Message) {
//!         let _ = match msg {
//!             Message::Text(t) => conn.send_text(t),
//!             Message::Binary(b) => conn.send_binary(b),
//!         };
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! Server::new(ServerConfig::default(), Echo).serve(listener, shutdown).await
//! # }
//! ```

pub mod client;
mod config;
mod connection;
mod direct;
mod error;
mod handler;
mod http;
mod inner;
mod limits;
mod pump;
mod server;
mod stats;
mod task;
mod tls;
mod transport;

pub use client::{Client, ClientConfig};
pub use config::{OverflowPolicy, ServerConfig};
pub use connection::{Connection, SLOW_CONSUMER};
pub use direct::{FanOut, Writers};
pub use error::{ClientError, SendError, TlsError};
pub use handler::{CloseInfo, Echo, Handler, Message, Request};
pub use inner::GOING_AWAY;
pub use server::Server;
pub use stats::{Stats, StatsSnapshot};
pub use tls::TlsConfig;
pub use ws_proto::PreparedMessage;
