//! The programs' HTTP door: Centrifugo's server API (so `cent`, `cent.js` and other stock
//! clients work unchanged), wspush's own methods in the same scheme, and a plain
//! `POST /pub[/<channel>]` for shells and webhooks.
//!
//! ```text
//! program --HTTP/1.1 keep-alive--> server.rs (limits, timeouts, key, counting)
//!    --> route.rs (paths, statuses) --> call() --> pushes.rs --> dyn Broker (as rpc/ does)
//!                                              --> queries.rs --> broker surveys / history
//!    wire.rs: bodies in and out (sans-IO); history.rs: history's selection;
//!    idempotency.rs: publish's idempotency_key; glob.rs: channels' pattern
//! ```
//!
//! One implementation behind each RPC method and its API twin: both push through the
//! same [`crate::broker::Broker`] calls, so ordering, positions and counters are the same.

mod counters;
pub mod glob;
pub mod history;
pub mod idempotency;
mod pushes;
mod queries;
mod route;
mod server;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use self::counters::ApiCounters;
use self::idempotency::Idempotency;
pub use self::server::{Limits, serve};
use self::wire::{ApiError, Reply};
use crate::delivery::flush::Flush;
use crate::shared::Shared;

/// What every API request shares.
pub struct Door {
    /// Hub, broker, counters.
    pub shared: Arc<Shared>,
    /// Remembered `idempotency_key`s.
    pub idempotency: Idempotency,
    /// The key every request must carry (`None`: open).
    key: Option<String>,
}

impl Door {
    /// A door over `shared`; `window` is how long idempotency keys last.
    pub fn new(shared: Arc<Shared>, key: Option<String>, window: Duration) -> Door {
        Door {
            shared,
            idempotency: Idempotency::new(window, idempotency::MAX_KEYS),
            key,
        }
    }
}

/// Runs one method. `body` is the whole request body (`params` lies inside it), so that
/// `data` is shared rather than copied.
pub async fn call(door: &Door, method: &str, params: &[u8], body: &Bytes, flush: Flush) -> Reply {
    match method {
        "publish" => pushes::publish(door, params, body, flush).await,
        "broadcast" => pushes::broadcast(door, params, body, flush).await,
        "push_data" => pushes::push_data(door, params, body, flush).await,
        "send" => pushes::send(door, params, body, flush).await,
        "send_user" => pushes::send_user(door, params, body, flush).await,
        "subscribe" => pushes::membership(door, params, true, flush).await,
        "unsubscribe" => pushes::membership(door, params, false, flush).await,
        "disconnect" => pushes::disconnect(door, params, flush).await,
        "presence" => queries::presence(door, params).await,
        "presence_stats" => queries::presence_stats(door, params).await,
        "history" => queries::history(door, params).await,
        "history_remove" => queries::history_remove(door, params).await,
        "channels" => queries::channels(door, params).await,
        "info" => queries::info(door).await,
        "stats" => queries::stats(door),
        "connections" => queries::connections(door),
        // Centrifugo's refresh extends a connection's expiry; wspush connections do not
        // expire after admission, so there is nothing to do (cent and cent.js call it).
        "refresh" => wire::decode::<serde::de::IgnoredAny>(params).map(|_| wire::empty()),
        other => Err(ApiError::UnknownMethod(other.to_owned())),
    }
}

/// `POST /api/batch`: the commands in order (`parallel` is accepted and ignored: in
/// order is what keeps pushes ordered); each reply keyed by its method.
pub async fn batch(door: &Door, body: &Bytes) -> Result<String, ApiError> {
    let batch: wire::Batch<'_> = wire::decode(body)?;
    let n = batch.commands.len();
    let mut replies = Vec::with_capacity(n);
    for (i, command) in batch.commands.iter().enumerate() {
        let mut entries = command.iter();
        let reply = match (entries.next(), entries.next()) {
            (Some((method, params)), None) if method != "batch" => {
                let flush = Flush::after(i + 1 < n);
                let reply = call(door, method, params.get().as_bytes(), body, flush).await;
                wire::batch_reply(method, &reply)
            }
            _ => wire::batch_reply("", &Err(ApiError::UnknownMethod("not found".into()))),
        };
        if reply.starts_with("{\"error\"") {
            ApiCounters::add(&door.shared.api.method_errors, 1);
        }
        replies.push(reply);
    }
    Ok(wire::batch_body(&replies))
}

/// `POST /api`: Centrifugo's legacy stream (cent.js `pipeline()`), one reply line per
/// command.
pub async fn legacy(door: &Door, body: &Bytes) -> Result<String, ApiError> {
    let commands = wire::split_legacy(body)?;
    let n = commands.len();
    let mut lines = Vec::with_capacity(n);
    for (i, command) in commands.iter().enumerate() {
        let reply = match command.method_name() {
            Some(method) if method != "batch" => {
                let flush = Flush::after(i + 1 < n);
                call(door, &method, command.params(), body, flush).await
            }
            _ => Err(ApiError::UnknownMethod("not found".into())),
        };
        if reply.is_err() {
            ApiCounters::add(&door.shared.api.method_errors, 1);
        }
        lines.push(wire::legacy_reply(command.id, &reply));
    }
    Ok(wire::legacy_body(&lines))
}
