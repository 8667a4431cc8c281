//! The task that owns one upgraded connection: it is the only reader of the socket and,
//! except for the direct writes of `crate::direct` (which take turns with it under the queue
//! lock), its only writer.
//!
//! ```text
//! mod.rs     run(): a connection from its upgrade to on_close
//! admit.rs   Admitted: registered, counted and opened before the 101; undone on drop
//! driver.rs  Driver: the event loop (dispatch, close requests, encode, wait)
//! reader.rs  one read into a stack buffer
//! writer.rs  WriteBuf: the encoded chunks and the vectored write that sends them
//! stream.rs  run_stream(): an event stream on its own socket, the same turns without a core
//! taken.rs   Taken: what the task took from its queue and owes back once written
//! timers.rs  Timers: ping, pong and close deadlines
//! ```
//!
//! Each turn of the loop: hand inbound events to the [`Handler`] (at most
//! [`ServerConfig::max_events_per_wake`](crate::ServerConfig::max_events_per_wake) per turn),
//! apply close/abort requests, move queued messages into the protocol core, then wait for
//! whichever comes first: socket readable, socket writable (when bytes wait), a sender's
//! wake-up, or a timer (ping, pong deadline, close deadline). How far the connection's close
//! has got is one value, `crate::connection::CloseState`, kept in the queue; the task keeps
//! no close flags of its own.

mod admit;
mod driver;
mod reader;
mod stream;
mod taken;
mod timers;
mod writer;

pub(crate) use admit::{Admitted, abandon, admit};
pub(crate) use stream::run_stream;

use std::sync::Arc;

use bytes::Bytes;
use ws_proto::Role;
use ws_proto::handshake::DeflateParams;

use crate::handler::{CloseInfo, Handler};
use crate::transport::Transport;
use driver::Driver;

/// Runs one upgraded connection to its end, then reports it to the handler.
pub(crate) async fn run<H: Handler>(
    admitted: Admitted<H>,
    io: Transport,
    read_buf: Bytes,
    deflate: Option<DeflateParams>,
) {
    let inner = Arc::clone(&admitted.inner);
    let conn = admitted.conn.clone();
    let cfg = &inner.config;
    let proto = ws_proto::Connection::new(Role::Server, cfg.proto.clone(), deflate);
    let io = match io {
        Transport::Plain(tcp) => {
            let tcp = Arc::new(tcp);
            conn.shared
                .attach_direct(Arc::clone(&tcp), Some(proto.frame_choice()));
            Transport::Shared(tcp)
        }
        other => other,
    };
    let mut driver = Driver::new(io, proto, conn.clone(), cfg, &inner.stats);
    if !read_buf.is_empty() {
        driver.input(&read_buf);
    }
    drop(read_buf);
    let info = driver.run(&inner.handler).await;
    drop(driver);
    finish(admitted, info).await;
}

/// A connection's task is over: counts its close, unregisters it and tells the handler.
async fn finish<H: Handler>(admitted: Admitted<H>, info: CloseInfo) {
    let (inner, conn) = (Arc::clone(&admitted.inner), admitted.conn.clone());
    tracing::debug!(
        id = conn.id(),
        code = info.code,
        clean = info.clean,
        "connection closed"
    );
    inner.stats.record_close(info.code);
    drop(admitted);
    inner.handler.on_close(&conn, info).await;
}
