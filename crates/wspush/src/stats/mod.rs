//! One snapshot of the server's counters, rendered for RPC `stats()` and for
//! the Prometheus `/metrics` endpoint from the same numbers.
//!
//! Each counter is declared once, in the `counters!` list below: its `stats()` key (the
//! field of [`Stats`]), the group `wspush stats` prints it in, its kind and its Prometheus
//! name and labels. The doc comment is the field's doc and the metric's help.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use rmpv::Value;

use crate::broker::BrokerCounters;
use crate::delivery::events::Listeners;
use crate::delivery::hub::Hub;

mod prometheus;

/// What a number is, for Prometheus and for the cluster sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (from start); Prometheus names end in `_total`.
    Counter,
    /// A level now; summed over the nodes of a cluster.
    Gauge,
    /// A fact about this node alone (its number, uptime): never summed.
    NodeGauge,
}

/// One counter: where `stats()` and `/metrics` show it.
#[derive(Debug)]
pub struct Counter {
    /// The key in RPC `stats()` (and the field of [`Stats`]).
    pub key: &'static str,
    /// The group `wspush stats` prints it in.
    pub group: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// The Prometheus metric family.
    pub metric: &'static str,
    /// Its labels within that family.
    pub labels: &'static [(&'static str, &'static str)],
    /// What it counts (the doc comment).
    pub help: &'static str,
}

macro_rules! kind {
    (counter) => {
        Kind::Counter
    };
    (gauge) => {
        Kind::Gauge
    };
    (node_gauge) => {
        Kind::NodeGauge
    };
}

/// Expands the list: the [`Stats`] struct, [`COUNTERS`] and `Stats::scalars`.
macro_rules! counters {
    ($( $group:ident {
        $(
            $(#[doc = $doc:literal])+
            $key:ident: $kind:ident $metric:ident $({ $($label:ident = $value:literal),+ })?;
        )+
    } )+) => {
        /// A point-in-time copy of every counter.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Stats {
            $($( $(#[doc = $doc])+ pub $key: u64, )+)+
            /// Close codes since start, with counts (`wspush_closes_total{code}`).
            pub closes_by_code: BTreeMap<u16, u64>,
        }

        /// Every scalar counter, in the order `stats()` and `wspush stats` show them.
        pub const COUNTERS: &[Counter] = &[$($(
            Counter {
                key: stringify!($key),
                group: stringify!($group),
                kind: kind!($kind),
                metric: stringify!($metric),
                labels: &[$($((stringify!($label), $value)),+)?],
                help: concat!($($doc),+),
            },
        )+)+];

        impl Stats {
            /// Every scalar counter with its value, in the order of [`COUNTERS`].
            pub fn scalars(&self) -> impl Iterator<Item = (&'static Counter, u64)> {
                COUNTERS.iter().zip([$($(self.$key),+),+])
            }
        }
    };
}

/// Help of the Prometheus families whose members are told apart by labels (a member's
/// own doc says what that one counts).
const FAMILY_HELP: &[(&str, &str)] = &[
    (
        "wspush_timeouts_total",
        "Connections dropped for missing a deadline, by kind",
    ),
    (
        "wspush_closes_total",
        "WebSocket connections closed, by close code",
    ),
    (
        "wspush_history_trimmed_total",
        "Messages dropped from history, by the byte limit that dropped them",
    ),
    (
        "wspush_rpc_timeouts_total",
        "RPC connections closed for missing a deadline, by kind",
    ),
    (
        "wspush_refusals_total",
        "Connections and upgrades refused, by reason and HTTP status",
    ),
    (
        "wspush_api_errors_total",
        "HTTP API answers that were errors, by HTTP status (200: an error body)",
    ),
    (
        "wspush_api_timeouts_total",
        "HTTP API connections closed for missing a deadline, by kind",
    ),
    (
        "wspush_rpc_refusals_total",
        "RPC connections closed at accept, by reason",
    ),
];

counters! {
    connections {
        /// Seconds since the server started.
        uptime_secs: node_gauge wspush_uptime_seconds;
        /// WebSocket connections open now.
        connections: gauge wspush_connections;
        /// WebSocket connections opened since start.
        connections_total: counter wspush_connections_opened_total;
        /// Channels with at least one subscriber.
        channels: gauge wspush_channels;
        /// Messages received from browsers.
        messages_in: counter wspush_received_messages_total;
        /// Bytes received from browsers.
        bytes_in: counter wspush_received_bytes_total;
        /// Connections dropped for missing the handshake timeout.
        handshake_timeouts: counter wspush_timeouts_total { kind = "handshake" };
        /// Connections dropped for not answering a ping in time.
        ping_timeouts: counter wspush_timeouts_total { kind = "ping" };
    }
    delivery {
        /// Pushes accepted (each `push_data`/`publish`/`send` counts once).
        pushes: counter wspush_pushes_total;
        /// Pushes that met a fan-out of their stream in progress and went out in its next
        /// pass, sharing its touch of every queue (embedded broker).
        joined_pushes: counter wspush_joined_pushes_total;
        /// Frames queued to browsers.
        deliveries: counter wspush_deliveries_total;
        /// Frame bytes queued to browsers.
        delivered_bytes: counter wspush_delivered_bytes_total;
        /// Deliveries refused because a browser's queue was full.
        overflows: counter wspush_overflows_total;
        /// Connections closed with 1008 because their queue overflowed.
        overflow_closes: counter wspush_overflow_closes_total;
        /// Deliveries to connections already closing.
        to_closed: counter wspush_deliveries_to_closed_total;
        /// Bytes waiting in outbound queues now.
        queued_bytes: gauge wspush_queued_bytes;
        /// Messages written to browser sockets.
        messages_written: counter wspush_written_messages_total;
        /// Bytes written to browser sockets.
        bytes_written: counter wspush_written_bytes_total;
        /// Write calls to browser sockets, by connection tasks and fan-out writers together
        /// (messages written / write calls: frames per write).
        write_calls: counter wspush_write_calls_total;
        /// Write calls the fan-out writers made to idle browsers (no wake-up of the connection).
        direct_writes: counter wspush_direct_writes_total;
        /// Connections that resumed a stream from a position.
        resumes: counter wspush_resumes_total;
        /// Gap notices sent to browsers (history did not cover what they missed).
        gap_notices: counter wspush_gap_notices_total;
        /// Bytes of messages the embedded broker's history holds now.
        history_bytes: gauge wspush_history_bytes;
        /// Channels whose numbering the embedded broker keeps now.
        history_channels: gauge wspush_history_channels;
        /// Messages dropped from (or never kept in) history by `history_stream_bytes`.
        history_trimmed_stream: counter wspush_history_trimmed_total { limit = "stream" };
        /// Messages dropped from history by `history_total_bytes`.
        history_trimmed_total: counter wspush_history_trimmed_total { limit = "total" };
        /// Channels whose history was forgotten after `history_secs` idle.
        history_expired_channels: counter wspush_history_expired_channels_total;
    }
    rpc {
        /// RPC connections open now.
        rpc_connections: gauge wspush_rpc_connections;
        /// RPC requests and notifications received.
        rpc_calls: counter wspush_rpc_calls_total;
        /// RPC connections that called `listen()`.
        listeners: gauge wspush_listeners;
        /// Events not delivered to a listener because its queue was full.
        events_dropped: counter wspush_dropped_events_total;
        /// RPC calls refused: wrong secret, or a call before `auth(secret)`.
        rpc_auth_failures: counter wspush_rpc_auth_failures_total;
        /// RPC connections closed for malformed input.
        rpc_malformed_closes: counter wspush_rpc_malformed_closes_total;
        /// Of those, closed for breaking a size, depth or element limit.
        rpc_limit_closes: counter wspush_rpc_limit_closes_total;
        /// Of `rpc_limit_closes`, connections not yet authenticated (a message over
        /// `rpc_auth_max_message_bytes`).
        rpc_auth_limit_closes: counter wspush_rpc_auth_limit_closes_total;
        /// Times an RPC connection stopped reading at its in-flight or output cap.
        rpc_backpressure_pauses: counter wspush_rpc_backpressure_pauses_total;
        /// RPC connections closed: a message incomplete after `rpc_message_timeout`.
        rpc_message_timeouts: counter wspush_rpc_timeouts_total { kind = "message" };
        /// RPC connections closed: no `auth(secret)` within `rpc_auth_timeout`.
        rpc_auth_timeouts: counter wspush_rpc_timeouts_total { kind = "auth" };
    }
    limits {
        /// Upgrades refused with 400 (a malformed `since=`).
        refused_bad_request: counter wspush_refusals_total { reason = "bad_request", status = "400" };
        /// Upgrades refused with 401 (missing or invalid token).
        refused_unauthorized: counter wspush_refusals_total { reason = "unauthorized", status = "401" };
        /// Upgrades refused with 403 (origin or channel not allowed).
        refused_forbidden: counter wspush_refusals_total { reason = "forbidden", status = "403" };
        /// TCP connections refused (429): their address held too many.
        refused_per_ip: counter wspush_refusals_total { reason = "per_ip", status = "429" };
        /// TCP connections refused (429): their address connected too fast.
        refused_rate: counter wspush_refusals_total { reason = "rate", status = "429" };
        /// Requests refused (431): head too large.
        refused_head: counter wspush_refusals_total { reason = "head_too_large", status = "431" };
        /// Upgrades refused with 503 because the connection cap was reached.
        refused_full: counter wspush_refusals_total { reason = "full", status = "503" };
        /// RPC connections closed at accept: `rpc_max_connections` were open.
        rpc_refused_full: counter wspush_rpc_refusals_total { reason = "full" };
        /// RPC connections closed at accept: their address held `rpc_max_connections_per_ip`.
        rpc_refused_per_ip: counter wspush_rpc_refusals_total { reason = "per_ip" };
    }
    api {
        /// HTTP API requests answered (every status).
        api_requests: counter wspush_api_requests_total;
        /// API answers 400: the body is not JSON of the method's shape.
        api_errors_400: counter wspush_api_errors_total { status = "400" };
        /// API answers 401: missing or wrong API key.
        api_errors_401: counter wspush_api_errors_total { status = "401" };
        /// API answers 404: unknown method or path.
        api_errors_404: counter wspush_api_errors_total { status = "404" };
        /// API answers 405: a method other than POST (GET for /health and /metrics).
        api_errors_405: counter wspush_api_errors_total { status = "405" };
        /// API answers 413: body over `api_max_body_bytes`.
        api_errors_413: counter wspush_api_errors_total { status = "413" };
        /// API answers 431: request head over `max_header_bytes`.
        api_errors_431: counter wspush_api_errors_total { status = "431" };
        /// API answers 503: the broker is unavailable.
        api_errors_503: counter wspush_api_errors_total { status = "503" };
        /// API answers 200 with an error body (a bad field, an unrecoverable position),
        /// batch replies included.
        api_errors_200: counter wspush_api_errors_total { status = "200" };
        /// HTTP API connections open now.
        api_connections: gauge wspush_api_connections;
        /// API connections closed: no complete request head within `api_header_timeout`.
        api_header_timeouts: counter wspush_api_timeouts_total { kind = "header" };
        /// API connections closed: idle for `api_idle_timeout`.
        api_idle_timeouts: counter wspush_api_timeouts_total { kind = "idle" };
    }
    broker {
        /// This node's number (0: embedded broker).
        node: node_gauge wspush_node_id;
        /// 1 while the Redis subscription is up (always 0 with the embedded broker).
        broker_connected: node_gauge wspush_broker_connected;
        /// Pushes that failed because Redis was unavailable (callers got an error).
        broker_publish_errors: counter wspush_broker_publish_errors_total;
        /// Times the Redis subscription was lost or could not be made.
        broker_disconnects: counter wspush_broker_disconnects_total;
        /// Messages received from Redis.
        broker_messages_in: counter wspush_broker_received_messages_total;
        /// Messages from Redis that could not be parsed.
        broker_bad_messages: counter wspush_broker_bad_messages_total;
        /// History reads from Redis that failed.
        broker_history_errors: counter wspush_broker_history_errors_total;
        /// Pushes refused because this node's Redis subscription was not up.
        broker_refused_pushes: counter wspush_broker_refused_pushes_total;
        /// Bytes of bus messages waiting in this node's intake now.
        broker_intake_bytes: gauge wspush_broker_intake_bytes;
        /// The most the intake has held since start.
        broker_intake_peak_bytes: node_gauge wspush_broker_intake_peak_bytes;
        /// Bus messages this node dropped (intake full, or larger than all of it).
        broker_intake_dropped: counter wspush_broker_intake_dropped_messages_total;
        /// Times the intake filled and this node went into gap mode.
        broker_lag_episodes: counter wspush_broker_lag_episodes_total;
        /// Surveys of every node this node asked (cluster-wide presence, channels, info).
        broker_surveys: counter wspush_broker_surveys_total;
        /// Surveys that failed: Redis unavailable, or not every node answered in time.
        broker_survey_errors: counter wspush_broker_survey_errors_total;
        /// Surveys this node answered (its own included).
        broker_survey_answers: counter wspush_broker_survey_answers_total;
        /// Survey answers this node could not send (queue full or Redis failed).
        broker_survey_answers_dropped: counter wspush_broker_survey_answers_dropped_total;
    }
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
            joined_pushes: get(&c.joined),
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

    /// Adds the HTTP API's counters.
    pub fn add_api(&mut self, a: &crate::api::ApiCounters) {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        self.api_requests = get(&a.requests);
        self.api_errors_400 = get(&a.status_400);
        self.api_errors_401 = get(&a.status_401);
        self.api_errors_404 = get(&a.status_404);
        self.api_errors_405 = get(&a.status_405);
        self.api_errors_413 = get(&a.status_413);
        self.api_errors_431 = get(&a.status_431);
        self.api_errors_503 = get(&a.status_503);
        self.api_errors_200 = get(&a.method_errors);
        self.api_connections = get(&a.connections);
        self.api_header_timeouts = get(&a.header_timeouts);
        self.api_idle_timeouts = get(&a.idle_timeouts);
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
        self.broker_surveys = get(&b.surveys);
        self.broker_survey_errors = get(&b.survey_errors);
        self.broker_survey_answers = get(&b.survey_answers);
        self.broker_survey_answers_dropped = get(&b.survey_answers_dropped);
    }

    /// Every scalar counter by name (shared with the other nodes in Redis mode).
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        self.scalars().map(|(c, v)| (c.key, v)).collect()
    }

    /// The map returned by RPC `stats()`: plain names a person can read.
    pub fn to_value(&self) -> Value {
        let mut map: Vec<(Value, Value)> = self
            .scalars()
            .map(|(c, v)| (Value::from(c.key), Value::from(v)))
            .collect();
        let closes = self
            .closes_by_code
            .iter()
            .map(|(code, n)| (Value::from(code.to_string()), Value::from(*n)))
            .collect();
        map.push((Value::from("closes_by_code"), Value::Map(closes)));
        Value::Map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
/// Per-node facts ([`Kind::NodeGauge`]: `node`, `uptime_secs`, …) are not summed.
pub fn cluster_value(nodes: &[(u32, Vec<(String, u64)>)]) -> Value {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, counters) in nodes {
        for (name, v) in counters {
            // A newer node's counter this one does not know is summed too.
            let per_node = COUNTERS
                .iter()
                .any(|c| c.key == name && c.kind == Kind::NodeGauge);
            if !per_node {
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
