//! A tokio WebSocket server with an event-handler API, driving the sans-IO [`ws_proto`] core.
//!
//! ```text
//! TcpListener ──accept──▶ plain: an event stream as the first request gets the socket  intake.rs
//!     │                  (its own task, direct writes: task/stream.rs); else
//!     │              ──▶ [TLS] ──▶ hyper HTTP/1.1 (keep-alive, pipelining)          server.rs, http.rs
//!     │ per-IP limits ──▶ 429        │ head too big   ──▶ 431                          limits.rs
//!                                    │ not an upgrade ──▶ Handler::on_stream: an event stream  event_stream.rs
//!                                    │                    (200, body fed by a Connection's queue), else on_http / 404
//!                                    │ broken upgrade ──▶ 426 + Sec-WebSocket-Version: 13
//!                                    │ cap reached    ──▶ 503
//!                                    ▼ valid upgrade: Handler::on_upgrade, on_open, 101  task/admit.rs
//!        connection task: the socket's only reader; writes it in turn with direct writers  task/
//!   socket ──reader──▶ ws_proto::Connection::handle_input ──▶ Event ──▶ Handler::on_message
//!   Connection::send_* (any task) ──▶ bounded byte queue + CloseState ──wake once──▶   connection/
//!        ws_proto::send ──▶ poll_transmit ──▶ WriteBuf ──one writev of many frames──▶ socket
//!   FanOut::send / send_prepared_now ──▶ the same queue; an idle plain-TCP socket is   direct.rs
//!        written by the sender or a Writers thread (one writev), the task never woken
//! ```
//!
//! A [`Connection`] handle never waits: it pushes into the connection's queue (bounded in
//! bytes, [`OverflowPolicy`] when full) and wakes the task only if it is not already woken, so
//! a fan-out to many connections costs one wake-up per connection per batch and a slow client
//! slows nobody else. A [`FanOut`] costs no wake-up at all for connections that were idle:
//! its [`Writers`] write them directly (the invariant that keeps the order is at the top of
//! `direct.rs`). TLS sockets and messages the task must encode always go through the task.
//! [`PreparedMessage`]s are encoded once and shared by every
//! connection they go to. How far a connection's close has got is one value (`CloseState`,
//! in `connection/close.rs`), read by senders, moved on by the handle, the server and the task.
//!
//! Modules point one way: `server → intake → http → task → connection ← direct`,
//! `http → event_stream → connection`; `inner` (the state a
//! server's tasks share) and `transport` (plain, TLS or shared TCP) sit below them.
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
mod event_stream;
mod handler;
mod http;
mod inner;
mod intake;
mod limits;
mod server;
mod stats;
mod task;
#[cfg(feature = "test-util")]
pub mod test_util;
mod tls;
pub mod tls_stream;
mod transport;

pub use client::{Client, ClientConfig};
pub use config::{OverflowPolicy, ServerConfig};
pub use connection::{Connection, SLOW_CONSUMER};
pub use direct::{FanOut, Writers};
pub use error::{ClientError, SendError, TlsError, TlsRecordError, TlsStreamError};
pub use handler::{CloseInfo, Echo, Handler, Message, Request, StreamHead};
pub use inner::GOING_AWAY;
pub use server::Server;
pub use stats::{Stats, StatsSnapshot};
pub use tls::TlsConfig;
pub use tls_stream::TlsStream;
pub use ws_proto::PreparedMessage;
