//! The publisher: one TCP connection carrying pipelined publish requests, in
//! sequence order, to wspush (MessagePack-RPC `push_data` / `publish`) or to
//! an HTTP POST endpoint (Nchan).
//!
//! One connection, requests written in order and replies read in order: the
//! server sees sequence numbers in order, so any reorder a subscriber sees is
//! the server's. Three brakes decide when the next message goes:
//! - `window`: replies outstanding (calls in flight);
//! - `rate`: a fixed schedule, when pacing;
//! - `lag`: at most this many messages ahead of what the subscribers have
//!   received in total, so "max rate" is the rate the subscribers actually
//!   sustain rather than a queue growing inside the server until its overflow
//!   policy cuts healthy clients off.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use msgpack_rpc::{Decoder, Message, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::payload;
use crate::tally::Tally;

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
}

/// Encodes requests and decodes replies of one protocol.
enum Wire {
    Rpc { next_id: u32, decoder: Decoder },
    Http { host: String, path: String },
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Channels, used round robin (`None`: broadcast with `push_data`).
    pub channels: Vec<Option<String>>,
    /// Total messages.
    pub messages: u64,
    /// Payload bytes.
    pub size: usize,
    /// Messages per second; `None`: as fast as the brakes allow.
    pub rate: Option<f64>,
    /// Calls in flight.
    pub window: usize,
}

/// End-to-end brake: subscribers' progress.
pub struct Flow<'a> {
    /// Where subscribers count deliveries.
    pub tally: &'a Tally,
    /// Well-behaved subscribers per channel (same order as `Plan::channels`).
    pub per_channel: Vec<u64>,
    /// Messages the publisher may run ahead of the subscribers.
    pub lag: u64,
}

/// Messages channel `ch` of `n_ch` carries when `messages` go round robin.
pub fn messages_on_channel(messages: u64, ch: usize, n_ch: usize) -> u64 {
    let n = n_ch.max(1) as u64;
    messages / n + u64::from((ch as u64) < messages % n)
}

impl Flow<'_> {
    /// Deliveries expected once messages `0..n` have all arrived.
    fn expected_after(&self, n: u64) -> u64 {
        let c = self.per_channel.len().max(1);
        self.per_channel
            .iter()
            .enumerate()
            .map(|(ch, subs)| messages_on_channel(n, ch, c) * subs)
            .sum()
    }

    fn may_send(&self, i: u64) -> bool {
        i < self.lag || self.tally.delivered.sum() >= self.expected_after(i - self.lag + 1)
    }
}

/// A connected publisher.
pub struct Publisher {
    stream: TcpStream,
    wire: Wire,
    out: BytesMut,
    input: BytesMut,
    payload: Vec<u8>,
}

impl Publisher {
    /// Connects to `target`.
    pub async fn connect(target: &Target) -> Result<Publisher, PublishError> {
        let (addr, wire) = match target {
            Target::Rpc(addr) => (
                *addr,
                Wire::Rpc {
                    next_id: 0,
                    decoder: Decoder::new(1 << 20),
                },
            ),
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
            out: BytesMut::with_capacity(64 * 1024),
            input: BytesMut::with_capacity(64 * 1024),
            payload: Vec::new(),
        })
    }

    /// Publishes one warm-up message to each channel and waits for the replies.
    pub async fn warmup(&mut self, channels: &[Option<String>]) -> Result<(), PublishError> {
        for channel in channels {
            self.payload.clear();
            payload::encode_warmup(&mut self.payload);
            self.wire
                .encode(channel.as_deref(), &self.payload, &mut self.out);
        }
        self.flush().await?;
        for _ in channels {
            self.read_reply().await?;
        }
        Ok(())
    }

    /// Publishes the plan; returns when every reply has come.
    pub async fn run(&mut self, plan: &Plan, flow: Option<&Flow<'_>>) -> Result<(), PublishError> {
        let start = Instant::now();
        let due = |i: u64| {
            plan.rate
                .map(|r| start + Duration::from_secs_f64(i as f64 / r))
        };
        let channels = plan.channels.len().max(1) as u64;
        let (mut sent, mut in_flight) = (0u64, 0usize);
        loop {
            let mut blocked_by_flow = false;
            while sent < plan.messages && in_flight < plan.window.max(1) {
                if due(sent).is_some_and(|t| Instant::now() < t) {
                    break;
                }
                if flow.is_some_and(|f| !f.may_send(sent)) {
                    blocked_by_flow = true;
                    break;
                }
                let ch = plan
                    .channels
                    .get((sent % channels) as usize)
                    .cloned()
                    .flatten();
                self.payload.clear();
                payload::encode(
                    sent / channels,
                    payload::now_ns(),
                    plan.size,
                    &mut self.payload,
                );
                self.wire
                    .encode(ch.as_deref(), &self.payload, &mut self.out);
                sent += 1;
                in_flight += 1;
            }
            self.flush().await?;
            if sent == plan.messages && in_flight == 0 {
                return Ok(());
            }
            let can_send = sent < plan.messages && in_flight < plan.window.max(1);
            let next_due = due(sent).filter(|_| can_send && !blocked_by_flow);
            let flow_wait = flow
                .filter(|_| can_send && blocked_by_flow)
                .map(|f| (f, sent));
            tokio::select! {
                n = self.stream.read_buf(&mut self.input) => {
                    if n? == 0 {
                        return Err(PublishError::Closed);
                    }
                    while self.wire.decode(&mut self.input)?.is_some() {
                        in_flight = in_flight.saturating_sub(1);
                    }
                }
                () = sleep_until_opt(next_due) => {}
                () = wait_flow(flow_wait) => {}
            }
        }
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
async fn wait_flow(flow: Option<(&Flow<'_>, u64)>) {
    let Some((f, i)) = flow else {
        return std::future::pending().await;
    };
    let woken = f.tally.delivered_changed();
    tokio::pin!(woken);
    woken.as_mut().enable();
    if f.may_send(i) {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_millis(2), woken).await;
}

impl Wire {
    fn encode(&mut self, channel: Option<&str>, payload: &[u8], out: &mut BytesMut) {
        match self {
            Wire::Rpc { next_id, .. } => {
                // A str, so wspush sends a text frame holding exactly these bytes.
                let data = Value::from(String::from_utf8_lossy(payload).into_owned());
                let id = *next_id;
                *next_id = id.wrapping_add(1);
                match channel {
                    None => msgpack_rpc::encode_request(id, b"push_data", &[data], out),
                    Some(c) => {
                        msgpack_rpc::encode_request(id, b"publish", &[Value::from(c), data], out)
                    }
                }
            }
            Wire::Http { host, path } => {
                let path = path.replace("{channel}", channel.unwrap_or("all"));
                out.extend_from_slice(
                    format!(
                        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                        payload.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(payload);
            }
        }
    }

    /// Consumes one reply from the front of `buf`; `Ok(None)`: need more bytes.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<()>, PublishError> {
        match self {
            Wire::Rpc { decoder, .. } => match decoder.decode(buf)? {
                None => Ok(None),
                Some(Message::Response { error, .. }) if error.is_nil() => Ok(Some(())),
                Some(Message::Response { error, .. }) => {
                    Err(PublishError::Refused(error.to_string()))
                }
                Some(_) => Err(PublishError::Refused("a request instead of a reply".into())),
            },
            Wire::Http { .. } => decode_http(buf),
        }
    }
}

fn decode_http(buf: &mut BytesMut) -> Result<Option<()>, PublishError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(PublishError::Http(e.to_string())),
    };
    let mut body_len = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(PublishError::Http(
                "chunked replies are not supported".into(),
            ));
        }
    }
    let body_len =
        body_len.ok_or_else(|| PublishError::Http("reply without Content-Length".into()))?;
    if buf.len() < head + body_len {
        return Ok(None);
    }
    let code = resp.code.unwrap_or(0);
    if !(200..300).contains(&code) {
        let body = String::from_utf8_lossy(&buf[head..head + body_len]).into_owned();
        return Err(PublishError::Refused(format!("HTTP {code}: {body}")));
    }
    buf.advance(head + body_len);
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_replies_one_at_a_time() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\nHTTP/1.1 4"[..],
        );
        assert!(decode_http(&mut buf).unwrap().is_some());
        assert!(decode_http(&mut buf).unwrap().is_some());
        assert!(decode_http(&mut buf).unwrap().is_none());
        let mut bad = BytesMut::from(&b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"[..]);
        assert!(
            matches!(decode_http(&mut bad), Err(PublishError::Refused(m)) if m.contains("403"))
        );
    }

    #[test]
    fn flow_counts_expected_deliveries_per_channel() {
        let tally = Tally::new(0);
        let flow = Flow {
            tally: &tally,
            per_channel: vec![3, 2],
            lag: 2,
        };
        // Messages alternate channels 0,1,0,1,...
        assert_eq!(flow.expected_after(0), 0);
        assert_eq!(flow.expected_after(1), 3);
        assert_eq!(flow.expected_after(2), 5);
        assert_eq!(flow.expected_after(3), 8);
        assert!(flow.may_send(1));
        assert!(!flow.may_send(2), "message 0 not yet delivered");
        tally.add_delivered(3);
        assert!(flow.may_send(2));
        assert!(!flow.may_send(3));
    }
}
