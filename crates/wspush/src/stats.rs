//! One snapshot of the server's counters, rendered for RPC `stats()` and for
//! the Prometheus `/metrics` endpoint from the same numbers.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use rmpv::Value;

use crate::broker::BrokerCounters;
use crate::delivery::events::Listeners;
use crate::delivery::hub::Hub;

/// A point-in-time copy of every counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// WebSocket connections open now.
    pub connections: u64,
    /// WebSocket connections opened since start.
    pub connections_total: u64,
    /// Channels with at least one subscriber.
    pub channels: u64,
    /// Pushes accepted (each `push_data`/`publish`/`send` counts once).
    pub pushes: u64,
    /// Frames queued to browsers.
    pub deliveries: u64,
    /// Frame bytes queued to browsers.
    pub delivered_bytes: u64,
    /// Deliveries refused because a browser's queue was full.
    pub overflows: u64,
    /// Connections closed with 1008 because their queue overflowed.
    pub overflow_closes: u64,
    /// Deliveries to connections already closing.
    pub to_closed: u64,
    /// Bytes waiting in outbound queues now.
    pub queued_bytes: u64,
    /// Messages written to browser sockets.
    pub messages_written: u64,
    /// Write calls the fan-out writers made to idle browsers (no wake-up of the connection).
    pub direct_writes: u64,
    /// Write calls to browser sockets, by connection tasks and fan-out writers together.
    pub write_calls: u64,
    /// Bytes written to browser sockets.
    pub bytes_written: u64,
    /// Upgrades refused with 503 because the connection cap was reached.
    pub refused_full: u64,
    /// Messages received from browsers.
    pub messages_in: u64,
    /// Bytes received from browsers.
    pub bytes_in: u64,
    /// RPC connections that called `listen()`.
    pub listeners: u64,
    /// Events not delivered to a listener because its queue was full.
    pub events_dropped: u64,
    /// Connections that resumed a stream from a position.
    pub resumes: u64,
    /// Gap notices sent to browsers (history did not cover what they missed).
    pub gap_notices: u64,
    /// Bytes of messages the embedded broker's history holds now.
    pub history_bytes: u64,
    /// Channels whose numbering the embedded broker keeps now.
    pub history_channels: u64,
    /// Messages dropped from (or never kept in) history by `history_stream_bytes`.
    pub history_trimmed_stream: u64,
    /// Messages dropped from history by `history_total_bytes`.
    pub history_trimmed_total: u64,
    /// Channels whose history was forgotten after `history_secs` idle.
    pub history_expired_channels: u64,
    /// This node's number (0: embedded broker).
    pub node: u64,
    /// 1 while the Redis subscription is up (always 0 with the embedded broker).
    pub broker_connected: u64,
    /// Pushes that failed because Redis was unavailable (callers got an error).
    pub broker_publish_errors: u64,
    /// Times the Redis subscription was lost or could not be made.
    pub broker_disconnects: u64,
    /// Messages received from Redis.
    pub broker_messages_in: u64,
    /// Messages from Redis that could not be parsed.
    pub broker_bad_messages: u64,
    /// History reads from Redis that failed.
    pub broker_history_errors: u64,
    /// Upgrades refused with 400 (a malformed `since=`).
    pub refused_bad_request: u64,
    /// Pushes refused because this node's Redis subscription was not up.
    pub broker_refused_pushes: u64,
    /// Bytes of bus messages waiting in this node's intake now.
    pub broker_intake_bytes: u64,
    /// The most the intake has held since start.
    pub broker_intake_peak_bytes: u64,
    /// Bus messages this node dropped (intake full, or larger than all of it).
    pub broker_intake_dropped: u64,
    /// Times the intake filled and this node went into gap mode.
    pub broker_lag_episodes: u64,
    /// Upgrades refused with 401 (missing or invalid token).
    pub refused_unauthorized: u64,
    /// Upgrades refused with 403 (origin or channel not allowed).
    pub refused_forbidden: u64,
    /// TCP connections refused (429): their address held too many.
    pub refused_per_ip: u64,
    /// TCP connections refused (429): their address connected too fast.
    pub refused_rate: u64,
    /// Requests refused (431): head too large.
    pub refused_head: u64,
    /// Connections dropped for missing the handshake timeout.
    pub handshake_timeouts: u64,
    /// Connections dropped for not answering a ping in time.
    pub ping_timeouts: u64,
    /// RPC calls refused: wrong secret, or a call before `auth(secret)`.
    pub rpc_auth_failures: u64,
    /// RPC connections open now.
    pub rpc_connections: u64,
    /// RPC requests and notifications received.
    pub rpc_calls: u64,
    /// RPC connections closed for malformed input.
    pub rpc_malformed_closes: u64,
    /// Of those, closed for breaking a size, depth or element limit.
    pub rpc_limit_closes: u64,
    /// Times an RPC connection stopped reading at its in-flight or output cap.
    pub rpc_backpressure_pauses: u64,
    /// RPC connections closed at accept: `rpc_max_connections` were open.
    pub rpc_refused_full: u64,
    /// RPC connections closed at accept: their address held `rpc_max_connections_per_ip`.
    pub rpc_refused_per_ip: u64,
    /// RPC connections closed: a message incomplete after `rpc_message_timeout`.
    pub rpc_message_timeouts: u64,
    /// RPC connections closed: no `auth(secret)` within `rpc_auth_timeout`.
    pub rpc_auth_timeouts: u64,
    /// Of `rpc_limit_closes`, connections not yet authenticated (a message over
    /// `rpc_auth_max_message_bytes`).
    pub rpc_auth_limit_closes: u64,
    /// Close codes since start, with counts.
    pub closes_by_code: BTreeMap<u16, u64>,
}

impl Stats {
    /// Reads the hub's, the WebSocket server's and the listeners' counters.
    pub fn collect(
        hub: &Hub,
        ws: &ws_server::StatsSnapshot,
        listeners: &Listeners,
        uptime_secs: u64,
    ) -> Stats {
        let c = hub.counters();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let history = hub.history().usage();
        Stats {
            uptime_secs,
            connections: hub.connection_count() as u64,
            connections_total: ws.connections_total,
            channels: hub.channels().len() as u64,
            pushes: get(&c.pushes),
            deliveries: get(&c.deliveries),
            delivered_bytes: get(&c.delivered_bytes),
            overflows: get(&c.overflows),
            overflow_closes: ws.overflow_closes,
            to_closed: get(&c.to_closed),
            queued_bytes: hub.queued_bytes() as u64,
            messages_written: ws.messages_sent,
            direct_writes: ws.direct_writes,
            write_calls: ws.write_calls,
            bytes_written: ws.bytes_sent,
            messages_in: get(&c.messages_in),
            bytes_in: get(&c.bytes_in),
            refused_full: ws.rejected_full,
            refused_per_ip: ws.rejected_per_ip,
            refused_rate: ws.rejected_rate,
            refused_head: ws.rejected_head,
            handshake_timeouts: ws.handshake_timeouts,
            ping_timeouts: ws.ping_timeouts,
            listeners: listeners.count() as u64,
            events_dropped: listeners.dropped(),
            resumes: get(&c.resumes),
            gap_notices: get(&c.gap_notices),
            history_bytes: history.bytes,
            history_channels: history.channels,
            history_trimmed_stream: history.trimmed_stream,
            history_trimmed_total: history.trimmed_total,
            history_expired_channels: history.expired_channels,
            closes_by_code: ws.closes_by_code.iter().copied().collect(),
            ..Stats::default()
        }
    }

    /// Adds the RPC server's counters.
    pub fn add_rpc(&mut self, r: &msgpack_rpc::ServerStats) {
        self.rpc_connections = r.connections_open;
        self.rpc_calls = r.requests + r.notifications;
        self.rpc_malformed_closes = r.malformed_closes;
        self.rpc_limit_closes = r.limit_closes;
        self.rpc_backpressure_pauses = r.backpressure_pauses;
        self.rpc_refused_full = r.refused_full;
        self.rpc_refused_per_ip = r.refused_per_ip;
        self.rpc_message_timeouts = r.message_timeouts;
        self.rpc_auth_timeouts = r.auth_timeouts;
        self.rpc_auth_limit_closes = r.auth_limit_closes;
    }

    /// Adds the Redis broker's counters.
    pub fn add_broker(&mut self, b: &BrokerCounters) {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        self.broker_connected = get(&b.connected);
        self.broker_publish_errors = get(&b.publish_errors);
        self.broker_disconnects = get(&b.disconnects);
        self.broker_messages_in = get(&b.messages_in);
        self.broker_bad_messages = get(&b.bad_messages);
        self.broker_history_errors = get(&b.history_errors);
        self.broker_refused_pushes = get(&b.refused_pushes);
        self.broker_intake_bytes = get(&b.intake_bytes);
        self.broker_intake_peak_bytes = get(&b.intake_peak);
        self.broker_intake_dropped = get(&b.intake_dropped);
        self.broker_lag_episodes = get(&b.lag_episodes);
    }

    fn scalars(&self) -> Vec<(&'static str, u64, &'static str)> {
        vec![
            (
                "ping_timeouts",
                self.ping_timeouts,
                "Connections dropped: no pong in time",
            ),
            (
                "refused_per_ip",
                self.refused_per_ip,
                "Connections refused (429): too many from one address",
            ),
            (
                "refused_rate",
                self.refused_rate,
                "Connections refused (429): one address connected too fast",
            ),
            (
                "refused_head",
                self.refused_head,
                "Requests refused (431): request head too large",
            ),
            (
                "handshake_timeouts",
                self.handshake_timeouts,
                "Connections dropped: handshake not done in time",
            ),
            (
                "rpc_auth_failures",
                self.rpc_auth_failures,
                "RPC calls refused for a missing or wrong secret",
            ),
            (
                "rpc_connections",
                self.rpc_connections,
                "RPC connections open",
            ),
            (
                "rpc_calls",
                self.rpc_calls,
                "RPC requests and notifications received",
            ),
            (
                "rpc_malformed_closes",
                self.rpc_malformed_closes,
                "RPC connections closed for malformed input",
            ),
            (
                "rpc_limit_closes",
                self.rpc_limit_closes,
                "RPC connections closed for a message over a limit",
            ),
            (
                "rpc_backpressure_pauses",
                self.rpc_backpressure_pauses,
                "RPC connections paused at their in-flight or output cap",
            ),
            (
                "rpc_refused_full",
                self.rpc_refused_full,
                "RPC connections closed at accept: rpc_max_connections open",
            ),
            (
                "rpc_refused_per_ip",
                self.rpc_refused_per_ip,
                "RPC connections closed at accept: too many from one address",
            ),
            (
                "rpc_message_timeouts",
                self.rpc_message_timeouts,
                "RPC connections closed: a message incomplete after rpc_message_timeout",
            ),
            (
                "rpc_auth_timeouts",
                self.rpc_auth_timeouts,
                "RPC connections closed: no auth(secret) within rpc_auth_timeout",
            ),
            (
                "rpc_auth_limit_closes",
                self.rpc_auth_limit_closes,
                "RPC connections closed before auth for a message over the pre-auth limit",
            ),
            (
                "refused_bad_request",
                self.refused_bad_request,
                "Upgrades refused with 400 (malformed since=)",
            ),
            (
                "refused_unauthorized",
                self.refused_unauthorized,
                "Upgrades refused with 401 (token missing or invalid)",
            ),
            (
                "refused_forbidden",
                self.refused_forbidden,
                "Upgrades refused with 403 (origin or channel not allowed)",
            ),
            ("uptime_secs", self.uptime_secs, "Seconds since start"),
            (
                "connections",
                self.connections,
                "WebSocket connections open",
            ),
            (
                "connections_total",
                self.connections_total,
                "WebSocket connections opened since start",
            ),
            ("channels", self.channels, "Channels with subscribers"),
            ("pushes", self.pushes, "Pushes accepted"),
            ("deliveries", self.deliveries, "Frames queued to browsers"),
            (
                "delivered_bytes",
                self.delivered_bytes,
                "Frame bytes queued to browsers",
            ),
            (
                "overflows",
                self.overflows,
                "Deliveries refused: browser queue full",
            ),
            (
                "overflow_closes",
                self.overflow_closes,
                "Connections closed 1008: queue overflow",
            ),
            (
                "to_closed",
                self.to_closed,
                "Deliveries to closing connections",
            ),
            (
                "queued_bytes",
                self.queued_bytes,
                "Bytes waiting in outbound queues",
            ),
            (
                "messages_written",
                self.messages_written,
                "Messages written to browser sockets",
            ),
            (
                "direct_writes",
                self.direct_writes,
                "Writes to idle browser sockets by the fan-out writers, without waking the connection",
            ),
            (
                "write_calls",
                self.write_calls,
                "Write calls to browser sockets (messages_written / write_calls: frames per write)",
            ),
            (
                "bytes_written",
                self.bytes_written,
                "Bytes written to browser sockets",
            ),
            (
                "refused_full",
                self.refused_full,
                "Upgrades refused: connection cap",
            ),
            (
                "messages_in",
                self.messages_in,
                "Messages received from browsers",
            ),
            ("bytes_in", self.bytes_in, "Bytes received from browsers"),
            (
                "listeners",
                self.listeners,
                "RPC connections listening for events",
            ),
            (
                "events_dropped",
                self.events_dropped,
                "Events dropped: listener queue full",
            ),
            ("resumes", self.resumes, "Streams resumed from a position"),
            (
                "gap_notices",
                self.gap_notices,
                "Gap notices sent to browsers",
            ),
            (
                "history_bytes",
                self.history_bytes,
                "Bytes of messages kept for resumes (embedded broker)",
            ),
            (
                "history_channels",
                self.history_channels,
                "Channels whose numbering is kept (embedded broker)",
            ),
            (
                "history_trimmed_stream",
                self.history_trimmed_stream,
                "Messages dropped from history: per-stream byte limit",
            ),
            (
                "history_trimmed_total",
                self.history_trimmed_total,
                "Messages dropped from history: total byte limit",
            ),
            (
                "history_expired_channels",
                self.history_expired_channels,
                "Channels forgotten after history_secs idle",
            ),
            ("node", self.node, "This node's number (0: embedded broker)"),
            (
                "broker_connected",
                self.broker_connected,
                "Redis subscription up",
            ),
            (
                "broker_publish_errors",
                self.broker_publish_errors,
                "Pushes failed: Redis unavailable",
            ),
            (
                "broker_disconnects",
                self.broker_disconnects,
                "Redis subscription lost or refused",
            ),
            (
                "broker_messages_in",
                self.broker_messages_in,
                "Messages from Redis",
            ),
            (
                "broker_bad_messages",
                self.broker_bad_messages,
                "Unreadable messages from Redis",
            ),
            (
                "broker_history_errors",
                self.broker_history_errors,
                "History reads from Redis that failed",
            ),
            (
                "broker_refused_pushes",
                self.broker_refused_pushes,
                "Pushes refused: this node's Redis subscription not up",
            ),
            (
                "broker_intake_bytes",
                self.broker_intake_bytes,
                "Bytes of bus messages waiting in this node's intake",
            ),
            (
                "broker_intake_peak_bytes",
                self.broker_intake_peak_bytes,
                "Most bytes this node's intake has held",
            ),
            (
                "broker_intake_dropped",
                self.broker_intake_dropped,
                "Bus messages dropped: intake full (gap mode) or message too large",
            ),
            (
                "broker_lag_episodes",
                self.broker_lag_episodes,
                "Times this node's intake filled (gap mode)",
            ),
        ]
    }

    /// Every scalar counter by name (shared with the other nodes in Redis mode).
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        self.scalars()
            .iter()
            .map(|(name, v, _)| (*name, *v))
            .collect()
    }

    /// The map returned by RPC `stats()`: plain names a person can read.
    pub fn to_value(&self) -> Value {
        let mut map: Vec<(Value, Value)> = self
            .scalars()
            .iter()
            .map(|(name, v, _)| (Value::from(*name), Value::from(*v)))
            .collect();
        let closes = self
            .closes_by_code
            .iter()
            .map(|(code, n)| (Value::from(code.to_string()), Value::from(*n)))
            .collect();
        map.push((Value::from("closes_by_code"), Value::Map(closes)));
        Value::Map(map)
    }

    /// The Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, v, help) in self.scalars() {
            let kind = if matches!(
                name,
                "connections"
                    | "channels"
                    | "queued_bytes"
                    | "history_bytes"
                    | "history_channels"
                    | "listeners"
                    | "uptime_secs"
                    | "node"
                    | "broker_connected"
                    | "broker_intake_bytes"
                    | "broker_intake_peak_bytes"
                    | "rpc_connections"
            ) {
                "gauge"
            } else {
                "counter"
            };
            let _ = writeln!(
                out,
                "# HELP wspush_{name} {help}\n# TYPE wspush_{name} {kind}\nwspush_{name} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP wspush_closes Connections closed, by close code\n# TYPE wspush_closes counter"
        );
        for (code, n) in &self.closes_by_code {
            let _ = writeln!(out, "wspush_closes{{code=\"{code}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names_every_counter() {
        let mut s = Stats {
            deliveries: 42,
            ..Stats::default()
        };
        s.closes_by_code.insert(1001, 3);
        let text = s.to_prometheus();
        assert!(text.contains("wspush_deliveries 42\n"), "{text}");
        assert!(text.contains("# TYPE wspush_connections gauge"), "{text}");
        assert!(text.contains("wspush_closes{code=\"1001\"} 3\n"), "{text}");
    }

    #[test]
    fn rpc_map_has_readable_names() {
        let s = Stats {
            pushes: 7,
            ..Stats::default()
        };
        let Value::Map(entries) = s.to_value() else {
            panic!("not a map")
        };
        assert!(entries.contains(&(Value::from("pushes"), Value::from(7u64))));
        assert!(
            entries
                .iter()
                .any(|(k, _)| k.as_str() == Some("closes_by_code"))
        );
    }
}

/// Sums the counters several nodes shared: the `cluster` part of `stats()`.
/// Per-node facts (`node`, `uptime_secs`, `broker_connected`, the intake
/// peak) are not summed.
pub fn cluster_value(nodes: &[(u32, Vec<(String, u64)>)]) -> Value {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, counters) in nodes {
        for (name, v) in counters {
            if !matches!(
                name.as_str(),
                "node" | "uptime_secs" | "broker_connected" | "broker_intake_peak_bytes"
            ) {
                *sums.entry(name.as_str()).or_default() += v;
            }
        }
    }
    let mut ids: Vec<u32> = nodes.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    let mut map = vec![(
        Value::from("nodes"),
        Value::Array(ids.into_iter().map(Value::from).collect()),
    )];
    map.extend(
        sums.into_iter()
            .map(|(k, v)| (Value::from(k), Value::from(v))),
    );
    Value::Map(map)
}

#[cfg(test)]
mod cluster_tests {
    use super::*;

    #[test]
    fn cluster_sums_counters_but_not_per_node_facts() {
        let nodes = vec![
            (
                2,
                vec![("deliveries".to_owned(), 5), ("node".to_owned(), 2)],
            ),
            (
                1,
                vec![("deliveries".to_owned(), 7), ("node".to_owned(), 1)],
            ),
        ];
        let Value::Map(map) = cluster_value(&nodes) else {
            panic!("not a map")
        };
        assert_eq!(
            map,
            vec![
                (
                    Value::from("nodes"),
                    Value::Array(vec![Value::from(1), Value::from(2)])
                ),
                (Value::from("deliveries"), Value::from(12)),
            ]
        );
    }
}
