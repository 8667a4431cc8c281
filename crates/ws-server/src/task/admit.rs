//! Admission: a connection whose upgrade was accepted is registered, counted and told to
//! the handler (`on_open`) before its `101` goes out; [`Admitted`] undoes all of it when it
//! drops, even after a handler panic.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::connection::Connection;
use crate::handler::{CloseInfo, Handler, Request};
use crate::inner::Inner;
use crate::stats::Stats;

/// A connection admitted before its `101` is sent: registered, counted, holding its
/// connection-cap permit, already known to the handler through `on_open`.
pub(crate) struct Admitted<H: Handler> {
    pub(crate) inner: Arc<Inner<H>>,
    pub(crate) conn: Connection,
    _permit: OwnedSemaphorePermit,
}

/// Unregisters the connection even if a handler panics.
impl<H: Handler> Drop for Admitted<H> {
    fn drop(&mut self) {
        // Already done when the task ended normally; here for a panic or an abandon.
        let _ = self.conn.shared.mark_closed();
        self.inner.unregister(self.conn.id());
        self.inner
            .stats
            .connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Admits a connection whose upgrade was accepted and calls `on_open`, all before the `101`
/// goes out: a client that sees its connection open is already registered, so a message
/// sent to it from then on is never missed. What `on_open` sends is queued and written
/// right after the `101`.
pub(crate) async fn admit<H: Handler>(
    inner: &Arc<Inner<H>>,
    req: &Request,
    permit: OwnedSemaphorePermit,
    stream_kill: Option<tokio_util::sync::CancellationToken>,
) -> Admitted<H> {
    let cfg = &inner.config;
    let conn = Connection::with_kind(
        inner.next_id(),
        req.peer_addr(),
        cfg.outbound_queue_bytes,
        cfg.overflow,
        Arc::clone(&inner.stats),
        stream_kill,
    );
    inner.register(&conn);
    Stats::add(&inner.stats.connections_open, 1);
    Stats::add(&inner.stats.connections_total, 1);
    let admitted = Admitted {
        inner: Arc::clone(inner),
        conn,
        _permit: permit,
    };
    inner.handler.on_open(&admitted.conn, req).await;
    admitted
}

/// The upgrade failed after `on_open` (the client left before the `101` was written, or the
/// handshake timed out): the handler still gets its `on_close`.
pub(crate) async fn abandon<H: Handler>(admitted: Admitted<H>, why: &'static str) {
    let info = CloseInfo::new(1006, why, false);
    admitted.inner.stats.record_close(info.code);
    let (inner, conn) = (Arc::clone(&admitted.inner), admitted.conn.clone());
    drop(admitted);
    inner.handler.on_close(&conn, info).await;
}
