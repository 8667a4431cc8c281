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
//! [`ProtocolError`]; events decoded before the violation are still delivered.
//!
//! ```
//! use std::collections::VecDeque;
//! use ws_proto::{Config, Connection, Event, Message, Role};
//!
//! let mut conn = Connection::new(Role::Server, Config::default(), None);
//! // RFC 6455 §5.7: a masked "Hello" from a client.
//! conn.handle_input(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])?;
//! while let Some(event) = conn.poll_event() {
//!     if let Event::Message(msg) = event {
//!         conn.send(msg).expect("open"); // echo
//!     }
//! }
//! let mut out = VecDeque::new();
//! conn.poll_transmit(&mut out); // write these, in order, to the socket
//! assert_eq!(out[0][..], [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
//! # Ok::<(), ws_proto::ProtocolError>(())
//! ```

pub mod close;
mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
mod message;
mod negotiate;
mod prepared;
mod recv;
pub mod utf8;

pub use close::CloseFrame;
pub use connection::Connection;
pub use error::{HandshakeError, ProtocolError, SendError};
pub use message::{Config, Event, Message, Role, State};
pub use prepared::{FrameChoice, PreparedMessage};

#[cfg(test)]
mod tests;
