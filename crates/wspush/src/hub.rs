//! The hub: who is connected, who listens to which channel, and fan-out.
//!
//! Every push is encoded into a WebSocket frame once ([`PreparedMessage`]) and
//! the same shared bytes are queued to every recipient with a non-blocking
//! enqueue: the caller never waits for a browser. A full queue is handled by
//! the connection's overflow policy inside `ws-server`; the hub only counts.
//!
//! Order: a push is queued to every recipient before the call returns, and
//! each connection's queue is FIFO, so pushes from one caller reach each
//! browser in call order.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use ws_proto::PreparedMessage;
use ws_server::{Connection, SendError};

use crate::data::Payload;

/// What the hub knows about one browser connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The server-assigned connection id.
    pub id: u64,
    /// The browser's address.
    pub peer: SocketAddr,
    /// The request path of the upgrade (free for applications).
    pub path: String,
    /// The query string of the upgrade, without `?`.
    pub query: String,
    /// When the connection opened.
    pub opened: SystemTime,
}

struct Entry {
    conn: Connection,
    info: ConnInfo,
    channels: HashSet<Arc<str>>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, Entry>,
    channels: HashMap<Arc<str>, HashMap<u64, Connection>>,
}

/// Counters the hub keeps; read them with [`Hub::stats`].
#[derive(Debug, Default)]
pub struct Counters {
    /// Pushes accepted (`push_data`, `publish`, `send`), each counted once.
    pub pushes: AtomicU64,
    /// Frames queued to connections (one push to N connections counts N).
    pub deliveries: AtomicU64,
    /// Frame bytes queued to connections.
    pub delivered_bytes: AtomicU64,
    /// Deliveries refused because a connection's queue was full.
    pub overflows: AtomicU64,
    /// Deliveries to a connection that was already closing.
    pub to_closed: AtomicU64,
    /// Messages received from browsers.
    pub messages_in: AtomicU64,
    /// Bytes received from browsers.
    pub bytes_in: AtomicU64,
}

/// The hub. Cheap to share: wrap it in an `Arc`.
#[derive(Default)]
pub struct Hub {
    state: RwLock<State>,
    counters: Counters,
}

/// Parses the channels a browser asked for in its URL: `?channel=a&channel=b`.
pub fn channels_from_query(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "channel")
        .filter_map(|(_, v)| percent_decode(v))
        .filter(|v| !v.is_empty())
        .collect()
}

/// Decodes `%XX` escapes and `+` in a query value; `None` if it is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl Hub {
    /// A new, empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a
        // way that matters more than stopping fan-out, so poisoning is ignored.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Registers an open connection and subscribes it to `channels`.
    pub fn add(&self, conn: Connection, info: ConnInfo, channels: &[String]) {
        let id = info.id;
        let mut state = self.write();
        state.conns.insert(
            id,
            Entry {
                conn,
                info,
                channels: HashSet::new(),
            },
        );
        for channel in channels {
            subscribe_locked(&mut state, id, channel);
        }
    }

    /// Forgets a closed connection.
    pub fn remove(&self, id: u64) {
        let mut state = self.write();
        if let Some(entry) = state.conns.remove(&id) {
            for channel in entry.channels {
                unsubscribe_from(&mut state, id, &channel);
            }
        }
    }

    /// Counts a message a browser sent.
    pub fn count_inbound(&self, bytes: usize) {
        self.counters.messages_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Queues `payload` to every connection. Returns how many it was queued to.
    pub fn broadcast(&self, payload: Payload) -> usize {
        let prepared = prepare(payload);
        let state = self.read();
        self.fan_out(&prepared, state.conns.values().map(|e| &e.conn))
    }

    /// Queues `payload` to the subscribers of `channel`; returns how many.
    pub fn publish(&self, channel: &str, payload: Payload) -> usize {
        let state = self.read();
        let Some(subscribers) = state.channels.get(channel) else {
            self.counters.pushes.fetch_add(1, Ordering::Relaxed);
            return 0;
        };
        let prepared = prepare(payload);
        self.fan_out(&prepared, subscribers.values())
    }

    /// Queues `payload` to one connection; false if there is no such connection.
    pub fn send(&self, id: u64, payload: Payload) -> bool {
        let state = self.read();
        let Some(entry) = state.conns.get(&id) else {
            return false;
        };
        let prepared = prepare(payload);
        self.fan_out(&prepared, std::iter::once(&entry.conn));
        true
    }

    fn fan_out<'a>(
        &self,
        prepared: &Arc<PreparedMessage>,
        conns: impl Iterator<Item = &'a Connection>,
    ) -> usize {
        let frame_len = prepared.plain_frame().len() as u64;
        let (mut queued, mut full, mut closed) = (0u64, 0u64, 0u64);
        for conn in conns {
            match conn.send_prepared(prepared) {
                Ok(()) => queued += 1,
                Err(SendError::Full) => full += 1,
                Err(_) => closed += 1,
            }
        }
        let c = &self.counters;
        c.pushes.fetch_add(1, Ordering::Relaxed);
        c.deliveries.fetch_add(queued, Ordering::Relaxed);
        c.delivered_bytes
            .fetch_add(queued * frame_len, Ordering::Relaxed);
        if full > 0 {
            c.overflows.fetch_add(full, Ordering::Relaxed);
        }
        if closed > 0 {
            c.to_closed.fetch_add(closed, Ordering::Relaxed);
        }
        queued as usize
    }

    /// Subscribes a connection to a channel; false if there is no such connection.
    pub fn subscribe(&self, id: u64, channel: &str) -> bool {
        subscribe_locked(&mut self.write(), id, channel)
    }

    /// Unsubscribes a connection from a channel; false if it was not subscribed.
    pub fn unsubscribe(&self, id: u64, channel: &str) -> bool {
        let mut state = self.write();
        let Some(entry) = state.conns.get_mut(&id) else {
            return false;
        };
        if !entry.channels.remove(channel) {
            return false;
        }
        unsubscribe_from(&mut state, id, channel);
        true
    }

    /// Starts the close handshake of a connection; false if there is none.
    pub fn disconnect(&self, id: u64, code: u16, reason: &str) -> bool {
        match self.read().conns.get(&id) {
            Some(entry) => {
                entry.conn.close(code, reason);
                true
            }
            None => false,
        }
    }

    /// Closes every connection (graceful shutdown), returning how many.
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        let state = self.read();
        for entry in state.conns.values() {
            entry.conn.close(code, reason);
        }
        state.conns.len()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.read().conns.len()
    }

    /// A snapshot of every connection, ordered by id.
    pub fn connections(&self) -> Vec<ConnSnapshot> {
        let state = self.read();
        let mut list: Vec<ConnSnapshot> = state
            .conns
            .values()
            .map(|e| {
                let mut channels: Vec<String> = e.channels.iter().map(|c| c.to_string()).collect();
                channels.sort();
                ConnSnapshot {
                    info: e.info.clone(),
                    channels,
                    queued_bytes: e.conn.queued_bytes(),
                }
            })
            .collect();
        list.sort_by_key(|s| s.info.id);
        list
    }

    /// Every channel with its number of subscribers, ordered by name.
    pub fn channels(&self) -> Vec<(String, usize)> {
        let state = self.read();
        let mut list: Vec<(String, usize)> = state
            .channels
            .iter()
            .map(|(name, subs)| (name.to_string(), subs.len()))
            .collect();
        list.sort();
        list
    }

    /// Sum of bytes waiting in every connection's outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.read()
            .conns
            .values()
            .map(|e| e.conn.queued_bytes())
            .sum()
    }
}

/// A connection as `connections()` reports it.
#[derive(Debug, Clone)]
pub struct ConnSnapshot {
    /// Identity and origin.
    pub info: ConnInfo,
    /// Subscribed channels, sorted.
    pub channels: Vec<String>,
    /// Bytes waiting in its outbound queue.
    pub queued_bytes: usize,
}

fn prepare(payload: Payload) -> Arc<PreparedMessage> {
    Arc::new(PreparedMessage::new(payload.into_message()))
}

fn subscribe_locked(state: &mut State, id: u64, channel: &str) -> bool {
    let Some(entry) = state.conns.get_mut(&id) else {
        return false;
    };
    let name: Arc<str> = match state.channels.get_key_value(channel) {
        Some((name, _)) => name.clone(),
        None => Arc::from(channel),
    };
    entry.channels.insert(name.clone());
    let conn = entry.conn.clone();
    state.channels.entry(name).or_default().insert(id, conn);
    true
}

fn unsubscribe_from(state: &mut State, id: u64, channel: &str) {
    if let Some(subs) = state.channels.get_mut(channel) {
        subs.remove(&id);
        if subs.is_empty() {
            state.channels.remove(channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_come_from_the_query() {
        assert_eq!(
            channels_from_query("channel=news&x=1&channel=sports&channel="),
            vec!["news", "sports"]
        );
        assert_eq!(
            channels_from_query("channel=a%20b&channel=c+d"),
            vec!["a b", "c d"]
        );
        assert_eq!(channels_from_query("channel=%zz"), vec!["%zz"]);
        assert_eq!(channels_from_query("channel=%e2%82%ac"), vec!["€"]);
        assert!(channels_from_query("").is_empty());
        assert!(channels_from_query("channel=%ff").is_empty());
    }
}
