//! One WebSocket subscriber: connect from a chosen source address, upgrade,
//! then read server frames and check every benchmark message's order (per
//! publisher connection: across publishers no order is defined) and latency.
//!
//! A subscriber must cost the load generator almost nothing, because tens of
//! thousands run on the same 2 cores as the server under test:
//! - one small task each, no per-connection state machine: frames are parsed
//!   in place with `ws_proto::frame::FrameHeader::parse` (server frames are
//!   unmasked, and we never offer permessage-deflate, so payloads are read
//!   as they lie in the buffer);
//! - the read buffer is per *thread*, not per connection: an idle
//!   subscriber holds no buffer, only the bytes of a frame split across reads;
//! - the clock is read once per read call, not once per message (frames that
//!   arrive in one read arrived at the same time).

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use ws_proto::frame::{FrameHeader, OpCode, apply_mask};
use ws_proto::handshake::ClientAccepted;

use crate::order::{Batch, Order};
use crate::payload;
use crate::scenario::Transport;
use crate::tally::Tally;

/// How to reach the server and what to expect from it.
#[derive(Debug, Clone)]
pub struct SubSpec {
    /// Index of this subscriber in the point (for its progress slot).
    pub index: usize,
    /// The server's WebSocket address.
    pub addr: SocketAddr,
    /// Local address to bind before connecting (spreads ephemeral ports).
    pub source: IpAddr,
    /// `Host` header value.
    pub host: String,
    /// Request path with query.
    pub path: String,
    /// Data messages each publisher sends on its channel: sequence numbers
    /// `0..expected[p]` from publisher `p`.
    pub expected: Vec<u64>,
    /// Never read after the upgrade (scenario g).
    pub stalled: bool,
    /// A browser-like client of scenario e (Chrome's offer, a first message, TLS): it
    /// holds its socket after the upgrade instead of reading benchmark messages.
    pub shaped: Option<crate::browser::Shaped>,
    /// WebSocket, or an EventSource stream ([`crate::sse`]) on the same path.
    pub transport: Transport,
}

#[cfg(test)]
impl SubSpec {
    /// Subscriber 0 of a point expecting `expected[p]` messages from publisher `p`.
    pub(crate) fn for_test(expected: &[u64], transport: Transport) -> SubSpec {
        SubSpec {
            index: 0,
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            source: IpAddr::from([127, 0, 0, 1]),
            host: "h".into(),
            path: "/".into(),
            expected: expected.to_vec(),
            stalled: false,
            shaped: None,
            transport,
        }
    }
}

/// Why a subscriber stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubError {
    /// Connecting or the upgrade failed.
    #[error("connect {addr} from {source_ip}: {err}")]
    Connect {
        /// Server address.
        addr: SocketAddr,
        /// Source address.
        source_ip: IpAddr,
        /// The I/O error.
        err: std::io::Error,
    },
    /// The server refused the upgrade or answered nonsense.
    #[error("handshake: {0}")]
    Handshake(#[from] ws_proto::HandshakeError),
    /// Socket error after the upgrade.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection (close frame code or EOF).
    #[error("closed by server (code {0:?})")]
    Closed(Option<u16>),
    /// A frame we cannot accept from a server.
    #[error("bad frame: {0}")]
    Frame(String),
    /// The upgrade took too long.
    #[error("handshake timed out")]
    Timeout,
    /// An EventSource stream's response was refused or malformed.
    #[error("event stream: {0}")]
    Http(String),
    /// Its chunked body was malformed.
    #[error("event stream body: {0}")]
    Chunked(#[from] crate::chunked::ChunkedError),
    /// Its events were malformed.
    #[error("event stream: {0}")]
    Sse(#[from] sse_proto::Error),
}

/// Bytes read in one call; shared by every subscriber on a thread.
const READ_BUF: usize = 64 * 1024;
/// Receive buffer of stalled subscribers: small, so their server queue fills fast.
const STALLED_RCVBUF: u32 = 4096;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// Runs a subscriber until its connection ends or the task is aborted.
pub async fn run(spec: SubSpec, tally: Arc<Tally>) {
    let result = async {
        if let Some(shaped) = spec.shaped.clone() {
            return run_shaped(&spec, &shaped, &tally).await;
        }
        if spec.transport == Transport::Sse {
            return crate::sse::run(&spec, &tally).await;
        }
        let (stream, rest) = tokio::time::timeout(Duration::from_secs(60), connect(&spec))
            .await
            .map_err(|_| SubError::Timeout)??;
        tally.bump(&tally.connected);
        if spec.stalled {
            // Keep the socket open, never read; the runner aborts this task.
            std::future::pending::<()>().await;
        }
        read_loop(stream, rest, &spec, &tally).await
    }
    .await;
    if let Err(e) = result {
        // A stalled subscriber being closed is the policy at work, not a failure.
        if !spec.stalled {
            tally.fail(e.to_string());
        }
    }
}

async fn connect(spec: &SubSpec) -> Result<(TcpStream, Vec<u8>), SubError> {
    let mut stream = tcp_connect(spec).await?;
    let (rest, _) = upgrade(&mut stream, spec, &[]).await?;
    Ok((stream, rest))
}

/// A browser-like client: TLS if asked, the upgrade with its offer, then
/// [`crate::browser::hold`].
async fn run_shaped(
    spec: &SubSpec,
    shaped: &crate::browser::Shaped,
    tally: &Tally,
) -> Result<(), SubError> {
    let shape = shaped.shape;
    let extra = if shape.chrome_offer {
        vec![(
            "Sec-WebSocket-Extensions".to_owned(),
            crate::browser::CHROME_OFFER.to_owned(),
        )]
    } else {
        Vec::new()
    };
    let (io, rest, deflate) = tokio::time::timeout(Duration::from_secs(60), async {
        let tcp = tcp_connect(spec).await?;
        let mut io = crate::browser::wrap(tcp, shaped, spec.addr).await?;
        let (rest, accepted) = upgrade(&mut io, spec, &extra).await?;
        Ok::<_, SubError>((io, rest, accepted.deflate))
    })
    .await
    .map_err(|_| SubError::Timeout)??;
    if spec.index == 0 {
        eprintln!("client 0 ({}): deflate agreed {deflate:?}", shape.tag());
    }
    crate::browser::hold(io, rest, spec.index, shape, deflate, || {
        tally.bump(&tally.connected)
    })
    .await
}

pub(crate) async fn tcp_connect(spec: &SubSpec) -> Result<TcpStream, SubError> {
    let connect_err = |err| SubError::Connect {
        addr: spec.addr,
        source_ip: spec.source,
        err,
    };
    let socket = if spec.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(connect_err)?;
    if spec.stalled {
        socket
            .set_recv_buffer_size(STALLED_RCVBUF)
            .map_err(connect_err)?;
    }
    socket
        .bind(SocketAddr::new(spec.source, 0))
        .map_err(connect_err)?;
    let stream = socket.connect(spec.addr).await.map_err(connect_err)?;
    stream.set_nodelay(true).map_err(connect_err)?;
    Ok(stream)
}

/// The opening handshake on `stream`; returns the bytes read past the response and what the
/// server agreed.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    spec: &SubSpec,
    extra: &[(String, String)],
) -> Result<(Vec<u8>, ClientAccepted), SubError> {
    let key = ws_proto::handshake::generate_key((spec.index as u128).to_le_bytes());
    let request = ws_proto::handshake::client_request(&spec.host, &spec.path, &key, extra);
    stream.write_all(&request).await?;
    let mut buf = Vec::with_capacity(512);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(SubError::Closed(None));
        }
        if let Some((len, accepted)) = ws_proto::handshake::parse_response(&buf, &key)? {
            buf.drain(..len);
            return Ok((buf, accepted));
        }
    }
}

async fn read_loop(
    mut stream: TcpStream,
    mut pending: Vec<u8>,
    spec: &SubSpec,
    tally: &Tally,
) -> Result<(), SubError> {
    let mut order = Order::new(spec, tally);
    let mut pongs = Vec::new();
    if !pending.is_empty() {
        let now = payload::now_ns();
        let used = handle_frames(&pending, now, spec, tally, &mut order, &mut pongs)?;
        pending.drain(..used);
    }
    loop {
        if !pongs.is_empty() {
            stream.write_all(&pongs).await?;
            pongs.clear();
        }
        let step = read_some(&stream, |input, now| {
            if pending.is_empty() {
                let used = handle_frames(input, now, spec, tally, &mut order, &mut pongs)?;
                pending.extend_from_slice(&input[used..]);
            } else {
                pending.extend_from_slice(input);
                let used = handle_frames(&pending, now, spec, tally, &mut order, &mut pongs)?;
                pending.drain(..used);
            }
            Ok(())
        })
        .await?;
        if !step {
            continue;
        }
        if pending.capacity() > READ_BUF && pending.len() < 1024 {
            // A large frame went through; do not keep its buffer while idle.
            pending.shrink_to(1024);
        }
    }
}

/// Waits until `stream` is readable and hands what one read returns, with the time it came,
/// to `handle`, in the thread's shared buffer. `Ok(false)`: the readiness was spurious.
pub(crate) async fn read_some(
    stream: &TcpStream,
    handle: impl FnOnce(&[u8], u64) -> Result<(), SubError>,
) -> Result<bool, SubError> {
    stream.readable().await?;
    BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let n = match stream.try_read(&mut buf[..]) {
            Ok(0) => return Err(SubError::Closed(None)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        handle(&buf[..n], payload::now_ns())?;
        Ok(true)
    })
}

/// Handles every complete frame at the start of `buf`; returns the bytes used.
fn handle_frames(
    buf: &[u8],
    now: u64,
    spec: &SubSpec,
    tally: &Tally,
    order: &mut Order,
    pongs: &mut Vec<u8>,
) -> Result<usize, SubError> {
    let mut batch = Batch::default();
    let mut scan = || -> Result<usize, SubError> {
        let mut at = 0;
        while let Some((header, hlen)) =
            FrameHeader::parse(&buf[at..]).map_err(|e| SubError::Frame(e.to_string()))?
        {
            let len = usize::try_from(header.payload_len)
                .map_err(|_| SubError::Frame("frame larger than memory".into()))?;
            let Some(body) = buf.get(at + hlen..at + hlen + len) else {
                break;
            };
            at += hlen + len;
            if header.mask.is_some() || header.rsv1 {
                return Err(SubError::Frame("masked or compressed server frame".into()));
            }
            match header.opcode {
                OpCode::Text | OpCode::Binary => batch.message(body, now, spec, tally, order)?,
                // Messages are never fragmented by the servers we test; a
                // continuation carries no header of ours.
                OpCode::Continuation | OpCode::Pong => {}
                OpCode::Ping => queue_pong(body, spec.index as u32, pongs),
                OpCode::Close => {
                    let code = body.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    return Err(SubError::Closed(code));
                }
            }
        }
        Ok(at)
    };
    let result = scan();
    batch.flush(tally);
    result
}

/// RFC 6455 §5.5.3: a pong echoes the ping's payload; §5.3: clients mask.
fn queue_pong(body: &[u8], key_seed: u32, out: &mut Vec<u8>) {
    let key = key_seed.wrapping_mul(0x9E37_79B9).to_le_bytes();
    let header = FrameHeader {
        fin: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Pong,
        mask: Some(key),
        payload_len: body.len() as u64,
    };
    header.encode(out);
    let start = out.len();
    out.extend_from_slice(body);
    apply_mask(&mut out[start..], key, 0);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(expected: &[u64]) -> SubSpec {
        SubSpec::for_test(expected, Transport::Ws)
    }

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        if payload.len() < 126 {
            f.push(payload.len() as u8);
        } else {
            f.push(126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    fn data(seq: u64, size: usize) -> Vec<u8> {
        from(0, seq, size)
    }

    fn from(publisher: u32, seq: u64, size: usize) -> Vec<u8> {
        let mut p = Vec::new();
        payload::encode(seq, 0, publisher, size, &mut p);
        frame(1, &p)
    }

    #[test]
    fn counts_order_loss_and_partial_frames() {
        let tally = Tally::new(1);
        let s = spec(&[4]);
        let mut order = Order::new(&s, &tally);
        let mut pongs = Vec::new();
        let mut bytes = [data(0, 64), data(2, 300), data(1, 64), data(3, 64)].concat();
        bytes.extend_from_slice(&data(4, 64)[..5]);
        let used = handle_frames(&bytes, 10, &s, &tally, &mut order, &mut pongs).unwrap();
        assert_eq!(
            used,
            bytes.len() - 5,
            "the split frame waits for more bytes"
        );
        assert_eq!(tally.delivered.sum(), 4);
        assert_eq!(tally.lost.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(
            tally
                .out_of_order
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(Tally::get(&tally.bad_clients), 1);
        assert_eq!(Tally::get(&tally.done), 1);
        assert_eq!(tally.progress(0), 4);
        assert_eq!(tally.latency.snapshot().count(), 4);
    }

    #[test]
    fn warmup_ping_and_close() {
        let tally = Tally::new(1);
        let mut order = Order::new(&spec(&[1]), &tally);
        let mut pongs = Vec::new();
        let bytes = [frame(1, b"w x"), frame(1, b"w x"), frame(9, b"hi")].concat();
        handle_frames(&bytes, 0, &spec(&[1]), &tally, &mut order, &mut pongs).unwrap();
        assert_eq!(Tally::get(&tally.ready), 1, "counted once");
        let (h, hlen) = FrameHeader::parse(&pongs).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Pong);
        let mut body = pongs[hlen..].to_vec();
        apply_mask(&mut body, h.mask.unwrap(), 0);
        assert_eq!(body, b"hi");
        let close = frame(8, &1008u16.to_be_bytes());
        let err = handle_frames(&close, 0, &spec(&[1]), &tally, &mut order, &mut pongs);
        assert!(matches!(err, Err(SubError::Closed(Some(1008)))));
    }

    /// Two publishers interleave freely; each one's own order is checked.
    #[test]
    fn order_is_per_publisher() {
        use std::sync::atomic::Ordering::Relaxed;
        let tally = Tally::new(1);
        let s = spec(&[3, 2]);
        let mut order = Order::new(&s, &tally);
        let mut pongs = Vec::new();
        let bytes = [
            from(1, 0, 64),
            from(0, 0, 64),
            from(1, 1, 64),
            from(0, 1, 64),
            from(0, 2, 64),
        ]
        .concat();
        handle_frames(&bytes, 0, &s, &tally, &mut order, &mut pongs).unwrap();
        assert_eq!(
            tally.lost.load(Relaxed) + tally.out_of_order.load(Relaxed),
            0
        );
        assert_eq!(Tally::get(&tally.done), 1, "both publishers finished");
        assert_eq!(tally.progress(0), 5);

        let tally = Tally::new(1);
        let mut order = Order::new(&s, &tally);
        let bytes = [from(1, 1, 64), from(0, 0, 64), from(1, 0, 64)].concat();
        handle_frames(&bytes, 0, &s, &tally, &mut order, &mut pongs).unwrap();
        assert_eq!(tally.lost.load(Relaxed), 1, "publisher 1 skipped 0");
        assert_eq!(tally.out_of_order.load(Relaxed), 1, "then sent it late");
        assert_eq!(Tally::get(&tally.done), 0, "publisher 0 has more to send");
        let stray = from(2, 0, 64);
        let err = handle_frames(&stray, 0, &s, &tally, &mut order, &mut pongs);
        assert!(matches!(err, Err(SubError::Frame(_))));
    }
}
