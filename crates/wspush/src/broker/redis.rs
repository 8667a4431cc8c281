//! The Redis broker: one ordered, pipelined publish connection and one
//! subscription per node (see [`super::subscriber`]).
//!
//! Publishes are queued in call order (the RPC methods enqueue before they
//! return their future) to one task that sends whatever is queued as one
//! pipeline and answers each caller with its own reply, so one program's
//! pushes keep their order and a Redis outage is an error for every push it
//! touches, never a silent success. An error means the push may or may not
//! have been delivered (the connection may break after Redis ran it).
//!
//! A push that this node receives itself (every stream push and
//! `send_user`, and commands for this node's connections) is refused while
//! this node's subscription is down, and succeeds only once it came back on
//! that subscription ([`super::receipts`]): a success means this node's
//! browsers have it queued, not only that Redis ran it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Value as RValue};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::bus::{self, BUS, NodeCommand, Receipt};
use super::control::{self, Query, Report, UserCommand};
use super::interface::{Done, Survey};
use super::receipts::{NOT_READY, Receipts};
use super::subscriber::{Answerer, Subscriber};
use super::survey::{Identity, Surveys};
use super::{Answer, BrokerError, MAX_NODE};
use crate::delivery::flush::Flush;
use crate::delivery::history::{HistoryRead, Retention};
use crate::delivery::hub::Hub;
use crate::delivery::payload::Payload;
use crate::delivery::position::Position;

/// Most commands sent as one pipeline.
const MAX_BATCH: usize = 1024;

/// Counters of the broker, for `stats()` and `/metrics`.
#[derive(Debug, Default)]
pub struct BrokerCounters {
    /// 1 while the subscriber connection is up.
    pub connected: AtomicU64,
    /// Publishes and commands that failed (the caller got an error).
    pub publish_errors: AtomicU64,
    /// Times the subscriber connection was lost or could not be made.
    pub disconnects: AtomicU64,
    /// Messages received from Redis (including those the intake dropped).
    pub messages_in: AtomicU64,
    /// Messages from Redis that could not be parsed (dropped).
    pub bad_messages: AtomicU64,
    /// History reads that failed (the browser got a gap notice).
    pub history_errors: AtomicU64,
    /// Pushes refused because this node's subscription was not up (also in
    /// `publish_errors`).
    pub refused_pushes: AtomicU64,
    /// Bytes in the intake queue now (gauge).
    pub intake_bytes: AtomicU64,
    /// The most the intake queue has held (gauge).
    pub intake_peak: AtomicU64,
    /// Messages from Redis this node dropped: intake full (gap mode) or a
    /// message larger than the whole intake.
    pub intake_dropped: AtomicU64,
    /// Times the intake filled up and the node went into gap mode.
    pub lag_episodes: AtomicU64,
    /// Surveys this node asked (cluster-wide `presence`, `channels`, `info`).
    pub surveys: AtomicU64,
    /// Surveys that failed: Redis unavailable, or not every node answered in time.
    pub survey_errors: AtomicU64,
    /// Surveys of other nodes (and its own) this node answered.
    pub survey_answers: AtomicU64,
    /// Answers this node could not send (its answer queue full, or Redis failed).
    pub survey_answers_dropped: AtomicU64,
}

/// What a caller asked to send; the publisher turns it into a command.
enum Op {
    /// `push_data` (`None`) or `publish` to a channel.
    Stream(Option<String>, Payload),
    /// A command for a connection of `node`.
    Node(u32, NodeCommand),
    /// `send_user`.
    User(String, Payload),
    /// A channel message neither numbered nor kept (`skip_history`).
    Live(String, Payload),
    /// A command for every node's connections of a user.
    ByUser(UserCommand),
    /// A survey of every node (its id in [`Surveys`]).
    Survey(u64, Query),
}

impl Op {
    /// Whether node `me` receives what this publishes (so needs its subscription up).
    fn comes_back_to(&self, me: u32) -> bool {
        !matches!(self, Op::Node(node, _) if *node != me)
    }

    /// Whether its caller waits for it to come back (a survey waits for answers instead).
    fn receipted(&self, me: u32) -> bool {
        self.comes_back_to(me) && !matches!(self, Op::Survey(..))
    }
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<RValue, BrokerError>>,
}

/// Builds the commands of a pipeline, numbering the receipts in pipeline order.
struct Commands {
    node: u32,
    origin: u64,
    sha: String,
    keep: Retention,
    next_ticket: u64,
}

impl Commands {
    /// The command for `op`, with a receipt when it comes back to this node.
    fn build(&mut self, op: Op) -> (Cmd, Option<u64>) {
        let ticket = op.receipted(self.node).then(|| {
            self.next_ticket += 1;
            self.next_ticket
        });
        let field = ticket.map_or_else(String::new, |ticket| {
            Receipt {
                origin: self.origin,
                ticket,
            }
            .field()
        });
        let cmd = match op {
            Op::Stream(stream, payload) => self.stream(stream.as_deref(), &payload, &field),
            Op::Node(node, command) => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(bus::node_channel(node)).arg(command.encode(&field));
                cmd
            }
            Op::User(user, payload) => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(BUS).arg(bus::encode_user(&user, &payload, &field));
                cmd
            }
            Op::Live(channel, payload) => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(BUS)
                    .arg(control::encode_live(&channel, &payload, &field));
                cmd
            }
            Op::ByUser(command) => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(BUS)
                    .arg(control::encode_user_command(&command, &field));
                cmd
            }
            Op::Survey(id, query) => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(BUS)
                    .arg(control::encode_query(self.node, id, &query));
                cmd
            }
        };
        (cmd, ticket)
    }

    fn stream(&self, stream: Option<&str>, payload: &Payload, field: &str) -> Cmd {
        let (meta, history) = bus::keys(stream);
        let kind = match payload {
            Payload::Text(_) => "t",
            Payload::Binary(_) => "b",
        };
        let max_age = self.keep.max_age.map_or(0, |d| d.as_millis());
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha)
            .arg(2)
            .arg(meta)
            .arg(history)
            .arg(BUS)
            .arg(kind)
            .arg(bus::tag(stream))
            .arg(stream.unwrap_or(""))
            .arg(&payload.bytes()[..])
            .arg(self.keep.len)
            .arg(u64::try_from(max_age).unwrap_or(u64::MAX))
            .arg(field);
        cmd
    }
}

/// A survey in flight, forgotten when dropped.
struct Open(Arc<Surveys>, u64);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// A number that differs between processes (receipt origins).
fn random_origin() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(unix_ms());
    h.write_u32(std::process::id());
    h.finish()
}

/// Where nodes share their counters (field: node number).
const STATS_KEY: &str = "wspush:stats";

/// A node's link to Redis.
pub struct RedisBroker {
    node: u32,
    client: redis::Client,
    conn: ConnectionManager,
    jobs: mpsc::UnboundedSender<Job>,
    keep: Retention,
    timeout: Duration,
    counters: Arc<BrokerCounters>,
    receipts: Arc<Receipts<RValue>>,
    origin: u64,
    intake_bytes: usize,
    me: Arc<Identity>,
    surveys: Arc<Surveys>,
}

/// Default bound of a node's intake from the bus: a few seconds of a busy
/// bus, far below what a node holds for its browsers.
pub const DEFAULT_INTAKE_BYTES: usize = 64 << 20;

fn unavailable(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

/// A failed request: the connection's own response timeout (the same
/// `timeout`) reads as what it is, Redis not answering in time.
fn failed(e: redis::RedisError, timeout: Duration) -> BrokerError {
    match e.is_timeout() {
        true => BrokerError::Timeout(timeout),
        false => unavailable(e),
    }
}

impl RedisBroker {
    /// Connects to `url`; `node` 0 asks Redis for a fresh node number.
    /// Fails if Redis cannot be reached within `timeout`.
    pub async fn connect(
        url: &str,
        node: u32,
        keep: Retention,
        timeout: Duration,
    ) -> Result<RedisBroker, BrokerError> {
        let client = redis::Client::open(url).map_err(|_| BrokerError::Url(url.to_owned()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(1)
            .set_factor(50)
            .set_max_delay(1000);
        let connect = client.get_connection_manager_with_config(config);
        let mut conn = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| BrokerError::Timeout(timeout))?
            .map_err(unavailable)?;
        let node = match node {
            0 => {
                let n: u64 = redis::cmd("INCR")
                    .arg("wspush:nodes")
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                u32::try_from(n % u64::from(MAX_NODE)).unwrap_or(0) + 1
            }
            n => n.min(MAX_NODE),
        };
        let (jobs, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(BrokerCounters::default());
        let receipts = Arc::new(Receipts::new(timeout));
        let origin = random_origin();
        let commands = Commands {
            node,
            origin,
            sha: redis::Script::new(bus::PUBLISH_SCRIPT)
                .get_hash()
                .to_owned(),
            keep,
            next_ticket: 0,
        };
        let publisher = Publisher {
            conn: conn.clone(),
            commands,
            receipts: Arc::clone(&receipts),
            counters: Arc::clone(&counters),
            timeout,
        };
        tokio::spawn(publisher.run(rx));
        Ok(RedisBroker {
            node,
            client,
            conn,
            jobs,
            keep,
            timeout,
            counters,
            receipts,
            origin,
            intake_bytes: DEFAULT_INTAKE_BYTES,
            me: Arc::new(Identity::new(node)),
            // Survey ids of this process's own (see `Surveys`).
            surveys: Arc::new(Surveys::starting_at(origin << 16)),
        })
    }

    /// Who this node is, for `info`.
    pub fn identity(&self) -> Arc<Identity> {
        Arc::clone(&self.me)
    }

    /// Asks every node subscribed to the bus `query`; resolves to every answer once as
    /// many came as `PUBLISH` counted nodes, or fails at the broker timeout.
    pub fn survey(
        &self,
        query: Query,
    ) -> impl Future<Output = Result<Vec<Report>, BrokerError>> + Send + 'static {
        let (id, answers) = self.surveys.open();
        // Forgotten however the caller ends: done, failed, or dropped (a client gone).
        let open = Open(Arc::clone(&self.surveys), id);
        let sent = self.submit(Op::Survey(id, query));
        let (surveys, counters, timeout) = (
            Arc::clone(&self.surveys),
            Arc::clone(&self.counters),
            self.timeout,
        );
        counters.surveys.fetch_add(1, Ordering::Relaxed);
        async move {
            let _open = open;
            let result = async {
                let nodes = sent.await?.count;
                surveys.expect(id, usize::try_from(nodes).unwrap_or(usize::MAX));
                match tokio::time::timeout(timeout, answers).await {
                    Ok(Ok(reports)) => Ok(reports),
                    Ok(Err(_)) => Err(BrokerError::Closed),
                    Err(_) => Err(BrokerError::Timeout(timeout)),
                }
            }
            .await;
            if result.is_err() {
                counters.survey_errors.fetch_add(1, Ordering::Relaxed);
            }
            result
        }
    }

    /// The same broker with the subscription's intake bounded to `bytes`
    /// (`--broker-intake-bytes`); call before [`RedisBroker::start_subscriber`].
    pub fn with_intake_bytes(mut self, bytes: usize) -> Self {
        self.intake_bytes = bytes.max(1);
        self
    }

    /// This node's number.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// The counters.
    pub fn counters(&self) -> &BrokerCounters {
        &self.counters
    }

    /// Queues a publish now (call order is delivery order); the future
    /// resolves to the number of nodes it reached, once it also reached this
    /// one.
    pub fn publish(
        &self,
        stream: Option<&str>,
        payload: &Payload,
    ) -> impl Future<Output = Result<Done, BrokerError>> + Send + 'static {
        self.submit(Op::Stream(stream.map(str::to_owned), payload.clone()))
    }

    /// Queues a command for a connection of another node (or this one, to
    /// keep the caller's order); resolves to whether that node is listening.
    pub fn command(
        &self,
        node: u32,
        command: &NodeCommand,
    ) -> impl Future<Output = Result<Done, BrokerError>> + Send + 'static {
        self.submit(Op::Node(node, command.clone()))
    }

    /// Queues `send_user` on the shared bus; resolves to how many nodes listen.
    pub fn send_user(
        &self,
        user: &str,
        payload: Payload,
    ) -> impl Future<Output = Result<Done, BrokerError>> + Send + 'static {
        self.submit(Op::User(user.to_owned(), payload))
    }

    fn submit(&self, op: Op) -> impl Future<Output = Result<Done, BrokerError>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        // Refused at once while the subscription is down: it could not come back.
        let sent = match op.comes_back_to(self.node) && self.receipts.up().is_none() {
            true => {
                self.counters.refused_pushes.fetch_add(1, Ordering::Relaxed);
                Err(BrokerError::Unavailable(NOT_READY.into()))
            }
            false => match self.jobs.send(Job { op, reply }) {
                Ok(()) => Ok(()),
                Err(_) => Err(BrokerError::Closed),
            },
        };
        let counters = Arc::clone(&self.counters);
        async move {
            let result = match sent {
                Ok(()) => rx.await.unwrap_or(Err(BrokerError::Closed)),
                Err(e) => Err(e),
            };
            let result = result.and_then(done_of);
            if result.is_err() {
                counters.publish_errors.fetch_add(1, Ordering::Relaxed);
            }
            result
        }
    }

    /// What Redis holds for `stream` (numbering and history, read atomically).
    pub async fn read_history(&self, stream: Option<&str>) -> Result<HistoryRead, BrokerError> {
        let result = self.try_read_history(stream).await;
        if result.is_err() {
            self.counters.history_errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn try_read_history(&self, stream: Option<&str>) -> Result<HistoryRead, BrokerError> {
        let (meta, history) = bus::keys(stream);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HMGET")
            .arg(&meta)
            .arg("epoch")
            .arg("seq")
            .cmd("XRANGE")
            .arg(&history)
            .arg("-")
            .arg("+");
        let mut conn = self.conn.clone();
        let reply: Vec<RValue> = tokio::time::timeout(self.timeout, pipe.query_async(&mut conn))
            .await
            .map_err(|_| BrokerError::Timeout(self.timeout))?
            .map_err(|e| failed(e, self.timeout))?;
        let oldest_ms = self
            .keep
            .max_age
            .map(|age| unix_ms().saturating_sub(age.as_millis()));
        parse_history(reply, oldest_ms)
    }

    /// Deletes `stream`'s kept messages; its numbering stays (`history_remove`).
    pub async fn remove_history(&self, stream: Option<&str>) -> Result<(), BrokerError> {
        let (_, history) = bus::keys(stream);
        let mut conn = self.conn.clone();
        let mut del = redis::cmd("DEL");
        del.arg(&history);
        tokio::time::timeout(self.timeout, del.query_async::<()>(&mut conn))
            .await
            .map_err(|_| BrokerError::Timeout(self.timeout))?
            .map_err(|e| failed(e, self.timeout))
    }

    /// Shares this node's counters and reads every node's: the `cluster`
    /// part of `stats()`. Entries older than `max_age` (a node that stopped)
    /// are left out.
    pub async fn share_stats(
        &self,
        mine: &[(&'static str, u64)],
        max_age: Duration,
    ) -> Result<Vec<(u32, Vec<(String, u64)>)>, BrokerError> {
        let now = unix_ms();
        let entry = serde_json::json!({
            "t": now as u64,
            "s": mine.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
        });
        // The hash lives while some node refreshes it; nodes that stopped
        // are removed below, so restarts (new node numbers) do not pile up.
        let ttl_ms = u64::try_from(max_age.as_millis().saturating_mul(12)).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(STATS_KEY)
            .arg(self.node)
            .arg(entry.to_string())
            .ignore()
            .cmd("PEXPIRE")
            .arg(STATS_KEY)
            .arg(ttl_ms.max(1))
            .ignore()
            .cmd("HGETALL")
            .arg(STATS_KEY);
        let mut conn = self.conn.clone();
        let (all,): (Vec<(u32, String)>,) =
            tokio::time::timeout(self.timeout, pipe.query_async(&mut conn))
                .await
                .map_err(|_| BrokerError::Timeout(self.timeout))?
                .map_err(|e| failed(e, self.timeout))?;
        let oldest = now.saturating_sub(max_age.as_millis()) as u64;
        let gone = now.saturating_sub(max_age.as_millis().saturating_mul(12)) as u64;
        let mut stale = Vec::new();
        let mut live = Vec::new();
        for (node, text) in all {
            match parse_shared(&text) {
                Some((t, counters)) if t >= oldest => live.push((node, counters)),
                Some((t, _)) if t >= gone => {}
                _ => stale.push(node),
            }
        }
        if !stale.is_empty() {
            let mut hdel = redis::cmd("HDEL");
            hdel.arg(STATS_KEY).arg(&stale);
            // Best effort: the next share tries again.
            let _ = tokio::time::timeout(self.timeout, hdel.query_async::<()>(&mut conn)).await;
        }
        Ok(live)
    }

    /// Starts the subscriber tasks: delivers to `hub` until `shutdown`.
    pub fn start_subscriber(&self, hub: Arc<Hub>, shutdown: CancellationToken) {
        let answers = Answerer::start(
            self.conn.clone(),
            Arc::clone(&self.counters),
            self.timeout,
            shutdown.clone(),
        );
        let sub = Subscriber {
            me: Arc::clone(&self.me),
            surveys: Arc::clone(&self.surveys),
            answers,
            info: self.client.get_connection_info().clone(),
            channels: vec![BUS.to_owned(), bus::node_channel(self.node)],
            hub,
            counters: Arc::clone(&self.counters),
            receipts: Arc::clone(&self.receipts),
            origin: self.origin,
            timeout: self.timeout,
            intake_bytes: self.intake_bytes,
        };
        tokio::spawn(sub.run(shutdown));
    }
}

/// A reply to one job: `PUBLISH`'s count (commands, `send_user`) or the publish
/// script's `{count, seq, epoch}` (the position costs the script nothing: it has both).
fn done_of(v: RValue) -> Result<Done, BrokerError> {
    let count = |v: &RValue| match v {
        RValue::Int(n) => Some(u64::try_from(*n).unwrap_or(0)),
        _ => None,
    };
    match &v {
        RValue::Int(_) => count(&v).map(Done::count),
        RValue::Array(parts) => match &parts[..] {
            [n, seq, epoch] => Some(Done {
                count: count(n).unwrap_or(0),
                position: Some(Position::new(
                    String::from_utf8_lossy(bulk(epoch).unwrap_or_default()).as_ref(),
                    count(seq).unwrap_or(0),
                )),
            }),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| BrokerError::Reply(format!("{v:?}")))
}

/// A node's shared counters: when they were shared, and the counters.
fn parse_shared(text: &str) -> Option<(u64, Vec<(String, u64)>)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let t = v.get("t")?.as_u64()?;
    let counters = v
        .get("s")?
        .as_object()?
        .iter()
        .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
        .collect();
    Some((t, counters))
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn bulk(v: &RValue) -> Option<&[u8]> {
    match v {
        RValue::BulkString(b) => Some(b),
        RValue::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn parse_number(v: Option<&RValue>) -> Option<u64> {
    std::str::from_utf8(bulk(v?)?).ok()?.parse().ok()
}

/// Reads `[[epoch, seq], [[id, [k, v, …]], …]]`; entries older than
/// `oldest_ms` count as gone.
fn parse_history(reply: Vec<RValue>, oldest_ms: Option<u128>) -> Result<HistoryRead, BrokerError> {
    let bad = |what: &str| BrokerError::Reply(what.to_owned());
    let mut parts = reply.into_iter();
    let (Some(RValue::Array(meta)), Some(RValue::Array(entries))) = (parts.next(), parts.next())
    else {
        return Err(bad("history reply is not [meta, entries]"));
    };
    let Some(epoch) = meta.first().and_then(bulk) else {
        return Ok(HistoryRead::default());
    };
    let epoch = String::from_utf8_lossy(epoch);
    let mut read = HistoryRead {
        epoch: Arc::from(&*epoch),
        last_seq: parse_number(meta.get(1)).ok_or_else(|| bad("seq"))?,
        entries: Vec::with_capacity(entries.len()),
    };
    for entry in entries {
        let RValue::Array(entry) = entry else {
            return Err(bad("stream entry"));
        };
        let id = entry
            .first()
            .and_then(bulk)
            .ok_or_else(|| bad("entry id"))?;
        let seq = std::str::from_utf8(id)
            .ok()
            .and_then(|id| id.split('-').next()?.parse().ok())
            .ok_or_else(|| bad("entry id"))?;
        let Some(RValue::Array(fields)) = entry.get(1) else {
            return Err(bad("entry fields"));
        };
        let (mut kind, mut data, mut time) = (None, None, None);
        for pair in fields.chunks(2) {
            match (pair.first().and_then(bulk), pair.get(1)) {
                (Some(b"k"), Some(v)) => kind = bulk(v),
                (Some(b"d"), Some(v)) => data = bulk(v),
                (Some(b"t"), v) => time = parse_number(v),
                _ => {}
            }
        }
        if let (Some(oldest), Some(t)) = (oldest_ms, time) {
            if u128::from(t) < oldest {
                continue;
            }
        }
        let data = bytes::Bytes::copy_from_slice(data.ok_or_else(|| bad("entry data"))?);
        let payload = match kind {
            Some(b"t") if std::str::from_utf8(&data).is_ok() => Payload::Text(data),
            Some(b"b") => Payload::Binary(data),
            _ => return Err(bad("entry kind")),
        };
        read.entries.push((seq, payload));
    }
    Ok(read)
}

/// The task that owns the publish connection.
struct Publisher {
    conn: ConnectionManager,
    commands: Commands,
    receipts: Arc<Receipts<RValue>>,
    counters: Arc<BrokerCounters>,
    timeout: Duration,
}

/// A job sent in a pipeline: where its answer goes, and its receipt.
struct Sent {
    reply: oneshot::Sender<Result<RValue, BrokerError>>,
    ticket: Option<u64>,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut batch = Vec::with_capacity(64);
        loop {
            let next = self.receipts.expire(tokio::time::Instant::now());
            tokio::select! {
                n = rx.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 {
                        return;
                    }
                    self.send(&mut batch).await;
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(far_future)), if next.is_some() => {}
            }
        }
    }

    /// Sends `batch` as one pipeline and answers (or hands to the receipts) each job.
    async fn send(&mut self, batch: &mut Vec<Job>) {
        // The subscription as this pipeline leaves: what comes back on it counts.
        let generation = self.receipts.up();
        let mut pipe = redis::pipe();
        // Loading the script with every batch costs one hash on the server and
        // means a restarted (empty) Redis never answers NOSCRIPT.
        pipe.cmd("SCRIPT").arg("LOAD").arg(bus::PUBLISH_SCRIPT);
        let mut sent = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            if generation.is_none() && job.op.comes_back_to(self.commands.node) {
                self.counters.refused_pushes.fetch_add(1, Ordering::Relaxed);
                let _ = job
                    .reply
                    .send(Err(BrokerError::Unavailable(NOT_READY.into())));
                continue;
            }
            let (cmd, ticket) = self.commands.build(job.op);
            pipe.add_command(cmd);
            sent.push(Sent {
                reply: job.reply,
                ticket,
            });
        }
        if sent.is_empty() {
            return;
        }
        let request = self.conn.req_packed_commands(&pipe, 0, sent.len() + 1);
        let outcome = match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(values)) if values.len() == sent.len() + 1 => Ok(values),
            Ok(Ok(values)) => Err(BrokerError::Reply(format!("{} replies", values.len()))),
            Ok(Err(e)) => Err(failed(e, self.timeout)),
            Err(_) => Err(BrokerError::Timeout(self.timeout)),
        };
        let values = match outcome {
            Ok(values) => values,
            Err(e) => {
                tracing::warn!(error = %e, pushes = sent.len(), "publish to Redis failed");
                for job in sent {
                    let _ = job.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        for (job, value) in sent.into_iter().zip(values.into_iter().skip(1)) {
            match (value, job.ticket, generation) {
                (RValue::ServerError(e), _, _) => {
                    let _ = job.reply.send(Err(BrokerError::Redis(format!("{e:?}"))));
                }
                (v, Some(ticket), Some(generation)) => {
                    self.receipts.wait(ticket, generation, v, job.reply);
                }
                (v, _, _) => {
                    let _ = job.reply.send(Ok(v));
                }
            }
        }
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}

impl super::Broker for RedisBroker {
    fn publish(&self, stream: Option<&str>, payload: Payload, _: Flush) -> Answer {
        Answer::Later(Box::pin(RedisBroker::publish(self, stream, &payload)))
    }

    fn command(&self, command: NodeCommand, _: Flush) -> Answer {
        let node = super::node_of(command.conn_id());
        Answer::Later(Box::pin(RedisBroker::command(self, node, &command)))
    }

    fn send_user(&self, user: &str, payload: Payload, _: Flush) -> Answer {
        Answer::Later(Box::pin(RedisBroker::send_user(self, user, payload)))
    }

    fn publish_live(&self, channel: &str, payload: Payload, _: Flush) -> Answer {
        Answer::Later(Box::pin(self.submit(Op::Live(channel.to_owned(), payload))))
    }

    fn user_command(&self, command: UserCommand, _: Flush) -> Answer {
        Answer::Later(Box::pin(self.submit(Op::ByUser(command))))
    }

    fn survey(&self, query: Query) -> Survey {
        Box::pin(RedisBroker::survey(self, query))
    }
}
