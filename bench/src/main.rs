//! `wspush-bench`: see the crate docs (`bench/src/lib.rs`) and README "Benchmarks".

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};

use wspush_bench::browser::ClientShape;
use wspush_bench::publisher::Target;
use wspush_bench::report::{self, PointResult};
use wspush_bench::run::Bench;
use wspush_bench::scenario::{Point, PubMode, PubShape, Shape, Transport, parse_letters};
use wspush_bench::server::Spawned;

#[derive(Parser)]
#[command(
    name = "wspush-bench",
    about = "Fan-out benchmark for wspush and peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against one server.
    Run(Box<RunArgs>),
    /// Print the table of runs' JSON lines.
    Table {
        /// JSON lines files.
        files: Vec<PathBuf>,
    },
    /// Measure this machine's ceilings (loopback bandwidth, cost of a small write, a
    /// request/reply round trip), with no server: what scenarios b and d, and a publisher
    /// with one call in flight, can reach at best.
    Calibrate {
        /// Idle sockets for the write-cost measurement.
        #[arg(long, default_value_t = 5000)]
        sockets: usize,
        /// Threads of the parallel write-cost measurement.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Bytes pushed through the loopback stream.
        #[arg(long, default_value_t = 4 << 30)]
        stream_bytes: usize,
    },
    /// Run the floor server (plain blocking writes from N threads; HTTP POST to publish,
    /// any other path to subscribe) to calibrate scenario d: `run --ws ADDR
    /// --http-publish http://ADDR/pub`.
    FloorServer {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Writer threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Print, for every row whose publisher is not one call at a time, its
    /// ratio to the same server and point with one call at a time.
    Shapes {
        /// JSON lines files.
        files: Vec<PathBuf>,
    },
    /// Print every server and publisher shape beside each other: a row per point,
    /// deliveries/s and p99 (median of repeated rounds).
    Side {
        /// JSON lines files.
        files: Vec<PathBuf>,
    },
    /// Print the ratios of two runs' JSON lines (ours / theirs), point by
    /// point and publisher shape by shape.
    Compare {
        /// JSON lines of the server being judged (wspush).
        ours: PathBuf,
        /// JSON lines of the reference (Nchan).
        theirs: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenarios: letters a..g separated by commas, or `all`.
    #[arg(long, default_value = "a")]
    scenario: String,
    /// Name of the server in the results.
    #[arg(long, default_value = "wspush")]
    label: String,
    /// Start `PATH serve` on free loopback ports and measure it.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["ws", "server_pid"])]
    spawn_server: Option<PathBuf>,
    /// Extra arguments for the spawned server (repeat).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    server_arg: Vec<String>,
    /// WebSocket address of a running server.
    #[arg(long, value_name = "ADDR")]
    ws: Option<String>,
    /// wspush MessagePack-RPC address (publish with push_data / publish).
    #[arg(long, value_name = "ADDR", conflicts_with = "http_publish")]
    rpc: Option<String>,
    /// Publish with HTTP POST to this URL instead; `{channel}` is replaced (`all` when
    /// broadcasting), `{/channel}` too (`/name`, or nothing: wspush's `/pub`).
    #[arg(long, value_name = "URL")]
    http_publish: Option<String>,
    /// Publish through the spawned wspush's HTTP API on this path: `/pub{/channel}` (raw
    /// body) or `/api` (JSON `publish` / `push_data`).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["http_publish", "rpc"], requires = "spawn_server")]
    api_publish: Option<String>,
    /// Subscriber path; `{channel}` is replaced, else `?channel=` is appended
    /// (default `/`, with `--transport sse` wspush's `/sse`).
    #[arg(long)]
    sub_path: Option<String>,
    /// How subscribers receive: `ws` (WebSocket) or `sse` (`GET` the same path with
    /// `Accept: text/event-stream`, HTTP/1.1, each event's data a message).
    #[arg(long, value_enum, default_value = "ws")]
    transport: Transport,
    /// Server process to measure (its descendants are included: nginx workers).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Multiply every scenario's message count.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Cap every point's connections.
    #[arg(long, default_value_t = usize::MAX, hide_default_value = true)]
    max_subscribers: usize,
    /// Run only the points of these names (e.g. `a-10k-64B`), comma-separated; with a
    /// pipelined run, both shapes of each.
    #[arg(long = "point", value_name = "NAME", value_delimiter = ',')]
    points: Vec<String>,
    /// Connection counts of scenario e, comma-separated.
    #[arg(long, default_value = "10000,50000", value_delimiter = ',')]
    idle_connections: Vec<usize>,
    /// Requests in flight per publisher connection: 1 sends the next publish
    /// when the reply to the last has come (what a synchronous client does;
    /// with --http-publish, one POST at a time); N pipelines up to N.
    #[arg(long, default_value_t = 1, alias = "window", value_name = "N",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub_inflight: usize,
    /// Publisher connections sending at once, each with its own in-flight
    /// limit; the messages are split among them (order is checked per publisher).
    #[arg(long, default_value_t = 1, value_name = "K",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    publishers: usize,
    /// `call`: requests answered by the server; `notify`: MessagePack-RPC
    /// notifications, never answered, paced by --lag (and a point's rate) only.
    #[arg(long, default_value_t = PubMode::Call, value_name = "MODE")]
    pub_mode: PubMode,
    /// Scenarios a, b, c and f run each point again with this many calls in
    /// flight (0: not; nor in notify mode or when equal to --pub-inflight).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pipelined: usize,
    /// Messages per channel the publishers may run ahead of what subscribers
    /// received in total, whichever publisher sent them.
    #[arg(long, default_value_t = 32)]
    lag: u64,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Scenario e: offer permessage-deflate exactly as Chrome does.
    #[arg(long)]
    chrome_offer: bool,
    /// Scenario e: each client sends one 160-byte text message after the upgrade
    /// (compressed when deflate was agreed) and waits for the server to handle it.
    #[arg(long)]
    first_message: bool,
    /// Scenario e: connect with TLS (`wss://`), trusting the PEM certificate(s) in FILE
    /// (the server's, e.g. generated by bench/compare.sh).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Also append the JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Compare { ours, theirs } => {
            let (o, t) = (read_jsonl(&ours)?, read_jsonl(&theirs)?);
            print!("{}", report::compare(&o, &t));
            Ok(())
        }
        Command::Table { files } => {
            print!("{}", report::table(&read_all(&files)?));
            Ok(())
        }
        Command::Shapes { files } => {
            print!("{}", report::shapes(&read_all(&files)?));
            Ok(())
        }
        Command::Side { files } => {
            print!("{}", report::side_by_side(&read_all(&files)?));
            Ok(())
        }
        Command::Calibrate {
            sockets,
            threads,
            stream_bytes,
        } => {
            rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
            let c = wspush_bench::calibrate::run(stream_bytes, sockets, threads).with_context(
                || format!("{sockets} socket pairs need {} open files", 2 * sockets),
            )?;
            println!("{}", serde_json::to_string(&c)?);
            eprint!("\n{}", c.table());
            Ok(())
        }
        Command::FloorServer { listen, threads } => {
            rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
            let listener = listen_backlog(resolve(&listen)?)?;
            println!("floor server on {}", listener.local_addr()?);
            wspush_bench::floor::serve(listener, threads)?;
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            runtime.block_on(run(*args))
        }
    }
}

fn read_jsonl(path: &PathBuf) -> anyhow::Result<Vec<PointResult>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("{}: {l}", path.display())))
        .collect()
}

fn read_all(files: &[PathBuf]) -> anyhow::Result<Vec<PointResult>> {
    let mut all = Vec::new();
    for f in files {
        all.extend(read_jsonl(f)?);
    }
    Ok(all)
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))
}

/// `http://host:port/path` → address, host header, path.
fn http_target(url: &str) -> anyhow::Result<Target> {
    let rest = url
        .strip_prefix("http://")
        .context("--http-publish must start with http://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok(Target::Http {
        addr: resolve(host)?,
        host: host.to_owned(),
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    })
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    // Raise the soft limit to the hard one; each point checks it needs no more.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    eprintln!("open files limit: {nofile}");
    parse_letters(&args.scenario).map_err(anyhow::Error::msg)?;
    if args.transport == Transport::Sse
        && (args.chrome_offer || args.first_message || args.tls_ca.is_some())
    {
        bail!(
            "--chrome-offer, --first-message and --tls-ca shape WebSocket clients, not --transport sse"
        );
    }
    let spawned = match &args.spawn_server {
        Some(path) => Some(Spawned::start(
            path,
            &args.server_arg,
            args.api_publish.is_some(),
        )?),
        None => None,
    };
    let (ws, rpc, pid) = match &spawned {
        Some(s) => (s.ws, Some(s.rpc), Some(s.pid())),
        None => {
            let ws = resolve(args.ws.as_deref().context("give --ws or --spawn-server")?)?;
            let rpc = args.rpc.as_deref().map(resolve).transpose()?;
            (ws, rpc, args.server_pid)
        }
    };
    let api_url = match (&args.api_publish, &spawned) {
        (Some(path), Some(s)) => {
            let api = s
                .api
                .context("the spawned server announced no API address")?;
            Some(format!("http://{api}{path}"))
        }
        _ => None,
    };
    let http_url = args.http_publish.clone().or(api_url);
    let publish = match (&http_url, rpc) {
        (Some(_), _) if args.pub_mode == PubMode::Notify => {
            bail!("--pub-mode notify needs MessagePack-RPC: HTTP POSTs are always answered")
        }
        (Some(url), _) => http_target(url)?,
        (None, Some(rpc)) => Target::Rpc(rpc),
        (None, None) => bail!("give --rpc or --http-publish"),
    };
    let bench = Bench {
        label: args.label.clone(),
        ws,
        sub_path: args.sub_path.clone().unwrap_or_else(|| {
            match args.transport {
                Transport::Ws => "/",
                Transport::Sse => "/sse",
            }
            .into()
        }),
        publish,
        server_pid: pid,
        stats_rpc: rpc.filter(|_| args.http_publish.is_none()),
        lag: args.lag,
        run_id: format!("r{}", std::process::id()),
        tls: args
            .tls_ca
            .as_deref()
            .map(wspush_bench::browser::tls_client)
            .transpose()?,
    };
    if pid.is_none() {
        eprintln!("no --server-pid: server memory and CPU are not measured");
    }
    let shape = Shape {
        scale: args.scale,
        max_subscribers: args.max_subscribers,
        idle_connections: args.idle_connections.clone(),
        publisher: PubShape {
            inflight: args.pub_inflight,
            publishers: args.publishers,
            pub_mode: args.pub_mode,
        },
        client: ClientShape {
            chrome_offer: args.chrome_offer,
            first_message: args.first_message,
            tls: args.tls_ca.is_some(),
        },
        transport: args.transport,
        pipelined: args.pipelined,
    };
    // A signal ends the run here, so a spawned server is stopped with it.
    let outcome = tokio::select! {
        r = run_points(&args, &bench, &shape) => r,
        by = stop_signal() => Err(anyhow!("stopped by {by}")),
    };
    drop(spawned);
    outcome
}

/// Runs every point of the chosen scenarios and prints the results.
async fn run_points(args: &RunArgs, bench: &Bench, shape: &Shape) -> anyhow::Result<()> {
    let mut json = match &args.json {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| p.display().to_string())?,
        ),
        None => None,
    };
    let mut results = Vec::new();
    let mut dirty = Vec::new();
    let letters = parse_letters(&args.scenario).map_err(anyhow::Error::msg)?;
    let points: Vec<Point> = letters.iter().flat_map(|l| shape.points(*l)).collect();
    // A misspelt --point would otherwise run nothing and end as a clean run.
    if let Some(unknown) = args
        .points
        .iter()
        .find(|name| !points.iter().any(|p| &p.name == *name))
    {
        bail!("no point {unknown} in scenario(s) {}", args.scenario);
    }
    let chosen = |p: &Point| args.points.is_empty() || args.points.contains(&p.name);
    for point in points.into_iter().filter(chosen) {
        let shape = point.publisher.label();
        eprintln!("== {} {} {shape} ...", args.label, point.name);
        let r = match bench.run(&point).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("!! {} {} {shape}: {e}", args.label, point.name);
                dirty.push(format!("{} {shape}: {e}", point.name));
                continue;
            }
        };
        println!("{}", r.json());
        if let Some(f) = json.as_mut() {
            writeln!(f, "{}", r.json())?;
        }
        if !r.is_clean() {
            eprintln!(
                "!! {} {}: LOST {} OUT-OF-ORDER {} in {} clients, {} failed ({:?})",
                args.label,
                point.name,
                r.lost,
                r.out_of_order,
                r.bad_clients,
                r.failed,
                r.first_error
            );
            dirty.push(format!(
                "{} {shape}: lost {} out of order {}",
                point.name, r.lost, r.out_of_order
            ));
        }
        results.push(r);
    }
    eprint!("\n{}", report::table(&results));
    eprint!("{}", wspush_bench::handshake::summary(&results));
    if !dirty.is_empty() {
        bail!("{} point(s) failed:\n  {}", dirty.len(), dirty.join("\n  "));
    }
    Ok(())
}

/// Waits for SIGTERM or SIGINT; never returns if they cannot be watched.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        eprintln!("cannot watch SIGTERM: a killed run leaves a spawned server running");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        Ok(()) = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// A listener with an accept queue as deep as the servers' it is compared with (tokio's
/// 1024, and more): std's 128 dropped a few of 10,000 connects arriving at once.
fn listen_backlog(addr: std::net::SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
