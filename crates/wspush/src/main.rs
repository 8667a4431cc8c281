//! The `wspush` binary: the push server (`wspush serve`) and the tools that
//! talk to it (`push`, `stats`, `connections`, `listen`, `tail`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use wspush::config::ServeArgs;

mod cli;

#[derive(Parser)]
#[command(
    name = "wspush",
    version,
    about = "Push data from any program to every browser watching it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the tools find the server's RPC port.
#[derive(clap::Args, Debug, Clone)]
struct RpcTarget {
    /// The server's MessagePack-RPC address.
    #[arg(
        long,
        env = "WSPUSH_RPC",
        default_value = "127.0.0.1:18800",
        value_name = "ADDR"
    )]
    rpc: SocketAddr,
    /// Talk to the server over this Unix socket instead.
    #[arg(long, env = "WSPUSH_RPC_UNIX", value_name = "PATH")]
    rpc_unix: Option<PathBuf>,
    /// The server's RPC secret (`serve --rpc-secret`); prefer the env variable.
    #[arg(
        long,
        env = "WSPUSH_RPC_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    rpc_secret: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the push server: WebSocket on --ws, MessagePack-RPC on --rpc.
    Serve(Box<ServeArgs>),
    /// Push DATA (or stdin when DATA is absent) to every browser, a channel or one connection.
    Push {
        /// The data; read from stdin when absent.
        data: Option<String>,
        /// Publish to this channel instead of broadcasting.
        #[arg(long, conflicts_with = "conn")]
        channel: Option<String>,
        /// Send to this one connection id.
        #[arg(long)]
        conn: Option<u64>,
        /// Send as a binary frame instead of text.
        #[arg(long)]
        binary: bool,
        /// Push through the HTTP API at this URL (e.g. http://127.0.0.1:18801) instead of RPC.
        #[arg(long, env = "WSPUSH_API_URL", value_name = "URL")]
        api: Option<String>,
        /// The server's API key (`serve --api-key`); prefer the env variable.
        #[arg(
            long,
            env = "WSPUSH_API_KEY",
            value_name = "KEY",
            hide_env_values = true
        )]
        api_key: Option<String>,
        #[command(flatten)]
        target: RpcTarget,
    },
    /// Print the server's counters.
    Stats {
        #[command(flatten)]
        target: RpcTarget,
    },
    /// List open WebSocket connections.
    Connections {
        #[command(flatten)]
        target: RpcTarget,
    },
    /// Print browser events (open, message, close) as they happen.
    Listen {
        #[command(flatten)]
        target: RpcTarget,
    },
    /// Connect to a WebSocket URL and print every message received.
    Tail {
        /// The URL, e.g. ws://127.0.0.1:8080/?channel=news
        url: String,
        /// Stop after this many messages.
        #[arg(long, short = 'n')]
        count: Option<u64>,
    },
}

fn main() -> anyhow::Result<()> {
    match run() {
        // The reader of our output went away (`wspush stats | head -3`): nothing to report.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                init_tracing();
                raise_fd_limit();
                Ok(wspush::serve::run_from_args(&args).await?)
            }
            Command::Push {
                data,
                channel,
                conn,
                binary,
                api,
                api_key,
                target,
            } => {
                let data = match data {
                    Some(d) => d.into_bytes(),
                    None => read_stdin()?,
                };
                let to = match (channel, conn) {
                    (Some(c), _) => cli::PushTo::Channel(c),
                    (None, Some(id)) => cli::PushTo::Connection(id),
                    (None, None) => cli::PushTo::Everyone,
                };
                if let Some(url) = &api {
                    let api = cli::api::ApiTarget {
                        url,
                        key: api_key.as_deref(),
                    };
                    return cli::api::push(&api, to, data, binary).await;
                }
                let rpc = target.connect().await?;
                cli::push(&rpc, to, data, binary).await
            }
            Command::Stats { target } => cli::stats(&target.connect().await?).await,
            Command::Connections { target } => cli::connections(&target.connect().await?).await,
            Command::Listen { target } => cli::listen(target.connect().await?).await,
            Command::Tail { url, count } => cli::tail(&url, count).await,
        }
    })
}

impl RpcTarget {
    async fn connect(&self) -> anyhow::Result<msgpack_rpc::Client> {
        let rpc = cli::connect(self.rpc, self.rpc_unix.as_deref()).await?;
        if let Some(secret) = &self.rpc_secret {
            cli::auth(&rpc, secret).await?;
        }
        Ok(rpc)
    }
}

/// Logs go to stderr; `RUST_LOG` filters them (default: info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Every connection is a file descriptor; the usual soft limit (1024) would
/// cap a push server far below `--max-connections`. Raise it to the hard limit.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf)?;
    Ok(buf)
}
