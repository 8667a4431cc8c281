//! The publishers: `K` TCP connections ([`PubShape::publishers`]) publishing at
//! once to wspush (MessagePack-RPC `push_data` / `publish`, as calls or as
//! notifications) or to an HTTP POST endpoint (Nchan, the floor server).
//!
//! Messages are numbered `0..M` and go round robin over the `n` channels, so
//! channel `ch` carries messages `ch, ch+n, ch+2n …`. Its `j`-th message is
//! sent by publisher `j mod K`, with sequence number `j div K` in its payload
//! ([`Part`]): every channel hears from every publisher, and each publisher's
//! messages on a channel are numbered from 0. One connection writes its
//! requests in order and the server reads them in order, so a subscriber
//! checks order per publisher; across publishers no order is defined.
//!
//! Three brakes decide when a publisher sends its next message `i`:
//! - `inflight`: replies outstanding on its connection ([`PubShape::inflight`];
//!   1 waits for each reply before the next request, as a synchronous client
//!   does; notifications have no reply and skip this brake);
//! - `rate`: message `i` is due at `start + i / rate`, when pacing;
//! - `lag`: message `i` waits until the subscribers have received, in total,
//!   every delivery of messages `0..=i-lag` ([`Flow`]), whichever publisher
//!   sent them, so "max rate" is the rate the subscribers actually sustain
//!   rather than a queue growing inside the server until its overflow policy
//!   cuts healthy clients off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::payload;
use crate::scenario::{PubMode, PubShape};
use crate::tally::Tally;
use crate::wire::Wire;

/// Where publishes go.
#[derive(Debug, Clone)]
pub enum Target {
    /// wspush's MessagePack-RPC port.
    Rpc(SocketAddr),
    /// An HTTP endpoint; `{channel}` in the path is replaced by the channel.
    Http {
        /// Server address.
        addr: SocketAddr,
        /// `Host` header.
        host: String,
        /// Path template, e.g. `/pub/{channel}`.
        path: String,
    },
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Socket error.
    #[error("publisher i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the publisher's connection.
    #[error("publisher connection closed by the server")]
    Closed,
    /// A malformed MessagePack-RPC reply.
    #[error("rpc reply: {0}")]
    Decode(#[from] msgpack_rpc::DecodeError),
    /// A malformed HTTP reply.
    #[error("http reply: {0}")]
    Http(String),
    /// The server answered a publish with an error.
    #[error("server refused a publish: {0}")]
    Refused(String),
    /// Notifications asked of an HTTP publisher.
    #[error("HTTP has no notifications: use --pub-mode call with --http-publish")]
    NotifyOverHttp,
    /// A publisher task panicked or was cancelled.
    #[error("publisher task: {0}")]
    Task(String),
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Channels, used round robin (`None`: broadcast with `push_data`).
    pub channels: Vec<Option<String>>,
    /// Total messages, over all publishers.
    pub messages: u64,
    /// Payload bytes.
    pub size: usize,
    /// Messages per second, over all publishers; `None`: as fast as the brakes allow.
    pub rate: Option<f64>,
    /// Requests in flight per publisher (0 or 1: one at a time).
    pub inflight: usize,
}

/// Which messages of a [`Plan`] one of its publishers sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// This publisher, from 0.
    pub index: usize,
    /// Publishers of the plan.
    pub of: usize,
}

impl Part {
    fn of(&self) -> u64 {
        self.of.max(1) as u64
    }

    /// Its first message when messages go round robin over `n_ch` channels.
    fn first(&self, n_ch: u64) -> u64 {
        self.index as u64 * n_ch
    }

    /// Its message after `i`: messages come in rounds of one per channel,
    /// and publishers take turns by round.
    fn next(&self, i: u64, n_ch: u64) -> u64 {
        if (i + 1) % n_ch == 0 {
            i + 1 + (self.of() - 1) * n_ch
        } else {
            i + 1
        }
    }

    /// The sequence number message `i` carries (per channel and publisher).
    fn seq(&self, i: u64, n_ch: u64) -> u64 {
        i / n_ch / self.of()
    }
}

/// Messages channel `ch` of `n_ch` carries when `messages` go round robin.
pub fn messages_on_channel(messages: u64, ch: usize, n_ch: usize) -> u64 {
    let n = n_ch.max(1) as u64;
    messages / n + u64::from((ch as u64) < messages % n)
}

/// Messages publisher `p` of `publishers` sends on channel `ch` of `n_ch`
/// (see [`Part`]): what a subscriber of that channel expects from it.
pub fn messages_from(messages: u64, ch: usize, n_ch: usize, p: usize, publishers: usize) -> u64 {
    messages_on_channel(messages_on_channel(messages, ch, n_ch), p, publishers)
}

/// End-to-end brake: subscribers' progress, shared by every publisher.
#[derive(Clone)]
pub struct Flow {
    /// Where subscribers count deliveries.
    pub tally: Arc<Tally>,
    /// Well-behaved subscribers per channel (same order as `Plan::channels`).
    pub per_channel: Vec<u64>,
    /// Messages the publishers may run ahead of the subscribers.
    pub lag: u64,
}

impl Flow {
    /// Deliveries expected once messages `0..n` have all arrived.
    fn expected_after(&self, n: u64) -> u64 {
        let c = self.per_channel.len().max(1);
        self.per_channel
            .iter()
            .enumerate()
            .map(|(ch, subs)| messages_on_channel(n, ch, c) * subs)
            .sum()
    }

    /// Deliveries counted before message `i` may go.
    fn needed(&self, i: u64) -> u64 {
        match i.checked_sub(self.lag) {
            Some(behind) => self.expected_after(behind + 1),
            None => 0,
        }
    }

    fn may_send(&self, i: u64) -> bool {
        self.tally.delivered.sum() >= self.needed(i)
    }
}

/// Why a publisher stopped writing requests.
enum Stop {
    /// Its messages are all written.
    Done,
    /// Its output buffer is full: flush, then go on.
    Full,
    /// Its in-flight limit: wait for a reply.
    Window,
    /// The next message is due then (pacing).
    Due(Instant),
    /// The lag brake.
    Flow,
}

/// Bytes of requests written at once at most.
const FLUSH_AT: usize = 64 * 1024;

/// Where a publisher is in its [`Part`].
struct Cursor {
    next: u64,
    in_flight: usize,
}

/// Connects the `shape.publishers` publishers of a point.
pub async fn connect_all(target: &Target, shape: PubShape) -> Result<Vec<Publisher>, PublishError> {
    let mut publishers = Vec::with_capacity(shape.publishers);
    for _ in 0..shape.publishers.max(1) {
        publishers.push(Publisher::connect(target, shape.pub_mode).await?);
    }
    Ok(publishers)
}

/// Runs every publisher of `plan` at once, each on its own task, publisher
/// `k` of `publishers` sending part `k`; returns when all have had every
/// reply, or at the first error (the others are stopped).
pub async fn run_all(
    publishers: Vec<Publisher>,
    plan: &Plan,
    flow: Option<Flow>,
) -> Result<(), PublishError> {
    let of = publishers.len();
    let mut tasks = JoinSet::new();
    for (index, mut publisher) in publishers.into_iter().enumerate() {
        let (plan, flow) = (plan.clone(), flow.clone());
        tasks.spawn(async move {
            publisher
                .run(&plan, Part { index, of }, flow.as_ref())
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| PublishError::Task(e.to_string()))??;
    }
    Ok(())
}

/// A connected publisher.
pub struct Publisher {
    stream: TcpStream,
    wire: Wire,
    notify: bool,
    out: BytesMut,
    input: BytesMut,
    payload: Vec<u8>,
}

impl Publisher {
    /// Connects to `target`, to publish with calls or notifications.
    pub async fn connect(target: &Target, mode: PubMode) -> Result<Publisher, PublishError> {
        let notify = mode == PubMode::Notify;
        let (addr, wire) = match target {
            Target::Rpc(addr) => (*addr, Wire::rpc()),
            Target::Http { .. } if notify => return Err(PublishError::NotifyOverHttp),
            Target::Http { addr, host, path } => (
                *addr,
                Wire::Http {
                    host: host.clone(),
                    path: path.clone(),
                },
            ),
        };
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Publisher {
            stream,
            wire,
            notify,
            out: BytesMut::with_capacity(FLUSH_AT),
            input: BytesMut::with_capacity(64 * 1024),
            payload: Vec::new(),
        })
    }

    /// Publishes one warm-up message to each channel (as calls) and waits
    /// for the replies.
    pub async fn warmup(&mut self, channels: &[Option<String>]) -> Result<(), PublishError> {
        for channel in channels {
            self.payload.clear();
            payload::encode_warmup(&mut self.payload);
            self.wire
                .encode(channel.as_deref(), &self.payload, false, &mut self.out);
        }
        self.flush().await?;
        for _ in channels {
            self.read_reply().await?;
        }
        Ok(())
    }

    /// Publishes its `part` of the plan; returns when every reply has come
    /// (notifications: when the reply to a `stats` call sent after them has,
    /// so the server has handled them all).
    pub async fn run(
        &mut self,
        plan: &Plan,
        part: Part,
        flow: Option<&Flow>,
    ) -> Result<(), PublishError> {
        let start = Instant::now();
        let mut at = Cursor {
            next: part.first(plan.channels.len().max(1) as u64),
            in_flight: 0,
        };
        loop {
            let stop = self.fill(plan, part, flow, &mut at, start);
            self.flush().await?;
            let (due, flow_wait) = match stop {
                Stop::Full => continue,
                Stop::Done if at.in_flight == 0 => break,
                Stop::Done | Stop::Window => (None, None),
                Stop::Due(t) => (Some(t), None),
                Stop::Flow => (None, flow.map(|f| (f, at.next))),
            };
            tokio::select! {
                n = self.stream.read_buf(&mut self.input) => {
                    if n? == 0 {
                        return Err(PublishError::Closed);
                    }
                    while self.wire.decode(&mut self.input)?.is_some() {
                        at.in_flight = at.in_flight.saturating_sub(1);
                    }
                }
                () = sleep_until_opt(due) => {}
                () = wait_flow(flow_wait) => {}
            }
        }
        if self.notify {
            self.barrier().await?;
        }
        Ok(())
    }

    /// Encodes requests until a brake (or a full buffer) stops it.
    fn fill(
        &mut self,
        plan: &Plan,
        part: Part,
        flow: Option<&Flow>,
        at: &mut Cursor,
        start: Instant,
    ) -> Stop {
        let n_ch = plan.channels.len().max(1) as u64;
        let window = if self.notify {
            usize::MAX
        } else {
            plan.inflight.max(1)
        };
        loop {
            if at.next >= plan.messages {
                return Stop::Done;
            }
            if at.in_flight >= window {
                return Stop::Window;
            }
            if self.out.len() >= FLUSH_AT {
                return Stop::Full;
            }
            if let Some(t) = plan
                .rate
                .map(|r| start + Duration::from_secs_f64(at.next as f64 / r))
                .filter(|t| Instant::now() < *t)
            {
                return Stop::Due(t);
            }
            if flow.is_some_and(|f| !f.may_send(at.next)) {
                return Stop::Flow;
            }
            let ch = plan.channels.get((at.next % n_ch) as usize);
            self.payload.clear();
            payload::encode(
                part.seq(at.next, n_ch),
                payload::now_ns(),
                u32::try_from(part.index).unwrap_or(u32::MAX),
                plan.size,
                &mut self.payload,
            );
            let ch = ch.and_then(Option::as_deref);
            self.wire
                .encode(ch, &self.payload, self.notify, &mut self.out);
            at.next = part.next(at.next, n_ch);
            if !self.notify {
                at.in_flight += 1;
            }
        }
    }

    /// After notifications: one `stats` call. The server reads a connection
    /// in order and handles `push_data` / `publish` before reading on, so its
    /// reply means every notification before it was handled, and the
    /// publishing time counts the server's work, not only the socket's.
    async fn barrier(&mut self) -> Result<(), PublishError> {
        self.wire.request(b"stats", &[], &mut self.out);
        self.flush().await?;
        self.read_reply().await
    }

    async fn flush(&mut self) -> Result<(), PublishError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    async fn read_reply(&mut self) -> Result<(), PublishError> {
        loop {
            if self.wire.decode(&mut self.input)?.is_some() {
                return Ok(());
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(PublishError::Closed);
            }
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Returns once message `i` may go (or soon after: the wake-up is best effort,
/// with a short timer behind it so a missed wake-up costs a millisecond, not a hang).
async fn wait_flow(flow: Option<(&Flow, u64)>) {
    let Some((f, i)) = flow else {
        return std::future::pending().await;
    };
    f.tally
        .wait_delivered(Duration::from_millis(2), f.needed(i))
        .await;
}

#[cfg(test)]
#[path = "publisher_tests.rs"]
mod tests;
