//! Server-Sent Events (the `text/event-stream` format of the WHATWG HTML standard,
//! §9.2 "Server-sent events") as sans-IO code: no sockets, no clock.
//!
//! ```text
//! server: encode::{event, comment, retry} --> bytes --> (any transport) --> browser's EventSource
//! client: bytes --> Parser::handle_input --> Parser::poll_event --> Event (--> Parser::recycle)
//!         bytes --> Parser::feed --> callback(EventRef), read in place: no copy
//! ```
//!
//! The encoder writes what every EventSource parses the same way: LF line ends, one
//! `data:` line per line of the payload (a payload's CR, LF and CRLF all end lines in
//! this format, so they are split rather than sent raw), and refuses names and ids that
//! would break the framing. The parser implements the standard's interpretation rules
//! incrementally (lines split across reads, CRLF split across reads, a leading BOM) with a
//! byte limit per event, for tests and load generators that read streams as browsers do;
//! complete lines are parsed in place, and recycled events lend their buffers to the next.

pub mod encode;
mod error;
mod parser;

pub use error::Error;
pub use parser::{Event, EventRef, Parser};
