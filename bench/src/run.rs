//! Runs one benchmark point: connect every subscriber, measure the idle
//! server, warm up, publish, wait for the last delivery, measure again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::browser::Shaped;
use crate::procstat::{self, Sample};
use crate::publisher::{
    self, Flow, Plan, PublishError, Publisher, Target, messages_from, messages_on_channel,
};
use crate::report::PointResult;
use crate::scenario::{Point, Transport};
use crate::server::{self, ServerCounters};
use crate::subscriber::{self, SubSpec};
use crate::tally::Tally;

/// Connections per source address: below the ~28k ephemeral ports of one
/// address (32768–60999), leaving room for TIME_WAIT of earlier points.
const PER_SOURCE: usize = 20_000;
/// Upgrades in progress at once (the server's accept backlog is finite).
const CONNECT_BATCH: usize = 500;
/// File descriptors the generator needs besides its subscribers.
const SPARE_FDS: u64 = 64;

/// Why a point could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Not enough file descriptors for the connections asked for.
    #[error(
        "{who} may open {limit} files but this point needs {need}: raise it (`ulimit -n 200000` \
         in the shell that starts it; the hard limit must allow it) or use fewer connections"
    )]
    FdLimit {
        /// "the load generator" or "the server (pid N)".
        who: String,
        /// Its soft limit.
        limit: u64,
        /// What the point needs.
        need: u64,
    },
    /// Subscribers could not connect.
    #[error("{failed} of {total} subscribers failed to connect: {first}")]
    Connect {
        /// How many failed.
        failed: usize,
        /// How many were started.
        total: usize,
        /// The first error.
        first: String,
    },
    /// Subscribers never saw a warm-up message.
    #[error("only {ready} of {total} subscribers received the warm-up message")]
    Warmup {
        /// Ready subscribers.
        ready: usize,
        /// Well-behaved subscribers.
        total: usize,
    },
    /// The publisher failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The server process could not be read.
    #[error("reading the server's /proc entry: {0}")]
    Proc(#[from] std::io::Error),
}

/// How to reach the server under test.
#[derive(Debug, Clone)]
pub struct Bench {
    /// Name in the results (`wspush`, `nchan`).
    pub label: String,
    /// WebSocket address.
    pub ws: SocketAddr,
    /// Subscriber path; `{channel}` is replaced, otherwise channels are
    /// appended as `?channel=NAME` (wspush).
    pub sub_path: String,
    /// Where publishes go.
    pub publish: Target,
    /// Server process (with descendants) to measure.
    pub server_pid: Option<u32>,
    /// wspush RPC address for `stats()`.
    pub stats_rpc: Option<SocketAddr>,
    /// Messages per channel the publishers may run ahead of the subscribers
    /// (in total, whichever publisher sent them; see [`Flow`]). How many
    /// publishers and calls in flight is each point's
    /// [`PubShape`](crate::scenario::PubShape).
    pub lag: u64,
    /// Makes channel names unique per run (Nchan keeps messages).
    pub run_id: String,
    /// TLS client configuration for `wss://` points.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Bench {
    /// Runs `point`; loss does not make this an `Err` (see [`PointResult::is_clean`]).
    pub async fn run(&self, point: &Point) -> Result<PointResult, BenchError> {
        let total = point.subscribers + point.stalled;
        self.check_fds(total)?;
        let loadavg = loadavg();
        self.wait_server_idle().await;
        let before = self.sample()?;
        let channels = self.channels(point);
        let tally = Arc::new(Tally::new(total));
        let mut tasks = JoinSet::new();
        let connected = self.connect_all(point, &channels, &tally, &mut tasks).await;
        let result = match connected {
            Ok(per_channel) => {
                self.measure(point, &channels, per_channel, &tally, before)
                    .await
            }
            Err(e) => Err(e),
        };
        tasks.shutdown().await;
        let mut result = result?;
        result.loadavg = loadavg;
        Ok(result)
    }

    fn check_fds(&self, total: usize) -> Result<(), BenchError> {
        let need = total as u64 + SPARE_FDS;
        let mine = procstat::open_files_limit(std::process::id()).unwrap_or(0);
        if mine < need {
            return Err(BenchError::FdLimit {
                who: "the load generator".into(),
                limit: mine,
                need,
            });
        }
        if let Some(pid) = self.server_pid.filter(|p| *p != std::process::id()) {
            let theirs = procstat::open_files_limit(pid).unwrap_or(u64::MAX);
            if theirs < need {
                return Err(BenchError::FdLimit {
                    who: format!("the server (pid {pid})"),
                    limit: theirs,
                    need,
                });
            }
        }
        Ok(())
    }

    fn sample(&self) -> Result<Sample, BenchError> {
        Ok(match self.server_pid {
            Some(pid) => procstat::sample(pid)?,
            None => Sample::default(),
        })
    }

    async fn counters(&self) -> Option<ServerCounters> {
        server::counters(self.stats_rpc?).await
    }

    /// Connections of the previous point may still be closing on the server.
    async fn wait_server_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Some(c) = self.counters().await {
            if c.connections == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn channels(&self, point: &Point) -> Vec<Option<String>> {
        let by_name = self.sub_path.contains("{channel}");
        // Unique per shape too: Nchan keeps a channel's newest message for
        // the next subscribers, and the same point runs with several shapes.
        let mut base = format!(
            "{}-{}-{}",
            self.run_id,
            point.name.replace('/', "per"),
            point.publisher.tag()
        );
        // And per transport: both may run against one Nchan.
        if point.transport == Transport::Sse {
            base.push_str("-sse");
        }
        match point.channels {
            0 if by_name => vec![Some(base.replace('.', "_"))],
            0 => vec![None],
            n => (0..n).map(|k| Some(format!("{base}-c{k}"))).collect(),
        }
    }

    fn path(&self, channel: Option<&str>) -> String {
        match channel {
            None => self.sub_path.clone(),
            Some(c) if self.sub_path.contains("{channel}") => self.sub_path.replace("{channel}", c),
            Some(c) => {
                let sep = if self.sub_path.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!("{}{sep}channel={c}", self.sub_path)
            }
        }
    }

    /// Source addresses for `total` connections: the loopback addresses with
    /// the fewest sockets now (earlier points and runs leave thousands in
    /// TIME_WAIT for a minute, which would eat the ports of this one).
    fn sources(&self, total: usize) -> Vec<IpAddr> {
        if !self.ws.ip().is_loopback() {
            return vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
        }
        // 127.0.0.2 … 127.0.0.251: every 127/8 address is local on Linux.
        let mut used = [0usize; 250];
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        for local in tcp
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
        {
            // "0200007F:1F90": the address in hex, least significant byte first.
            let last = local.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok());
            let is_loop = local.get(6..8) == Some("7F") && local.get(2..6) == Some("0000");
            if let Some(n) = last.filter(|n| is_loop && (2..252).contains(n)) {
                used[usize::from(n) - 2] += 1;
            }
        }
        let mut order: Vec<usize> = (0..used.len()).collect();
        order.sort_by_key(|i| used[*i]);
        order
            .into_iter()
            .take(total.div_ceil(PER_SOURCE).max(1))
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
            .collect()
    }

    /// Connects every subscriber, stalled ones first; returns the
    /// well-behaved subscribers per channel.
    async fn connect_all(
        &self,
        point: &Point,
        channels: &[Option<String>],
        tally: &Arc<Tally>,
        tasks: &mut JoinSet<()>,
    ) -> Result<Vec<u64>, BenchError> {
        let total = point.subscribers + point.stalled;
        let sources = self.sources(total);
        let n_ch = channels.len().max(1);
        let k = point.publisher.publishers.max(1);
        let mut per_channel = vec![0u64; n_ch];
        for i in 0..total {
            let ch = i % n_ch;
            let stalled = i < point.stalled;
            if !stalled {
                per_channel[ch] += 1;
            }
            let spec = SubSpec {
                index: i,
                addr: self.ws,
                source: sources[(i / PER_SOURCE).min(sources.len() - 1)],
                host: self.ws.to_string(),
                path: self.path(channels.get(ch).and_then(Option::as_deref)),
                expected: (0..k)
                    .map(|p| messages_from(point.messages, ch, n_ch, p, k))
                    .collect(),
                stalled,
                shaped: (!point.client.is_plain()).then(|| Shaped {
                    shape: point.client,
                    tls: self.tls.clone(),
                }),
                transport: point.transport,
            };
            tasks.spawn(subscriber::run(spec, Arc::clone(tally)));
            if (i + 1) % CONNECT_BATCH == 0 || i + 1 == total {
                let started = i + 1;
                tally
                    .wait_until(Duration::from_secs(60), || {
                        Tally::get(&tally.connected) + Tally::get(&tally.failed) >= started
                    })
                    .await;
            }
        }
        let failed = Tally::get(&tally.failed);
        let connected = Tally::get(&tally.connected);
        if failed > 0 || connected < total {
            let first = tally.first_error.lock().ok().and_then(|e| e.clone());
            return Err(BenchError::Connect {
                failed: total - connected,
                total,
                first: first.unwrap_or_else(|| "timed out".into()),
            });
        }
        Ok(per_channel)
    }

    async fn measure(
        &self,
        point: &Point,
        channels: &[Option<String>],
        per_channel: Vec<u64>,
        tally: &Arc<Tally>,
        before: Sample,
    ) -> Result<PointResult, BenchError> {
        let total = point.subscribers + point.stalled;
        let connected = self.sample()?;
        let conns = total.max(1) as f64;
        let mut r = PointResult {
            label: self.label.clone(),
            point: point.clone(),
            rss_before: before.rss,
            rss_connected: connected.rss,
            rss_per_conn: connected.rss.saturating_sub(before.rss) as f64 / conns,
            pss_per_conn: connected.pss.saturating_sub(before.pss) as f64 / conns,
            ..PointResult::default()
        };
        if point.idle_only {
            return Ok(r);
        }
        let mut publishers = publisher::connect_all(&self.publish, point.publisher).await?;
        let healthy = point.subscribers;
        if let Some(first) = publishers.first_mut().filter(|_| healthy > 0) {
            self.warm_up(first, channels, tally, healthy).await?;
        }
        let plan = Plan {
            channels: channels.to_vec(),
            messages: point.messages,
            size: point.size,
            rate: point.rate,
            inflight: point.publisher.inflight,
        };
        let flow = Flow {
            tally: Arc::clone(tally),
            per_channel: per_channel.clone(),
            // Per channel: with one lag for all, 100 channels would each hold
            // a single message in flight and no server could batch writes.
            lag: self.lag * channels.len().max(1) as u64,
        };
        let counters0 = self.counters().await;
        let cpu0 = self.sample()?;
        let gen0 = procstat::self_cpu_secs();
        let t0 = Instant::now();
        let newcomers = self.newcomers(point, channels);
        publisher::run_all(publishers, &plan, (healthy > 0).then_some(flow)).await?;
        let published = t0.elapsed().as_secs_f64();
        let drain = Duration::from_secs(30) + Duration::from_secs_f64(published);
        tally
            .wait_until(drain, || Tally::get(&tally.done) >= healthy)
            .await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu1 = self.sample()?;
        let gen1 = procstat::self_cpu_secs();

        self.fill_deliveries(&mut r, point, &per_channel, tally, secs);
        r.publishes_per_sec = point.messages as f64 / published.max(1e-9);
        r.server_cpu_secs = cpu1.cpu_secs - cpu0.cpu_secs;
        if r.deliveries > 0 {
            r.server_cpu_per_m = r.server_cpu_secs / (r.deliveries as f64 / 1e6);
        }
        r.gen_cpu_cores = (gen1 - gen0) / secs.max(1e-9);
        if let Some(task) = newcomers {
            r.upgrades = task.await.ok();
        }
        if let Some(c) = self.counters().await {
            r.overflows = Some(c.overflows);
            r.overflow_closes = Some(c.overflow_closes);
            r.messages_per_write = counters0.and_then(|c0| c.messages_per_write(&c0));
        }
        Ok(r)
    }

    /// Starts the point's newcomers, spread over 90% of its paced publishing time (so all
    /// of them meet the fan-out), at once for a point at max rate.
    fn newcomers(
        &self,
        point: &Point,
        channels: &[Option<String>],
    ) -> Option<tokio::task::JoinHandle<crate::handshake::Upgrades>> {
        let over = point
            .rate
            .map_or(0.0, |rate| 0.9 * point.messages as f64 / rate);
        let path = self.path(channels.first().and_then(Option::as_deref));
        (point.newcomers > 0).then(|| {
            tokio::spawn(crate::handshake::newcomers(
                self.ws,
                path,
                point.transport,
                point.newcomers,
                Duration::from_secs_f64(over),
            ))
        })
    }

    async fn warm_up(
        &self,
        publisher: &mut Publisher,
        channels: &[Option<String>],
        tally: &Tally,
        healthy: usize,
    ) -> Result<(), BenchError> {
        // A subscriber is on the server's lists once it received a warm-up
        // message; repeat until all have (a server may register a socket a
        // moment after the upgrade response).
        for _ in 0..100 {
            publisher.warmup(channels).await?;
            let all = || Tally::get(&tally.ready) >= healthy;
            if tally.wait_until(Duration::from_millis(200), all).await {
                return Ok(());
            }
        }
        Err(BenchError::Warmup {
            ready: Tally::get(&tally.ready),
            total: healthy,
        })
    }

    fn fill_deliveries(
        &self,
        r: &mut PointResult,
        point: &Point,
        per_channel: &[u64],
        tally: &Tally,
        secs: f64,
    ) {
        let lat = tally.latency.snapshot();
        let ms = |ns: u64| ns as f64 / 1e6;
        r.seconds = secs;
        r.deliveries = tally.delivered.sum();
        r.deliveries_per_sec = r.deliveries as f64 / secs.max(1e-9);
        r.p50_ms = ms(lat.quantile(0.5));
        r.p99_ms = ms(lat.quantile(0.99));
        r.p999_ms = ms(lat.quantile(0.999));
        r.max_ms = ms(lat.max());
        // Messages never received at the end of the run are lost too.
        let n_ch = per_channel.len().max(1);
        let (mut tail, mut incomplete) = (0u64, 0usize);
        for i in point.stalled..point.stalled + point.subscribers {
            let expected = messages_on_channel(point.messages, i % n_ch, n_ch);
            let got = tally.progress(i);
            if got < expected {
                tail += expected - got;
                incomplete += 1;
            }
        }
        r.lost = tally.lost.load(Ordering::Relaxed) + tail;
        r.out_of_order = tally.out_of_order.load(Ordering::Relaxed);
        // An upper bound: a client with a gap and a missing tail counts twice.
        r.bad_clients = Tally::get(&tally.bad_clients) + incomplete;
        r.failed = Tally::get(&tally.failed);
        r.first_error = tally.first_error.lock().ok().and_then(|e| e.clone());
    }
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
