//! The hub: who is connected, who listens to which stream, and fan-out.
//!
//! Every push is encoded once per wire format in use ([`super::outlet`]) and the
//! same shared bytes are queued to every recipient with a non-blocking enqueue:
//! the caller never waits for a browser. A full queue is handled by the
//! connection's overflow policy inside `ws-server`; the hub only counts.
//!
//! Order: a push is numbered and queued to every recipient under its stream's
//! order lock, and each connection's queue is FIFO, so pushes from one caller
//! reach each browser in call order, with increasing positions. A push that
//! meets a fan-out of its stream in progress joins the stream's next pass
//! ([`super::joining`]), behind every push that came before it. The hub's own
//! lock guards only who exists and subscribes to what: a fan-out clones its
//! stream's [`Subs`] out of it and queues without it (see
//! [`super::subscribers`] for the stream's locks).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};
use ws_server::{Connection, FanOut, Writers};

use super::event_stream::Ids;
use super::flush::Flush;
use super::history::{MemoryHistory, Replay};
use super::joining::JoinedPush;
use super::outlet::{Encoded, Format, Outlet};
use super::payload::Payload;
use super::position::Position;
use super::query::{ClientOptions, Since};
use super::subscribers::Subs;
use super::tally::Tally;

pub use super::query::channels_from_query;
pub use reads::{Present, Totals};

mod reads;

/// What the hub knows about one browser connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The connection id (with its node in the high bits, see `broker`).
    pub id: u64,
    /// The browser's address.
    pub peer: SocketAddr,
    /// The request path of the upgrade (free for applications).
    pub path: String,
    /// The query string of the upgrade, without `?`.
    pub query: String,
    /// When the connection opened.
    pub opened: SystemTime,
    /// The user its token named (`sub`); `None` without auth.
    pub user: Option<String>,
    /// `"websocket"` or `"sse"`.
    pub transport: &'static str,
}

struct Entry {
    conn: Connection,
    info: ConnInfo,
    channels: HashSet<Arc<str>>,
    format: Format,
    ids: Option<Arc<Ids>>,
    wake: Option<Arc<Notify>>,
}

impl Entry {
    fn outlet(&self) -> Outlet {
        Outlet {
            id: self.info.id,
            conn: self.conn.clone(),
            format: self.format,
            ids: self.ids.clone(),
            wake: self.wake.clone(),
        }
    }
}

/// How a connection takes its pushes.
#[derive(Debug, Clone)]
pub enum Transport {
    /// A WebSocket: raw frames, or positioned ones if it asked.
    WebSocket,
    /// Server-Sent Events.
    Sse,
    /// A long poll: pushes only wake it (it answers from history).
    Poll(Arc<Notify>),
}

impl Transport {
    /// Its name in `connections()`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Sse => "sse",
            Transport::Poll(_) => "poll",
        }
    }
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, Entry>,
    channels: HashMap<Arc<str>, Arc<Subs>>,
    users: HashMap<Arc<str>, HashSet<u64>>,
}

/// Counters the hub keeps; read them with [`Hub::counters`].
#[derive(Debug, Default)]
pub struct Counters {
    /// Pushes accepted (`push_data`, `publish`, `send`), each counted once.
    pub pushes: AtomicU64,
    /// Frames queued to connections (one push to N connections counts N).
    pub deliveries: AtomicU64,
    /// Frame bytes queued to connections.
    pub delivered_bytes: AtomicU64,
    /// Deliveries refused because a connection's queue was full.
    pub overflows: AtomicU64,
    /// Deliveries to a connection that was already closing.
    pub to_closed: AtomicU64,
    /// Messages received from browsers.
    pub messages_in: AtomicU64,
    /// Bytes received from browsers.
    pub bytes_in: AtomicU64,
    /// Connections that resumed a stream from a position.
    pub resumes: AtomicU64,
    /// Gap notices queued to browsers.
    pub gap_notices: AtomicU64,
    /// Pushes that met a fan-out of their stream in progress and went out in its next pass.
    pub joined: AtomicU64,
}

/// The hub. Cheap to share: wrap it in an `Arc`.
pub struct Hub {
    state: RwLock<State>,
    /// The broadcast stream's subscribers: every connection.
    all: Arc<Subs>,
    counters: Counters,
    history: MemoryHistory,
    /// Write the fan-outs to idle browsers, off the callers' threads.
    writers: Writers,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(crate::delivery::history::Retention::default())
    }
}

impl Hub {
    /// A new, empty hub whose embedded broker keeps `retention` per stream.
    pub fn new(retention: crate::delivery::history::Retention) -> Self {
        Hub {
            state: RwLock::default(),
            all: Arc::default(),
            counters: Counters::default(),
            history: MemoryHistory::new(retention),
            writers: Writers::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a
        // way that matters more than stopping fan-out, so poisoning is ignored.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The embedded broker's history.
    pub fn history(&self) -> &MemoryHistory {
        &self.history
    }

    /// Registers an open connection with its channels. Returns the streams it
    /// resumes: they buffer live messages until [`Hub::finish_resume`]. An event stream
    /// resumes every stream it joins (from its tip when it gave no `since`), so that its
    /// event ids know where it is in each.
    pub fn add(
        &self,
        conn: Connection,
        info: ConnInfo,
        opts: &ClientOptions,
        transport: Transport,
    ) -> Vec<Resume> {
        let id = info.id;
        let every = matches!(transport, Transport::Sse);
        let since = |stream: Option<&str>| {
            opts.since
                .iter()
                .find(|s| s.stream.as_deref() == stream)
                .cloned()
        };
        let poll = matches!(transport, Transport::Poll(_));
        let resumes = |stream: Option<&str>| !poll && (every || since(stream).is_some());
        let (format, ids, wake) = match transport {
            Transport::WebSocket => (Format::for_positions(opts.positions), None, None),
            Transport::Sse => (Format::Sse, Some(Arc::default()), None),
            Transport::Poll(wake) => (Format::Wake, None, Some(wake)),
        };
        let entry = Entry {
            conn,
            info,
            channels: HashSet::new(),
            format,
            ids,
            wake,
        };
        let mut state = self.write();
        self.all.insert(entry.outlet(), resumes(None));
        if let Some(user) = &entry.info.user {
            state
                .users
                .entry(Arc::from(user.as_str()))
                .or_default()
                .insert(id);
        }
        state.conns.insert(id, entry);
        for channel in &opts.channels {
            subscribe_locked(&mut state, id, channel, resumes(Some(channel)));
        }
        let streams = std::iter::once(None).chain(opts.channels.iter().map(|c| Some(c.as_str())));
        streams
            .filter(|s| resumes(*s))
            .map(|s| Resume {
                stream: s.map(str::to_owned),
                since: since(s),
            })
            .collect()
    }

    /// Queues to an event stream an id-only block naming where it is in every stream (it
    /// moves the browser's last event id without an event), after its resumes.
    pub fn announce_ids(&self, id: u64) {
        let Some((conn, ids)) = self
            .read()
            .conns
            .get(&id)
            .and_then(|e| Some((e.conn.clone(), e.ids.clone()?)))
        else {
            return;
        };
        let _ = ids.with_line(|line| conn.send_chunk(line, &Bytes::from_static(b"\n"), true));
    }

    /// The subscribers of `stream` (`None`: the broadcast stream), if any.
    fn stream(&self, stream: Option<&str>) -> Option<Arc<Subs>> {
        match stream {
            None => Some(Arc::clone(&self.all)),
            Some(name) => self.read().channels.get(name).cloned(),
        }
    }

    /// Queues a resuming connection's replay of `stream`, then goes live.
    pub fn finish_resume(&self, id: u64, stream: Option<&str>, replay: Replay) {
        let Some(conn) = self.read().conns.get(&id).map(|e| e.conn.clone()) else {
            return;
        };
        if let Some(subs) = self.stream(stream) {
            let tally = subs.finish_resume(id, &conn, stream, replay);
            self.counters.resumes.fetch_add(1, Ordering::Relaxed);
            self.record(tally);
        }
    }

    /// Forgets a closed connection.
    pub fn remove(&self, id: u64) {
        let mut state = self.write();
        if let Some(entry) = state.conns.remove(&id) {
            self.all.remove(id);
            if let Some(user) = &entry.info.user {
                forget_user(&mut state, user, id);
            }
            for channel in entry.channels {
                unsubscribe_from(&mut state, id, &channel);
            }
        }
    }

    /// Counts a message a browser sent.
    pub fn count_inbound(&self, bytes: usize) {
        self.counters.messages_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Embedded broker: numbers `payload` in `stream` (`None`: the broadcast stream), keeps
    /// it and queues it to the stream's subscribers. Answers now (how many it was queued
    /// to, and its position) when no fan-out of the stream was in progress; otherwise the
    /// push joined the stream's next pass ([`super::joining`]) and is answered once that
    /// pass has queued it. Either way it is numbered and queued after every push of the
    /// stream that came before it.
    pub fn publish(
        self: &Arc<Self>,
        stream: Option<&str>,
        payload: Payload,
        flush: Flush,
    ) -> Published {
        let Some(subs) = self.stream(stream) else {
            let at = self.number(stream, &payload);
            return Published::Now(self.push_done(Tally::default()), at);
        };
        let (answer, mut answered) = oneshot::channel();
        let Some(job) = subs.joining.join(JoinedPush {
            payload,
            flush,
            answer,
        }) else {
            self.counters.joined.fetch_add(1, Ordering::Relaxed);
            return Published::Later(answered);
        };
        self.pass(&subs, stream, vec![job]);
        if let Some(jobs) = subs.joining.next() {
            self.drain(subs, stream.map(Arc::from), jobs);
        }
        match answered.try_recv() {
            Ok((count, at)) => Published::Now(count, at),
            // Not reached (the pass answers every job it takes); awaiting it fails cleanly.
            Err(_) => Published::Later(answered),
        }
    }

    /// The leader of `subs`'s passes hands on the pushes that joined during its own: a task
    /// runs passes until none wait, yielding between them (the callers it answered push
    /// again meanwhile), so the leader's caller is answered now.
    fn drain(self: &Arc<Self>, subs: Arc<Subs>, stream: Option<Arc<str>>, jobs: Vec<JoinedPush>) {
        let hub = Arc::clone(self);
        let mut jobs = Some(jobs);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (a test calling in directly): the leader runs them itself.
            while let Some(now) = jobs {
                jobs = hub.pass_then_next(&subs, stream.as_deref(), now);
            }
            return;
        };
        runtime.spawn(async move {
            while let Some(now) = jobs {
                jobs = hub.pass_then_next(&subs, stream.as_deref(), now);
                tokio::task::yield_now().await;
            }
        });
    }

    /// A leader's pass, then the jobs that joined meanwhile (`None`: it leads no more).
    fn pass_then_next(
        &self,
        subs: &Subs,
        stream: Option<&str>,
        jobs: Vec<JoinedPush>,
    ) -> Option<Vec<JoinedPush>> {
        self.pass(subs, stream, jobs);
        subs.joining.next()
    }

    /// One pass over `subs`: numbers and queues `jobs` in order, every subscriber's queue
    /// touched once for all of them, and answers each. The writers take over idle browsers
    /// unless every push of the pass said more follow at once. It holds the stream's lead
    /// guard ([`super::joining::Joining::lead`]) throughout.
    fn pass(&self, subs: &Subs, stream: Option<&str>, jobs: Vec<JoinedPush>) {
        let _lead = subs.joining.lead();
        let burst = jobs.iter().all(|j| j.flush == Flush::Burst);
        let mut out = self.fan_out(if burst { Flush::Burst } else { Flush::Now });
        let (payloads, answers): (Vec<Payload>, Vec<_>) =
            jobs.into_iter().map(|j| (j.payload, j.answer)).unzip();
        let done = subs.fan_out_all(
            stream,
            &payloads,
            |p| Some(self.number(stream, p)),
            &mut out,
        );
        drop(out);
        for (answer, (tally, at)) in answers.into_iter().zip(done) {
            let count = self.push_done(tally);
            // A caller that left does not take its answer; its push went out all the same.
            let _ = answer.send((count, at.unwrap_or_else(|| Position::new("", 0))));
        }
    }

    /// Embedded broker: the next position of `stream`, `payload` kept there.
    fn number(&self, stream: Option<&str>, payload: &Payload) -> Position {
        let (retention, now) = (self.history.retention(), Instant::now());
        match stream {
            None => self.history.broadcast().append(payload, retention, now),
            Some(channel) => {
                let ring = self.history.channel(channel);
                let mut ring = ring.lock().unwrap_or_else(|e| e.into_inner());
                ring.append(payload, retention, now)
            }
        }
    }

    /// Broker mode: queues a message numbered by the broker to this node's
    /// subscribers of `stream` (`None`: everyone). Positioned subscribers get a
    /// gap notice first if messages of the stream were missed.
    pub fn deliver(
        &self,
        stream: Option<&str>,
        pos: &Position,
        payload: Payload,
        flush: Flush,
    ) -> usize {
        let mut out = self.fan_out(flush);
        let tally = match self.stream(stream) {
            Some(subs) => subs.fan_out(stream, || Some(pos.clone()), &payload, true, &mut out),
            None => Tally::default(),
        };
        self.push_done(tally)
    }

    /// Queues `payload` to `channel`'s subscribers outside its numbering (`skip_history`,
    /// either broker): not kept, no position (positioned subscribers get a header
    /// without one), so resumes neither replay it nor count it as missed. Returns how
    /// many it was queued to.
    pub fn publish_live(&self, channel: &str, payload: Payload, flush: Flush) -> usize {
        let mut out = self.fan_out(flush);
        let tally = match self.stream(Some(channel)) {
            Some(subs) => subs.fan_out(Some(channel), || None, &payload, false, &mut out),
            None => Tally::default(),
        };
        self.push_done(tally)
    }

    /// Queues `payload` to one connection; false if there is no such connection.
    pub fn send(&self, id: u64, payload: Payload, flush: Flush) -> bool {
        let Some(outlet) = self.read().conns.get(&id).map(Entry::outlet) else {
            return false;
        };
        self.send_to_outlets(&[outlet], &payload, flush);
        true
    }

    /// Queues `payload` to every connection of `user`; returns how many.
    pub fn send_user(&self, user: &str, payload: Payload, flush: Flush) -> usize {
        let outlets: Vec<Outlet> = {
            let state = self.read();
            let ids = state.users.get(user).into_iter().flatten();
            ids.filter_map(|id| state.conns.get(id).map(Entry::outlet))
                .collect()
        };
        self.send_to_outlets(&outlets, &payload, flush)
    }

    /// A push outside every stream (no position), each outlet in its format.
    fn send_to_outlets(&self, outlets: &[Outlet], payload: &Payload, flush: Flush) -> usize {
        let mut out = self.fan_out(flush);
        let mut encoded = Encoded::new(payload, None, None);
        let mut tally = Tally::default();
        for outlet in outlets {
            let frame = encoded.frame(outlet.format).clone();
            tally.send_to(&frame, std::iter::once(outlet), None, &mut out);
        }
        tally.encodes = encoded.encodes();
        self.push_done(tally)
    }

    fn fan_out(&self, flush: Flush) -> FanOut<'_> {
        match flush {
            Flush::Burst => self.writers.burst(),
            Flush::Now => self.writers.fan_out(),
        }
    }

    fn push_done(&self, tally: Tally) -> usize {
        self.counters.pushes.fetch_add(1, Ordering::Relaxed);
        self.record(tally);
        tally.queued as usize
    }

    fn record(&self, t: Tally) {
        let c = &self.counters;
        c.deliveries.fetch_add(t.queued, Ordering::Relaxed);
        c.delivered_bytes.fetch_add(t.bytes, Ordering::Relaxed);
        for (counter, n) in [
            (&c.overflows, t.full),
            (&c.to_closed, t.closed),
            (&c.gap_notices, t.gaps),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Subscribes a connection to a channel; false if there is no such connection.
    pub fn subscribe(&self, id: u64, channel: &str) -> bool {
        subscribe_locked(&mut self.write(), id, channel, false)
    }

    /// Unsubscribes a connection from a channel; false if it was not subscribed.
    pub fn unsubscribe(&self, id: u64, channel: &str) -> bool {
        let mut state = self.write();
        let Some(entry) = state.conns.get_mut(&id) else {
            return false;
        };
        if !entry.channels.remove(channel) {
            return false;
        }
        unsubscribe_from(&mut state, id, channel);
        true
    }

    /// Starts the close handshake of a connection; false if there is none.
    pub fn disconnect(&self, id: u64, code: u16, reason: &str) -> bool {
        match self.read().conns.get(&id) {
            Some(entry) => {
                entry.conn.close(code, reason);
                true
            }
            None => false,
        }
    }

    /// Closes every connection (graceful shutdown), returning how many.
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        let state = self.read();
        for entry in state.conns.values() {
            entry.conn.close(code, reason);
        }
        state.conns.len()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.read().conns.len()
    }

    /// A snapshot of every connection, ordered by id.
    pub fn connections(&self) -> Vec<ConnSnapshot> {
        let state = self.read();
        let mut list: Vec<ConnSnapshot> = state
            .conns
            .values()
            .map(|e| {
                let mut channels: Vec<String> = e.channels.iter().map(|c| c.to_string()).collect();
                channels.sort();
                ConnSnapshot {
                    info: e.info.clone(),
                    channels,
                    queued_bytes: e.conn.queued_bytes(),
                }
            })
            .collect();
        list.sort_by_key(|s| s.info.id);
        list
    }

    /// Every channel with its number of subscribers, ordered by name.
    pub fn channels(&self) -> Vec<(String, usize)> {
        let state = self.read();
        let mut list: Vec<(String, usize)> = state
            .channels
            .iter()
            .map(|(name, subs)| (name.to_string(), subs.count()))
            .collect();
        list.sort();
        list
    }

    /// Sum of bytes waiting in every connection's outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.read()
            .conns
            .values()
            .map(|e| e.conn.queued_bytes())
            .sum()
    }
}

/// What [`Hub::publish`] answers.
#[derive(Debug)]
pub enum Published {
    /// Queued: to how many connections, at which position.
    Now(usize, Position),
    /// Joined a pass in progress: answered the same once that pass has queued it (an error
    /// only if the node shut down first).
    Later(oneshot::Receiver<(usize, Position)>),
}

/// A stream a new connection resumes, from `since` (`None`: from where the stream is now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// `None` for the broadcast stream.
    pub stream: Option<String>,
    /// The resume point the connection gave.
    pub since: Option<Since>,
}

/// A connection as `connections()` reports it.
#[derive(Debug, Clone)]
pub struct ConnSnapshot {
    /// Identity and origin.
    pub info: ConnInfo,
    /// Subscribed channels, sorted.
    pub channels: Vec<String>,
    /// Bytes waiting in its outbound queue.
    pub queued_bytes: usize,
}

fn subscribe_locked(state: &mut State, id: u64, channel: &str, resuming: bool) -> bool {
    let Some(entry) = state.conns.get_mut(&id) else {
        return false;
    };
    let name: Arc<str> = match state.channels.get_key_value(channel) {
        Some((name, _)) => name.clone(),
        None => Arc::from(channel),
    };
    if !entry.channels.insert(name.clone()) {
        return true;
    }
    let outlet = entry.outlet();
    state
        .channels
        .entry(name)
        .or_default()
        .insert(outlet, resuming);
    true
}

fn forget_user(state: &mut State, user: &str, id: u64) {
    if let Some(ids) = state.users.get_mut(user) {
        ids.remove(&id);
        if ids.is_empty() {
            state.users.remove(user);
        }
    }
}

fn unsubscribe_from(state: &mut State, id: u64, channel: &str) {
    if let Some(subs) = state.channels.get_mut(channel) {
        subs.remove(id);
        if subs.is_empty() {
            state.channels.remove(channel);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ws_server::test_util::{detached, drain};
    use ws_server::{Message, OverflowPolicy};

    use super::*;

    fn browser(hub: &Hub, id: u64) -> Connection {
        let conn = detached(id, 1 << 20, OverflowPolicy::Close);
        let info = ConnInfo {
            id,
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            path: "/".into(),
            query: String::new(),
            opened: SystemTime::now(),
            user: None,
            transport: "websocket",
        };
        hub.add(
            conn.clone(),
            info,
            &ClientOptions::default(),
            Transport::WebSocket,
        );
        conn
    }

    fn text(s: &'static str) -> Payload {
        Payload::Text(Bytes::from_static(s.as_bytes()))
    }

    fn texts(conn: &Connection) -> Vec<String> {
        drain(conn)
            .into_iter()
            .map(|m| match m {
                Message::Text(b) => String::from_utf8(b.to_vec()).unwrap(),
                Message::Binary(b) => format!("binary {b:?}"),
            })
            .collect()
    }

    #[test]
    fn a_push_that_meets_a_pass_in_progress_is_answered_by_the_next_pass() {
        let hub = Arc::new(Hub::default());
        let (a, b) = (browser(&hub, 1), browser(&hub, 2));
        // A pass of the broadcast stream is in progress: this test leads it.
        let (answer, mut first) = oneshot::channel();
        let lead = JoinedPush {
            payload: text("0"),
            flush: Flush::Burst,
            answer,
        };
        let lead = hub.all.joining.join(lead).unwrap();
        let mut later = Vec::new();
        for payload in [text("1"), text("2")] {
            match hub.publish(None, payload, Flush::Burst) {
                Published::Later(answered) => later.push(answered),
                Published::Now(..) => panic!("a pass is in progress: the push must join it"),
            }
        }
        assert!(texts(&a).is_empty(), "joined, not queued yet");
        assert!(later[0].try_recv().is_err(), "not answered before its pass");
        hub.pass(&hub.all, None, vec![lead]);
        assert_eq!(first.try_recv().unwrap().1.seq, 1);
        let joined = hub.all.joining.next().unwrap();
        hub.pass(&hub.all, None, joined);
        assert!(
            hub.all.joining.next().is_none(),
            "the lead ends with none waiting"
        );
        let answers: Vec<(usize, u64)> = later
            .iter_mut()
            .map(|r| r.try_recv().map(|(n, at)| (n, at.seq)).unwrap())
            .collect();
        assert_eq!(answers, [(2, 2), (2, 3)]);
        for conn in [&a, &b] {
            assert_eq!(texts(conn), ["0", "1", "2"]);
        }
        assert_eq!(hub.counters().joined.load(Ordering::Relaxed), 2);
        // No pass in progress: the next push leads its own and is answered at once.
        match hub.publish(None, text("3"), Flush::Burst) {
            Published::Now(n, at) => assert_eq!((n, at.seq), (2, 4)),
            Published::Later(_) => panic!("nothing in progress: answered now"),
        }
    }
}
