//! Settings of `wspush serve`: defaults, the TOML file, environment and flags.
//!
//! Precedence, highest first: command-line flag, `WSPUSH_*` environment
//! variable (clap reads both), the TOML file given with `--config`, the
//! built-in default. Every setting has the same name everywhere: `--queue-bytes`
//! is `WSPUSH_QUEUE_BYTES` and `queue_bytes = …` in the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What happens when a browser's outbound queue is full (it reads too slowly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Close the connection with 1008 ("slow consumer"): the client knows it
    /// lost data and can reconnect. The default: nothing is lost silently.
    Close,
    /// Drop the message for that connection and count it.
    Drop,
}

/// The resolved settings of a running server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// WebSocket and HTTP listen address.
    pub ws: SocketAddr,
    /// MessagePack-RPC listen address (loopback: the RPC port carries no auth).
    pub rpc: SocketAddr,
    /// Also serve MessagePack-RPC on this Unix socket path.
    pub rpc_unix: Option<PathBuf>,
    /// Most WebSocket connections open at once (beyond it: HTTP 503).
    pub max_connections: usize,
    /// Bytes a browser's outbound queue may hold before the overflow policy applies.
    pub queue_bytes: usize,
    /// The overflow policy.
    pub overflow: Overflow,
    /// Largest message accepted from a browser, in bytes (after inflating).
    pub max_message_bytes: usize,
    /// Negotiate permessage-deflate with browsers that offer it.
    pub compression: bool,
    /// Seconds of silence before the server pings a browser (0: never).
    pub ping_interval: u64,
    /// Seconds a pinged browser has to answer before it is closed.
    pub pong_timeout: u64,
    /// Seconds a client has to complete the HTTP upgrade.
    pub handshake_timeout: u64,
    /// Seconds graceful shutdown waits for browsers and RPC calls to finish.
    pub shutdown_grace: u64,
    /// Largest MessagePack-RPC message accepted, in bytes.
    pub rpc_max_message_bytes: usize,
    /// Requests one RPC connection may have in flight before reading pauses.
    pub rpc_max_in_flight: usize,
    /// RPC connections open at once, TCP and Unix together (0: no limit).
    pub rpc_max_connections: usize,
    /// RPC connections one IP address may hold open, loopback included (0: no limit).
    pub rpc_max_connections_per_ip: usize,
    /// Seconds an RPC message may take from its first byte to its last (0: no limit).
    pub rpc_message_timeout: u64,
    /// With `rpc_secret`: seconds an RPC connection has to call `auth` (0: no limit).
    pub rpc_auth_timeout: u64,
    /// With `rpc_secret`: largest RPC message before `auth` succeeded, in bytes.
    pub rpc_auth_max_message_bytes: usize,
    /// `embedded` (one node) or `redis://HOST:PORT[/DB]` (any number of nodes).
    pub broker: String,
    /// Bytes of bus messages a Redis node may hold before delivering them; a
    /// node further behind drops to gap mode (counted, gap notices) instead of growing.
    pub broker_intake_bytes: usize,
    /// This node's number in a Redis cluster (0: ask Redis for a fresh one).
    pub node_id: u32,
    /// Messages each stream keeps for resuming clients (0: none).
    pub history_len: usize,
    /// Seconds a kept message stays resumable (0: no age limit).
    pub history_secs: u64,
    /// Bytes of messages each stream keeps, oldest dropped first (0: no limit).
    pub history_stream_bytes: usize,
    /// Bytes of messages all streams keep together, oldest dropped first (0: no limit).
    pub history_total_bytes: usize,
    /// Milliseconds a publish waits for Redis before it fails.
    pub broker_timeout_ms: u64,
    /// Serve `wss://` with this PEM certificate chain (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Browsers need a JWT signed HS256 with this secret.
    pub jwt_secret: Option<String>,
    /// Browsers need a JWT signed RS256/ES256 by this PEM public key's owner.
    pub jwt_public_key: Option<PathBuf>,
    /// Channels any browser may join when auth is on.
    pub public_channels: Vec<String>,
    /// Origins browsers may connect from (empty: any).
    pub allowed_origins: Vec<String>,
    /// RPC clients must first call `auth(secret)` with this secret.
    pub rpc_secret: Option<String>,
    /// Allow a non-loopback RPC address without `rpc_secret`.
    pub rpc_insecure: bool,
    /// TCP connections one IP address may hold open (0: no limit).
    pub max_connections_per_ip: usize,
    /// New TCP connections one IP address may open per second (0: no limit).
    pub connects_per_ip_per_sec: u32,
    /// Apply the per-IP limits to loopback peers (a local proxy) too.
    pub limit_loopback: bool,
    /// Largest HTTP request head in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Largest WebSocket frame accepted from a browser, in bytes.
    pub max_frame_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ws: SocketAddr::from(([0, 0, 0, 0], 8080)),
            rpc: SocketAddr::from(([127, 0, 0, 1], 18800)),
            rpc_unix: None,
            max_connections: 100_000,
            // Room for ~250 pushes of 4 KiB: a browser stalled longer than
            // that is better told (1008) than buffered without end.
            queue_bytes: 1 << 20,
            overflow: Overflow::Close,
            // Browsers send events back; a push server mostly sends.
            max_message_bytes: 1 << 20,
            compression: true,
            ping_interval: 30,
            pong_timeout: 30,
            handshake_timeout: 10,
            shutdown_grace: 5,
            rpc_max_message_bytes: 16 << 20,
            rpc_max_in_flight: 1024,
            // Every RPC connection may buffer up to rpc_max_message_bytes, so
            // their number is what bounds that memory; programs that push
            // hold a few connections, not thousands.
            rpc_max_connections: 1024,
            // Not exempt on loopback (RPC is loopback by default: an exemption
            // would exempt everyone). Room for a host's worker pool with a
            // connection per worker; one host cannot take the whole cap.
            rpc_max_connections_per_ip: 256,
            // A 16 MiB message in 30 s is 0.5 MiB/s; a peer that stops mid
            // message must not hold its buffer forever. Idle is fine.
            rpc_message_timeout: 30,
            // A program that knows the secret sends auth first, at once.
            rpc_auth_timeout: 10,
            // auth(secret) fits in 4 KiB; an unauthenticated peer cannot make
            // the server buffer 16 MiB.
            rpc_auth_max_message_bytes: 4 << 10,
            broker: "embedded".into(),
            // A few seconds of a busy bus; a node lagging further is told and
            // recovers from the history rather than holding gigabytes.
            broker_intake_bytes: crate::broker::DEFAULT_INTAKE_BYTES,
            node_id: 0,
            // Enough to ride out a reconnect of a few seconds at moderate rates;
            // every kept message is a shared buffer, not a copy.
            history_len: 100,
            history_secs: 300,
            // A hundred messages of 40 KiB per stream (typical pushes are far
            // smaller), and 64 MiB in all: a small server's history stays a
            // small part of its memory however large or many the pushes
            // (a single RPC message may be 16 MiB; its JSON larger).
            history_stream_bytes: crate::delivery::history::DEFAULT_STREAM_BYTES,
            history_total_bytes: crate::delivery::history::DEFAULT_TOTAL_BYTES,
            broker_timeout_ms: 2000,
            tls_cert: None,
            tls_key: None,
            jwt_secret: None,
            jwt_public_key: None,
            public_channels: Vec::new(),
            allowed_origins: Vec::new(),
            rpc_secret: None,
            rpc_insecure: false,
            // Generous for offices behind one NAT address, tight enough that one
            // host cannot take the whole connection cap or the fd table.
            max_connections_per_ip: 1000,
            connects_per_ip_per_sec: 100,
            limit_loopback: false,
            max_header_bytes: 16 << 10,
            max_frame_bytes: 1 << 20,
        }
    }
}

/// `wspush serve` flags. Each is optional so that an absent flag falls back
/// to the environment, then the file, then the default shown in `--help`.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (same names, snake_case).
    #[arg(long, env = "WSPUSH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// WebSocket and HTTP listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "WSPUSH_WS", value_name = "ADDR")]
    pub ws: Option<SocketAddr>,
    /// MessagePack-RPC listen address; keep it on loopback [default: 127.0.0.1:18800].
    #[arg(long, env = "WSPUSH_RPC", value_name = "ADDR")]
    pub rpc: Option<SocketAddr>,
    /// Also serve MessagePack-RPC on this Unix socket path [default: none].
    #[arg(long, env = "WSPUSH_RPC_UNIX", value_name = "PATH")]
    pub rpc_unix: Option<PathBuf>,
    /// Most WebSocket connections at once; more get HTTP 503 [default: 100000].
    #[arg(long, env = "WSPUSH_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Bytes a browser's outbound queue may hold [default: 1048576].
    #[arg(long, env = "WSPUSH_QUEUE_BYTES", value_name = "BYTES")]
    pub queue_bytes: Option<usize>,
    /// When a browser's queue is full: close it with 1008, or drop the message [default: close].
    #[arg(long, env = "WSPUSH_OVERFLOW", value_enum)]
    pub overflow: Option<Overflow>,
    /// Largest message accepted from a browser, after inflating [default: 1048576].
    #[arg(long, env = "WSPUSH_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Negotiate permessage-deflate with browsers [default: true].
    #[arg(long, env = "WSPUSH_COMPRESSION", value_name = "BOOL")]
    pub compression: Option<bool>,
    /// Seconds of silence before pinging a browser, 0 for never [default: 30].
    #[arg(long, env = "WSPUSH_PING_INTERVAL", value_name = "SECS")]
    pub ping_interval: Option<u64>,
    /// Seconds a pinged browser has to answer [default: 30].
    #[arg(long, env = "WSPUSH_PONG_TIMEOUT", value_name = "SECS")]
    pub pong_timeout: Option<u64>,
    /// Seconds to complete the HTTP upgrade [default: 10].
    #[arg(long, env = "WSPUSH_HANDSHAKE_TIMEOUT", value_name = "SECS")]
    pub handshake_timeout: Option<u64>,
    /// Seconds graceful shutdown waits [default: 5].
    #[arg(long, env = "WSPUSH_SHUTDOWN_GRACE", value_name = "SECS")]
    pub shutdown_grace: Option<u64>,
    /// Largest MessagePack-RPC message [default: 16777216].
    #[arg(long, env = "WSPUSH_RPC_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub rpc_max_message_bytes: Option<usize>,
    /// RPC requests in flight per connection before reading pauses [default: 1024].
    #[arg(long, env = "WSPUSH_RPC_MAX_IN_FLIGHT", value_name = "N")]
    pub rpc_max_in_flight: Option<usize>,
    /// RPC connections open at once (TCP and Unix), 0 for no limit; more are closed at once [default: 1024].
    #[arg(long, env = "WSPUSH_RPC_MAX_CONNECTIONS", value_name = "N")]
    pub rpc_max_connections: Option<usize>,
    /// RPC connections one IP address may hold, loopback included, 0 for no limit; more are closed at once [default: 256].
    #[arg(long, env = "WSPUSH_RPC_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub rpc_max_connections_per_ip: Option<usize>,
    /// Seconds an RPC message may take from its first byte to its last, 0 for no limit; then the connection is closed (idle connections never are) [default: 30].
    #[arg(long, env = "WSPUSH_RPC_MESSAGE_TIMEOUT", value_name = "SECS")]
    pub rpc_message_timeout: Option<u64>,
    /// With --rpc-secret: seconds a connection has to call auth(secret), 0 for no limit [default: 10].
    #[arg(long, env = "WSPUSH_RPC_AUTH_TIMEOUT", value_name = "SECS")]
    pub rpc_auth_timeout: Option<u64>,
    /// With --rpc-secret: largest RPC message before auth(secret) succeeded; larger close the connection [default: 4096].
    #[arg(long, env = "WSPUSH_RPC_AUTH_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub rpc_auth_max_message_bytes: Option<usize>,
    /// `embedded`, or `redis://HOST:PORT[/DB]` to share pushes between nodes [default: embedded].
    #[arg(long, env = "WSPUSH_BROKER", value_name = "URL")]
    pub broker: Option<String>,
    /// Bytes of Redis bus messages a node may hold before delivering; past it the node drops (counted) and positioned browsers get gap notices [default: 67108864].
    #[arg(long, env = "WSPUSH_BROKER_INTAKE_BYTES", value_name = "BYTES")]
    pub broker_intake_bytes: Option<usize>,
    /// This node's number with a Redis broker, 1-2097151; 0 asks Redis [default: 0].
    #[arg(long, env = "WSPUSH_NODE_ID", value_name = "N")]
    pub node_id: Option<u32>,
    /// Messages each stream keeps for clients that resume, 0 for none [default: 100].
    #[arg(long, env = "WSPUSH_HISTORY_LEN", value_name = "N")]
    pub history_len: Option<usize>,
    /// Seconds a kept message stays resumable, 0 for no age limit [default: 300].
    #[arg(long, env = "WSPUSH_HISTORY_SECS", value_name = "SECS")]
    pub history_secs: Option<u64>,
    /// Bytes of messages each stream keeps, oldest dropped first; a larger message is not kept; 0 for no limit [default: 4194304].
    #[arg(long, env = "WSPUSH_HISTORY_STREAM_BYTES", value_name = "BYTES")]
    pub history_stream_bytes: Option<usize>,
    /// Bytes of messages all streams keep together, oldest of any dropped first; 0 for no limit [default: 67108864].
    #[arg(long, env = "WSPUSH_HISTORY_TOTAL_BYTES", value_name = "BYTES")]
    pub history_total_bytes: Option<usize>,
    /// Milliseconds a publish waits for Redis before failing [default: 2000].
    #[arg(long, env = "WSPUSH_BROKER_TIMEOUT_MS", value_name = "MS")]
    pub broker_timeout_ms: Option<u64>,
    /// Serve wss:// with this PEM certificate chain; needs --tls-key [default: none].
    #[arg(
        long,
        env = "WSPUSH_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert [default: none].
    #[arg(
        long,
        env = "WSPUSH_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Browsers must present a JWT (HS256) signed with this secret; prefer the env variable [default: none, auth off].
    #[arg(
        long,
        env = "WSPUSH_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Browsers must present a JWT (RS256 or ES256) verified by this PEM public key [default: none, auth off].
    #[arg(long, env = "WSPUSH_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// Channels every browser may join when auth is on, comma-separated [default: none].
    #[arg(
        long,
        env = "WSPUSH_PUBLIC_CHANNELS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub public_channels: Option<Vec<String>>,
    /// Origins browsers may connect from, comma-separated; others get 403 [default: any].
    #[arg(
        long,
        env = "WSPUSH_ALLOWED_ORIGINS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// RPC clients must call auth(secret) first; prefer the env variable [default: none].
    #[arg(
        long,
        env = "WSPUSH_RPC_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub rpc_secret: Option<String>,
    /// Serve RPC on a non-loopback address without --rpc-secret [default: false].
    #[arg(long, env = "WSPUSH_RPC_INSECURE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rpc_insecure: Option<bool>,
    /// TCP connections one IP address may hold open, 0 for no limit; more get 429 [default: 1000].
    #[arg(long, env = "WSPUSH_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// New TCP connections per second from one IP address, 0 for no limit; more get 429 [default: 100].
    #[arg(long, env = "WSPUSH_CONNECTS_PER_IP_PER_SEC", value_name = "N")]
    pub connects_per_ip_per_sec: Option<u32>,
    /// Apply the per-IP limits to loopback peers too (off: a local reverse proxy is one address) [default: false].
    #[arg(long, env = "WSPUSH_LIMIT_LOOPBACK", value_name = "BOOL")]
    pub limit_loopback: Option<bool>,
    /// Largest HTTP request head, at least 8192; larger get 431 [default: 16384].
    #[arg(long, env = "WSPUSH_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Largest WebSocket frame from a browser; larger close with 1009 [default: 1048576].
    #[arg(long, env = "WSPUSH_MAX_FRAME_BYTES", value_name = "BYTES")]
    pub max_frame_bytes: Option<usize>,
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
        macro_rules! overlay {
            ($($field:ident),* $(,)?) => {
                $( if let Some(v) = args.$field.clone() { s.$field = v.into(); } )*
            };
        }
        overlay!(
            ws,
            rpc,
            rpc_unix,
            max_connections,
            queue_bytes,
            overflow,
            max_message_bytes,
            compression,
            ping_interval,
            pong_timeout,
            handshake_timeout,
            shutdown_grace,
            rpc_max_message_bytes,
            rpc_max_in_flight,
            rpc_max_connections,
            rpc_max_connections_per_ip,
            rpc_message_timeout,
            rpc_auth_timeout,
            rpc_auth_max_message_bytes,
            broker,
            broker_intake_bytes,
            node_id,
            history_len,
            history_secs,
            history_stream_bytes,
            history_total_bytes,
            broker_timeout_ms,
            tls_cert,
            tls_key,
            jwt_secret,
            jwt_public_key,
            public_channels,
            allowed_origins,
            rpc_secret,
            rpc_insecure,
            max_connections_per_ip,
            connects_per_ip_per_sec,
            limit_loopback,
            max_header_bytes,
            max_frame_bytes,
        );
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(s.ws.to_string(), "0.0.0.0:8080");
        assert_eq!(s.rpc.to_string(), "127.0.0.1:18800");
        assert_eq!(s.overflow, Overflow::Close);
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("wspush-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("wspush.toml");
        std::fs::write(
            &file,
            "rpc = \"127.0.0.1:19000\"\nqueue_bytes = 4096\noverflow = \"drop\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            queue_bytes: Some(8192),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(s.rpc.to_string(), "127.0.0.1:19000");
        assert_eq!(s.queue_bytes, 8192);
        assert_eq!(s.overflow, Overflow::Drop);
        assert_eq!(s.ws.to_string(), "0.0.0.0:8080");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn security_and_limit_settings_parse_from_toml() {
        let s = Settings::from_toml(
            "jwt_secret = \"k\"\npublic_channels = [\"lobby\"]\nallowed_origins = [\"https://a\"]\n\
             rpc_secret = \"r\"\nrpc_insecure = true\nmax_connections_per_ip = 7\n\
             connects_per_ip_per_sec = 3\nmax_header_bytes = 9000\nmax_frame_bytes = 100\n",
        )
        .unwrap();
        assert_eq!(s.jwt_secret.as_deref(), Some("k"));
        assert_eq!(s.public_channels, ["lobby"]);
        assert_eq!(s.allowed_origins, ["https://a"]);
        assert!(s.rpc_insecure);
        assert_eq!(
            (s.max_connections_per_ip, s.connects_per_ip_per_sec),
            (7, 3)
        );
        assert_eq!((s.max_header_bytes, s.max_frame_bytes), (9000, 100));
        let d = Settings::default();
        assert!(d.jwt_secret.is_none() && d.rpc_secret.is_none() && d.tls_cert.is_none());
        assert!(d.allowed_origins.is_empty() && !d.rpc_insecure);
    }

    #[test]
    fn history_byte_limits_come_from_toml_and_reach_the_retention() {
        let d = Settings::default().retention();
        assert_eq!((d.stream_bytes, d.total_bytes), (4 << 20, 64 << 20));
        let s =
            Settings::from_toml("history_stream_bytes = 1000\nhistory_total_bytes = 0\n").unwrap();
        let r = s.retention();
        assert_eq!((r.stream_bytes, r.total_bytes), (1000, 0));
    }

    #[test]
    fn rpc_limits_have_their_defaults_and_come_from_toml_and_flags() {
        let d = Settings::default();
        assert_eq!(
            (d.rpc_max_connections, d.rpc_max_connections_per_ip),
            (1024, 256)
        );
        assert_eq!((d.rpc_message_timeout, d.rpc_auth_timeout), (30, 10));
        assert_eq!(d.rpc_auth_max_message_bytes, 4096);
        let s = Settings::from_toml(
            "rpc_max_connections = 5\nrpc_max_connections_per_ip = 0\nrpc_message_timeout = 2\n\
             rpc_auth_timeout = 0\nrpc_auth_max_message_bytes = 100\n",
        )
        .unwrap();
        assert_eq!(
            (s.rpc_max_connections, s.rpc_max_connections_per_ip),
            (5, 0)
        );
        assert_eq!((s.rpc_message_timeout, s.rpc_auth_timeout), (2, 0));
        assert_eq!(s.rpc_auth_max_message_bytes, 100);
        let args = ServeArgs {
            rpc_max_connections_per_ip: Some(3),
            rpc_auth_max_message_bytes: Some(200),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(
            (s.rpc_max_connections_per_ip, s.rpc_auth_max_message_bytes),
            (3, 200)
        );
        assert_eq!(s.rpc_max_connections, 1024);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Settings::from_toml("bogus = 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
