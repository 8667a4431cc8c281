//! Settings of `wspush serve`: defaults, the TOML file, environment and flags.
//!
//! Precedence, highest first: command-line flag, `WSPUSH_*` environment
//! variable (clap reads both), the TOML file given with `--config`, the
//! built-in default. Every setting has the same name everywhere: `--queue-bytes`
//! is `WSPUSH_QUEUE_BYTES` and `queue_bytes = …` in the file.
//!
//! Each setting is written once, in the `settings!` list below: its doc (the `--help`
//! text), type, default and value name; `declare.rs` derives the rest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[macro_use]
mod declare;
mod value;

pub use declare::{env_of, flag_of};
use value::SettingValue;

/// What happens when a browser's outbound queue is full (it reads too slowly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Close the connection with 1008 ("slow consumer"): the client knows it
    /// lost data and can reconnect. The default: nothing is lost silently.
    Close,
    /// Drop the message for that connection and count it.
    Drop,
}

settings! {
    /// WebSocket and HTTP listen address.
    ws: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 8080)), "ADDR";
    /// MessagePack-RPC listen address; keep it on loopback (or set `rpc_secret`).
    rpc: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 18800)), "ADDR";
    /// HTTP server API listen address (Centrifugo's API shape, `POST /pub`, `/metrics`);
    /// keep it on loopback (or set `api_key`).
    api: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 18801)), "ADDR";
    /// Every API request must carry `X-API-Key: KEY` or `Authorization: apikey KEY`
    /// (none: no key); prefer the environment variable to the flag.
    api_key: Option<String> = None, "KEY" .hide_env_values(true);
    /// Serve the API on a non-loopback address without `api_key`.
    api_insecure: bool = false, "BOOL" .num_args(0..=1).default_missing_value("true");
    /// Largest API request body in bytes; larger get 413.
    // Matches max_message_bytes: what a browser may get in one message.
    api_max_body_bytes: usize = 1 << 20, "BYTES";
    /// Seconds an API request head may take to arrive; then the connection is closed.
    api_header_timeout: u64 = 10, "SECS";
    /// Seconds an API keep-alive connection may sit without a request, 0 for no limit.
    // Long enough for a program that pushes every few seconds to keep its connection,
    // short enough that abandoned ones do not pile up.
    api_idle_timeout: u64 = 60, "SECS";
    /// Also serve `/metrics` on the public (WebSocket) port; it is always on the API
    /// listener.
    // Off: a server's counters are not for every browser on the internet to read.
    metrics_public: bool = false, "BOOL" .num_args(0..=1).default_missing_value("true");
    /// Also serve MessagePack-RPC on this Unix socket path.
    rpc_unix: Option<PathBuf> = None, "PATH";
    /// Most WebSocket connections open at once; more get HTTP 503.
    max_connections: usize = 100_000, "N";
    /// Bytes a browser's outbound queue may hold before the overflow policy applies.
    // Room for ~250 pushes of 4 KiB: a browser stalled longer than that is better
    // told (1008) than buffered without end.
    queue_bytes: usize = 1 << 20, "BYTES";
    /// When a browser's queue is full: close it with 1008, or drop the message.
    overflow: Overflow = Overflow::Close, "POLICY";
    /// Largest message accepted from a browser, in bytes, after inflating.
    // Browsers send events back; a push server mostly sends.
    max_message_bytes: usize = 1 << 20, "BYTES";
    /// Negotiate permessage-deflate with browsers that offer it.
    compression: bool = true, "BOOL";
    /// Seconds of silence before the server pings a browser, 0 for never.
    ping_interval: u64 = 30, "SECS";
    /// Seconds a pinged browser has to answer before it is closed.
    pong_timeout: u64 = 30, "SECS";
    /// Seconds a client has to complete the HTTP upgrade.
    handshake_timeout: u64 = 10, "SECS";
    /// Seconds graceful shutdown waits for browsers and RPC calls to finish.
    shutdown_grace: u64 = 5, "SECS";
    /// Largest MessagePack-RPC message accepted, in bytes.
    rpc_max_message_bytes: usize = 16 << 20, "BYTES";
    /// RPC requests one connection may have in flight before reading pauses.
    rpc_max_in_flight: usize = 1024, "N";
    /// RPC connections open at once (TCP and Unix), 0 for no limit; more are closed at once.
    // Every RPC connection may buffer up to rpc_max_message_bytes, so their number is
    // what bounds that memory; programs that push hold a few connections, not thousands.
    rpc_max_connections: usize = 1024, "N";
    /// RPC connections one IP address may hold, loopback included, 0 for no limit; more
    /// are closed at once.
    // Not exempt on loopback (RPC is loopback by default: an exemption would exempt
    // everyone). Room for a host's worker pool with a connection per worker; one host
    // cannot take the whole cap.
    rpc_max_connections_per_ip: usize = 256, "N";
    /// Seconds an RPC message may take from its first byte to its last, 0 for no limit;
    /// then the connection is closed (idle connections never are).
    // A 16 MiB message in 30 s is 0.5 MiB/s; a peer that stops mid message must not
    // hold its buffer forever. Idle is fine.
    rpc_message_timeout: u64 = 30, "SECS";
    /// With `rpc_secret`: seconds a connection has to call auth(secret), 0 for no limit.
    // A program that knows the secret sends auth first, at once.
    rpc_auth_timeout: u64 = 10, "SECS";
    /// With `rpc_secret`: largest RPC message before auth(secret) succeeded, in bytes;
    /// larger close the connection.
    // auth(secret) fits in 4 KiB; an unauthenticated peer cannot make the server
    // buffer 16 MiB.
    rpc_auth_max_message_bytes: usize = 4 << 10, "BYTES";
    /// `embedded` (one node), or `redis://HOST:PORT[/DB]` to share pushes between nodes.
    broker: String = "embedded".into(), "URL";
    /// Bytes of Redis bus messages a node may hold before delivering; past it the node
    /// drops (counted) and positioned browsers get gap notices.
    // A few seconds of a busy bus; a node lagging further is told and recovers from
    // the history rather than holding gigabytes.
    broker_intake_bytes: usize = crate::broker::DEFAULT_INTAKE_BYTES, "BYTES";
    /// This node's number with a Redis broker, 1-2097151; 0 asks Redis for a fresh one.
    node_id: u32 = 0, "N";
    /// Messages each stream keeps for clients that resume, 0 for none.
    // Enough to ride out a reconnect of a few seconds at moderate rates; every kept
    // message is a shared buffer, not a copy.
    history_len: usize = 100, "N";
    /// Seconds a kept message stays resumable, 0 for no age limit.
    history_secs: u64 = 300, "SECS";
    /// Bytes of messages each stream keeps, oldest dropped first; a larger message is not
    /// kept; 0 for no limit.
    // A hundred messages of 40 KiB per stream (typical pushes are far smaller), and
    // 64 MiB in all: a small server's history stays a small part of its memory however
    // large or many the pushes (a single RPC message may be 16 MiB; its JSON larger).
    history_stream_bytes: usize = crate::delivery::history::DEFAULT_STREAM_BYTES, "BYTES";
    /// Bytes of messages all streams keep together, oldest of any dropped first; 0 for
    /// no limit.
    history_total_bytes: usize = crate::delivery::history::DEFAULT_TOTAL_BYTES, "BYTES";
    /// Milliseconds a publish waits for Redis before it fails.
    broker_timeout_ms: u64 = 2000, "MS";
    /// Serve wss:// with this PEM certificate chain; needs `tls_key`.
    tls_cert: Option<PathBuf> = None, "FILE" .requires("tls_key");
    /// The PEM private key of `tls_cert`.
    tls_key: Option<PathBuf> = None, "FILE" .requires("tls_cert");
    /// Browsers must present a JWT (HS256) signed with this secret (none: auth off);
    /// prefer the environment variable to the flag.
    jwt_secret: Option<String> = None, "SECRET" .hide_env_values(true);
    /// Browsers must present a JWT (RS256 or ES256) verified by this PEM public key
    /// (none: auth off).
    jwt_public_key: Option<PathBuf> = None, "FILE";
    /// Channels every browser may join when auth is on, comma-separated in a flag.
    public_channels: Vec<String> = Vec::new(), "LIST";
    /// Origins browsers may connect from, comma-separated in a flag (none: any); others
    /// get 403.
    allowed_origins: Vec<String> = Vec::new(), "LIST";
    /// RPC clients must call auth(secret) first; prefer the environment variable to the
    /// flag.
    rpc_secret: Option<String> = None, "SECRET" .hide_env_values(true);
    /// Serve RPC on a non-loopback address without `rpc_secret`.
    rpc_insecure: bool = false, "BOOL" .num_args(0..=1).default_missing_value("true");
    /// TCP connections one IP address may hold open, 0 for no limit; more get 429.
    // Generous for offices behind one NAT address, tight enough that one host cannot
    // take the whole connection cap or the fd table.
    max_connections_per_ip: usize = 1000, "N";
    /// New TCP connections per second from one IP address, 0 for no limit; more get 429.
    connects_per_ip_per_sec: u32 = 100, "N";
    /// Apply the per-IP limits to loopback peers too (off: a local reverse proxy is one
    /// address).
    limit_loopback: bool = false, "BOOL";
    /// Largest HTTP request head in bytes, at least 8192; larger get 431.
    max_header_bytes: usize = 16 << 10, "BYTES";
    /// Largest WebSocket frame accepted from a browser, in bytes; larger close with 1009.
    max_frame_bytes: usize = 1 << 20, "BYTES";
}

/// Why the settings could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
}

impl Settings {
    /// Parses settings from TOML text; absent keys keep their defaults.
    pub fn from_toml(text: &str) -> Result<Settings, toml::de::Error> {
        toml::from_str(text)
    }

    fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Settings::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Resolves flags and environment (in `args`) over the file over the defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Settings, ConfigError> {
        let mut s = match &args.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        s.overlay(args);
        Ok(s)
    }

    /// The history each stream keeps.
    pub fn retention(&self) -> crate::delivery::history::Retention {
        crate::delivery::history::Retention {
            len: self.history_len,
            max_age: (self.history_secs > 0)
                .then(|| std::time::Duration::from_secs(self.history_secs)),
            stream_bytes: self.history_stream_bytes,
            total_bytes: self.history_total_bytes,
        }
    }
}

#[cfg(test)]
mod tests;
