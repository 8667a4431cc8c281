//! RFC 6455 WebSocket and RFC 7692 permessage-deflate as a sans-IO state machine.
//!
//! This crate does no I/O, reads no clock and no random source: the caller moves
//! bytes between a transport and a [`Connection`], and supplies the client role's
//! masking seed.
//!
//! ```text
//!  HTTP request head ──> handshake::validate_request ──> ServerAccept (accept key,
//!                        handshake::negotiate_deflate ──> DeflateParams   offers)
//!
//!  socket bytes ──> Connection::handle_input ──> frame header ──> unmask (one copy)
//!                        │                          │
//!                        │                 control: ping → pong queued, close → echo
//!                        │                 data: reassemble → inflate (limit) → UTF-8
//!                        ▼
//!                  Connection::poll_event ──> Event::{Message, Ping, Pong, Close}
//!
//!  Connection::send / ping / close ──> encode (deflate, mask) ─┐
//!  PreparedMessage (encoded once, shared Bytes) ──> send_prepared ──┤
//!                                                                   ▼
//!                                  Connection::poll_transmit ──> VecDeque<Bytes> ──> socket
//! ```
//!
//! Protocol violations close the connection with the RFC's code (1002, 1007, 1009):
//! [`Connection::handle_input`] queues the close frame and returns the
//! [`ProtocolError`].

pub mod close;
mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
mod message;
mod prepared;
mod recv;
pub mod utf8;

pub use close::CloseFrame;
pub use connection::Connection;
pub use error::{HandshakeError, ProtocolError, SendError};
pub use message::{Config, Event, Message, Role, State};
pub use prepared::PreparedMessage;

#[cfg(test)]
mod tests;
