//! The node's subscription to `wspush:bus` and `wspush:node:N`: one
//! connection read by one task into the byte-bounded [`Intake`], and one task
//! delivering from there to the hub.
//!
//! ```text
//! Redis --socket--> reader (RESP frames, receipts, never waits) --Intake (bytes)--> deliverer --> Hub
//!                   reader --survey answers--> Surveys      deliverer --reports--> Answerer --> Redis
//! ```
//!
//! Survey answers for this node skip the intake (a waiting caller, never dropped in gap
//! mode); queries are answered by the deliverer, in bus order, so an answer reflects
//! every command that came before it. The answerer's queue is bounded
//! ([`ANSWER_QUEUE`]); an answer that does not fit is dropped and counted (its asker
//! times out).
//!
//! The reader reconnects with backoff (100 ms doubling to 5 s) and
//! resubscribes. While it is not subscribed, pushes that this node would
//! receive itself are refused (see [`super::receipts`]); messages published
//! meanwhile are reported to positioned browsers as gaps by `Hub::deliver`.
//! A subscription that stays silent is pinged; one that does not answer
//! within `max(broker timeout, 5 s)` is treated as lost.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::aio::ConnectionManager;
use redis::{ConnectionAddr, ConnectionInfo, Value as RValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::BrokerCounters;
use super::bus::{self, BusMessage, NodeCommand};
use super::control::{self, Report};
use super::intake::Intake;
use super::receipts::Receipts;
use super::resp::{self, Decoder, Frame, RespError};
use super::survey::{self, Identity, Surveys};
use crate::delivery::flush::Flush;
use crate::delivery::hub::Hub;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 << 10;

/// Silence after which the subscription is pinged.
const IDLE: Duration = Duration::from_secs(2);

/// The least a ping is given to be answered: a Redis busy for a few
/// seconds (a slow command, `DEBUG SLEEP`) is not a lost subscription.
const MIN_PONG_WAIT: Duration = Duration::from_secs(5);

/// Messages handed to the hub per wake-up of the deliverer.
const DELIVER_BATCH: usize = 64;

/// Survey answers waiting to be published; beyond, an answer is dropped (counted).
pub const ANSWER_QUEUE: usize = 256;

/// Why a subscription ended or could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Redis sent something that is not RESP2 of a subscription.
    #[error("{0}")]
    Resp(#[from] RespError),
    /// Redis refused `AUTH` or `SUBSCRIBE`.
    #[error("Redis refused: {0}")]
    Refused(String),
    /// Redis closed the connection.
    #[error("connection closed by Redis")]
    Closed,
    /// No answer to a ping.
    #[error("no answer to a ping within {0:?}")]
    Silent(Duration),
    /// A URL scheme this build cannot subscribe over.
    #[error("cannot subscribe over this kind of address (TLS?)")]
    Unsupported,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An established subscription: the socket and what was read past the handshake.
struct Link {
    io: Box<dyn Io>,
    buf: BytesMut,
    decoder: Decoder,
}

/// The subscribing side of a node.
pub struct Subscriber {
    /// Where Redis is and how to log in.
    pub info: ConnectionInfo,
    /// The channels to subscribe to.
    pub channels: Vec<String>,
    /// Where messages go.
    pub hub: Arc<Hub>,
    /// The broker's counters.
    pub counters: Arc<BrokerCounters>,
    /// This node's waiting pushes.
    pub receipts: Arc<Receipts<RValue>>,
    /// This process's receipt origin.
    pub origin: u64,
    /// Connect and handshake timeout.
    pub timeout: Duration,
    /// The intake bound in bytes.
    pub intake_bytes: usize,
    /// This node, for `info` answers.
    pub me: Arc<Identity>,
    /// This node's surveys in flight.
    pub surveys: Arc<Surveys>,
    /// Where this node's answers to surveys go.
    pub answers: Answerer,
}

impl Subscriber {
    /// Subscribes, reads and delivers until `shutdown`, reconnecting as needed.
    pub async fn run(self, shutdown: CancellationToken) {
        let intake = Arc::new(Intake::new(self.intake_bytes, Arc::clone(&self.counters)));
        let local = Local {
            hub: Arc::clone(&self.hub),
            counters: Arc::clone(&self.counters),
            me: Arc::clone(&self.me),
            answers: self.answers.clone(),
        };
        tokio::spawn(deliver(Arc::clone(&intake), local, shutdown.clone()));
        let mut delay = Duration::from_millis(100);
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(self.timeout, self.connect(&intake)) => r,
            };
            match connected {
                Ok(Ok(link)) => {
                    self.receipts.subscribed();
                    self.counters.connected.store(1, Ordering::Relaxed);
                    tracing::info!(channels = ?self.channels, "subscribed to Redis");
                    delay = Duration::from_millis(100);
                    let why = tokio::select! {
                        _ = shutdown.cancelled() => None,
                        why = self.read(link, &intake) => Some(why),
                    };
                    self.receipts.lost();
                    self.counters.connected.store(0, Ordering::Relaxed);
                    let Some(why) = why else { return };
                    tracing::warn!(error = %why, "Redis subscription lost; pushes refused until it is back");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, ?delay, "cannot subscribe to Redis"),
                Err(_) => tracing::warn!(?delay, "subscribing to Redis timed out"),
            }
            self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn connect(&self, intake: &Intake) -> Result<Link, SubError> {
        let io: Box<dyn Io> = match &self.info.addr {
            ConnectionAddr::Tcp(host, port) => {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                tcp.set_nodelay(true)?;
                Box::new(tcp)
            }
            ConnectionAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            _ => return Err(SubError::Unsupported),
        };
        let mut link = Link {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder: Decoder::new(self.intake_bytes),
        };
        let mut hello = Vec::new();
        let redis = &self.info.redis;
        if let Some(password) = &redis.password {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &redis.username {
                auth.push(user.as_bytes());
            }
            auth.push(password.as_bytes());
            hello.extend(resp::command(&auth));
        }
        let mut subscribe: Vec<&[u8]> = vec![b"SUBSCRIBE"];
        subscribe.extend(self.channels.iter().map(|c| c.as_bytes()));
        hello.extend(resp::command(&subscribe));
        link.io.write_all(&hello).await?;
        let mut pending: Vec<&[u8]> = self.channels.iter().map(|c| c.as_bytes()).collect();
        loop {
            while let Some(frame) = link.decoder.decode(&mut link.buf)? {
                match frame {
                    Frame::Error(e) => return Err(SubError::Refused(e)),
                    Frame::Subscribed(channel) => pending.retain(|c| *c != &channel[..]),
                    other => self.on_frame(other, intake),
                }
            }
            if pending.is_empty() {
                return Ok(link);
            }
            link.buf.reserve(READ_CHUNK);
            if link.io.read_buf(&mut link.buf).await? == 0 {
                return Err(SubError::Closed);
            }
        }
    }

    /// Reads until the subscription fails; returns why.
    async fn read(&self, mut link: Link, intake: &Intake) -> SubError {
        let pong_wait = self.timeout.max(MIN_PONG_WAIT);
        let mut last_input = Instant::now();
        let mut pinged: Option<Instant> = None;
        loop {
            loop {
                match link.decoder.decode(&mut link.buf) {
                    Ok(Some(frame)) => self.on_frame(frame, intake),
                    Ok(None) => break,
                    Err(e) => return e.into(),
                }
            }
            if link.buf.is_empty() && link.buf.capacity() > 4 * READ_CHUNK {
                // A large message is through: give its buffer back.
                link.buf = BytesMut::with_capacity(READ_CHUNK);
            }
            link.buf.reserve(READ_CHUNK);
            let check = match pinged {
                Some(at) => at + pong_wait,
                None => last_input + IDLE,
            };
            let read = tokio::select! {
                r = link.io.read_buf(&mut link.buf) => Some(r),
                _ = tokio::time::sleep_until(check) => None,
            };
            match read {
                Some(Ok(0)) => return SubError::Closed,
                Some(Ok(_)) => {
                    last_input = Instant::now();
                    pinged = None;
                }
                Some(Err(e)) => return e.into(),
                None if pinged.is_some() => return SubError::Silent(pong_wait),
                None => {
                    if let Err(e) = link.io.write_all(&resp::command(&[b"PING"])).await {
                        return e.into();
                    }
                    pinged = Some(Instant::now());
                }
            }
        }
    }

    fn on_frame(&self, frame: Frame, intake: &Intake) {
        let c = &self.counters;
        let own = |msg: &[u8]| bus::receipt_of(msg).filter(|r| r.origin == self.origin);
        match frame {
            Frame::Message { payload, .. } if payload.first() == Some(&b'A') => {
                c.messages_in.fetch_add(1, Ordering::Relaxed);
                match BusMessage::parse(&payload) {
                    Ok(BusMessage::Answer { id, report, .. }) => {
                        self.surveys.answered(id, report);
                    }
                    _ => {
                        c.bad_messages.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("unreadable survey answer from Redis dropped");
                    }
                }
            }
            Frame::Message { payload, .. } => {
                c.messages_in.fetch_add(1, Ordering::Relaxed);
                let receipt = own(&payload);
                let control = bus::is_control(&payload);
                intake.offer(payload, control);
                if let Some(r) = receipt {
                    self.receipts.received(r.ticket, true);
                }
            }
            Frame::Oversized { head, len } => {
                c.messages_in.fetch_add(1, Ordering::Relaxed);
                c.intake_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    len,
                    limit = self.intake_bytes,
                    stream = ?bus::stream_of(&head),
                    "message from Redis larger than --broker-intake-bytes dropped"
                );
                if let Some(r) = own(&head) {
                    self.receipts.received(r.ticket, false);
                }
            }
            Frame::Error(e) => tracing::warn!(error = %e, "error on the Redis subscription"),
            _ => {}
        }
    }
}

/// What the deliverer works with: this node's hub, and where its survey answers go.
struct Local {
    hub: Arc<Hub>,
    counters: Arc<BrokerCounters>,
    me: Arc<Identity>,
    answers: Answerer,
}

/// Hands what the reader queued to the hub, in order.
async fn deliver(intake: Arc<Intake>, local: Local, shutdown: CancellationToken) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(DELIVER_BATCH);
    loop {
        let more = tokio::select! {
            _ = shutdown.cancelled() => return,
            more = intake.take(&mut batch, DELIVER_BATCH) => more,
        };
        let n = batch.len();
        for (i, msg) in batch.drain(..).enumerate() {
            // A message with others right behind it is part of a burst.
            local.handle(&msg, Flush::after(more || i + 1 < n));
        }
    }
}

impl Local {
    fn handle(&self, msg: &[u8], flush: Flush) {
        let hub = &self.hub;
        match BusMessage::parse(msg) {
            Ok(BusMessage::Stream(stream, pos, payload)) => {
                hub.deliver(stream.as_deref(), &pos, payload, flush);
            }
            Ok(BusMessage::User(user, payload)) => {
                hub.send_user(&user, payload, flush);
            }
            Ok(BusMessage::Node(cmd)) => match cmd {
                NodeCommand::Send(id, payload) => {
                    hub.send(id, payload, flush);
                }
                NodeCommand::Subscribe(id, channel) => {
                    hub.subscribe(id, &channel);
                }
                NodeCommand::Unsubscribe(id, channel) => {
                    hub.unsubscribe(id, &channel);
                }
                NodeCommand::Disconnect(id, code, reason) => {
                    hub.disconnect(id, code, &reason);
                }
            },
            Ok(BusMessage::Live(channel, payload)) => {
                hub.publish_live(&channel, payload, flush);
            }
            Ok(BusMessage::ByUser(command)) => {
                survey::apply_user(hub, &command);
            }
            Ok(BusMessage::Query { asker, id, query }) => {
                let report = survey::report(hub, &self.me, &query);
                self.answers.send(asker, id, self.me.node, &report);
            }
            // Answers are taken by the reader; one here came on the wrong channel.
            Ok(BusMessage::Answer { .. }) => {}
            Err(e) => {
                self.counters.bad_messages.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "unreadable message from Redis dropped");
            }
        }
    }
}

/// Publishes this node's survey answers, each to its asker's node channel, from a
/// bounded queue ([`ANSWER_QUEUE`]) so the deliverer never waits for Redis.
#[derive(Clone)]
pub struct Answerer {
    queue: mpsc::Sender<(u32, Vec<u8>)>,
    counters: Arc<BrokerCounters>,
}

impl Answerer {
    /// Starts the task publishing on `conn` until `shutdown`.
    pub fn start(
        conn: ConnectionManager,
        counters: Arc<BrokerCounters>,
        timeout: Duration,
        shutdown: CancellationToken,
    ) -> Answerer {
        let (queue, mut rx) = mpsc::channel::<(u32, Vec<u8>)>(ANSWER_QUEUE);
        let c = Arc::clone(&counters);
        tokio::spawn(async move {
            loop {
                let (asker, msg) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = rx.recv() => match next {
                        Some(next) => next,
                        None => return,
                    },
                };
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(bus::node_channel(asker)).arg(msg);
                let sent = tokio::time::timeout(timeout, cmd.query_async::<i64>(&mut conn)).await;
                if !matches!(sent, Ok(Ok(_))) {
                    c.survey_answers_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(asker, "survey answer not sent: Redis failed");
                }
            }
        });
        Answerer { queue, counters }
    }

    /// Queues `report` (node `node`'s answer to `asker`'s survey `id`); never waits.
    fn send(&self, asker: u32, id: u64, node: u32, report: &Report) {
        let msg = control::encode_report(id, node, report);
        match self.queue.try_send((asker, msg)) {
            Ok(()) => self.counters.survey_answers.fetch_add(1, Ordering::Relaxed),
            Err(_) => {
                tracing::warn!(asker, "survey answer queue full; answer dropped");
                self.counters
                    .survey_answers_dropped
                    .fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}
