//! Browser events forwarded to the RPC clients that called `listen()`.
//!
//! Each event is encoded once as a MessagePack-RPC notification and the same
//! bytes are queued to every listener. Queues are bounded by the RPC server:
//! a listener that reads too slowly loses events (counted), never slows a
//! browser. Stock clients break on messages they did not ask for, so only
//! connections that called `listen()` are ever sent anything.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use msgpack_rpc::{Notifier, NotifyError, Value};

use super::conn_id::node_of;
use super::hub::ConnInfo;

/// The set of listening RPC connections.
#[derive(Default)]
pub struct Listeners {
    list: Mutex<Vec<Notifier>>,
    dropped: AtomicU64,
}

impl Listeners {
    /// Adds a listener; listening twice on one connection is listening once.
    pub fn add(&self, notifier: Notifier) {
        let mut list = self.lock();
        if !list
            .iter()
            .any(|n| n.connection_id() == notifier.connection_id())
        {
            list.push(notifier);
        }
    }

    /// Forgets the listener of an RPC connection that ended.
    pub fn remove(&self, rpc_connection: u64) {
        self.lock().retain(|n| n.connection_id() != rpc_connection);
    }

    /// Listening connections now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Events dropped because a listener's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sends `method(params)` to every listener; builds the params only if
    /// someone listens.
    pub fn emit(&self, method: &str, params: impl FnOnce() -> Vec<Value>) {
        let mut list = self.lock();
        if list.is_empty() {
            return;
        }
        let mut out = BytesMut::new();
        msgpack_rpc::encode_notification(method.as_bytes(), &params(), &mut out);
        let frame = out.freeze();
        list.retain(|n| match n.send_encoded(frame.clone()) {
            Ok(()) => true,
            Err(NotifyError::Full) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    rpc_conn = n.connection_id(),
                    event = method,
                    "listener queue full; event dropped"
                );
                true
            }
            Err(_) => false,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Notifier>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The map describing a connection in events and `connections()`.
pub fn info_value(info: &ConnInfo, channels: &[String]) -> Vec<(Value, Value)> {
    vec![
        (Value::from("id"), Value::from(info.id)),
        (Value::from("node"), Value::from(node_of(info.id))),
        (Value::from("peer"), Value::from(info.peer.to_string())),
        (Value::from("path"), Value::from(info.path.as_str())),
        (Value::from("query"), Value::from(info.query.as_str())),
        (
            Value::from("channels"),
            Value::Array(channels.iter().map(|c| Value::from(c.as_str())).collect()),
        ),
        (Value::from("opened"), Value::from(unix_secs(info.opened))),
        (
            Value::from("user"),
            info.user.as_deref().map_or(Value::Nil, Value::from),
        ),
        (Value::from("transport"), Value::from(info.transport)),
    ]
}
