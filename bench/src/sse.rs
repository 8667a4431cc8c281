//! One EventSource subscriber (`--transport sse`): `GET` the point's path with
//! `Accept: text/event-stream` over HTTP/1.1, then read the body through
//! [`sse_proto::Parser`]. Each event's `data` is the payload a WebSocket subscriber would get
//! in a frame, so deliveries, order, loss and latency are counted by the same code
//! ([`Batch`]) and the two transports' rows compare.
//!
//! Two framings, because the servers differ: wspush (hyper) sends the endless body chunked,
//! Nchan turns chunking off for EventSource and sends it until the connection closes.
//! Events named `gap` (wspush: history no longer reaches back) mark the subscriber as lossy;
//! how many messages it missed is counted from the sequence numbers, as on a WebSocket.
//!
//! Cheap per connection, like the WebSocket subscriber: one small task, the read buffer per
//! thread ([`read_some`]), the chunked decoder hands the parser slices of that buffer, and
//! each event is read in place there ([`Parser::feed`]): no copy of what a read holds whole.

use std::time::Duration;

use sse_proto::Parser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::chunked;
use crate::order::{Batch, Order, mark_bad};
use crate::subscriber::{SubError, SubSpec, read_some, tcp_connect};
use crate::tally::Tally;

/// Largest event the parser holds (the benchmark's payloads are at most a few KiB).
const EVENT_LIMIT: usize = 1 << 20;
/// Largest response head accepted.
const HEAD_LIMIT: usize = 16 * 1024;
/// The event type of a lost range (see the README's "Server-Sent Events and long-polling").
const GAP: &str = "gap";

/// How the response body is delimited.
#[derive(Debug, Clone)]
pub enum Framing {
    /// `Transfer-Encoding: chunked` (wspush).
    Chunked(chunked::Decoder),
    /// Neither chunked nor a length: the body runs until the server closes (Nchan).
    UntilClose,
}

/// The request that opens an event stream at `path`.
pub fn request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
         Cache-Control: no-cache\r\n\r\n"
    )
    .into_bytes()
}

/// Reads a response head from the start of `buf`: `Ok(None)` while incomplete, else its
/// length and the body's framing. Anything but a `200` is refused.
pub fn parse_head(buf: &[u8]) -> Result<Option<(usize, Framing)>, SubError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > HEAD_LIMIT => {
            return Err(SubError::Http(format!(
                "response head over {HEAD_LIMIT} bytes"
            )));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(SubError::Http(e.to_string())),
    };
    if response.code != Some(200) {
        return Err(SubError::Http(format!(
            "status {:?} {}",
            response.code,
            response.reason.unwrap_or("")
        )));
    }
    let mut framing = Framing::UntilClose;
    for h in response.headers.iter() {
        let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // RFC 9112 §6.1: chunked, when present, is the last coding.
            if value.rsplit(',').next().map(str::trim) == Some("chunked") {
                framing = Framing::Chunked(chunked::Decoder::new());
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            return Err(SubError::Http(format!(
                "a body of Content-Length {value}: not an endless event stream"
            )));
        }
    }
    Ok(Some((len, framing)))
}

/// Sends the request and reads the response head; returns the framing and the body bytes
/// read past the head.
pub async fn open<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    path: &str,
) -> Result<(Framing, Vec<u8>), SubError> {
    stream.write_all(&request(host, path)).await?;
    let mut buf = Vec::with_capacity(512);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(SubError::Closed(None));
        }
        if let Some((len, framing)) = parse_head(&buf)? {
            buf.drain(..len);
            return Ok((framing, buf));
        }
    }
}

/// Runs one EventSource subscriber until its stream ends (the runner aborts it).
pub(crate) async fn run(spec: &SubSpec, tally: &Tally) -> Result<(), SubError> {
    let (stream, framing, rest) = tokio::time::timeout(Duration::from_secs(60), async {
        let mut stream = tcp_connect(spec).await?;
        let (framing, rest) = open(&mut stream, &spec.host, &spec.path).await?;
        Ok::<_, SubError>((stream, framing, rest))
    })
    .await
    .map_err(|_| SubError::Timeout)??;
    tally.bump(&tally.connected);
    if spec.stalled {
        // Keep the socket open, never read; the runner aborts this task.
        std::future::pending::<()>().await;
    }
    let mut reader = Reader::new(framing, spec, tally);
    if !rest.is_empty() {
        reader.handle(&rest, crate::payload::now_ns(), spec, tally)?;
    }
    loop {
        read_some(&stream, |input, now| reader.handle(input, now, spec, tally)).await?;
    }
}

/// One stream's decoding state: framing, event parser, sequence checks.
pub struct Reader {
    framing: Framing,
    parser: Parser,
    order: Order,
}

impl Reader {
    /// A reader at the start of the body.
    pub fn new(framing: Framing, spec: &SubSpec, tally: &Tally) -> Self {
        Reader {
            framing,
            parser: Parser::new(EVENT_LIMIT),
            order: Order::new(spec, tally),
        }
    }

    /// Reads body bytes that arrived at `now`; counts the messages of the events they
    /// complete. `Err(Closed)` once a chunked body has ended.
    pub fn handle(
        &mut self,
        input: &[u8],
        now: u64,
        spec: &SubSpec,
        tally: &Tally,
    ) -> Result<(), SubError> {
        let mut batch = Batch::default();
        let result = self.feed(input, now, spec, tally, &mut batch);
        batch.flush(tally);
        result
    }

    fn feed(
        &mut self,
        input: &[u8],
        now: u64,
        spec: &SubSpec,
        tally: &Tally,
        batch: &mut Batch,
    ) -> Result<(), SubError> {
        let (parser, order) = (&mut self.parser, &mut self.order);
        let mut counted = Ok(());
        let mut on_event = |event: sse_proto::EventRef<'_>| {
            if counted.is_err() {
                return;
            }
            if event.event == GAP {
                mark_bad(tally, order);
            } else {
                counted = batch.message(event.data.as_bytes(), now, spec, tally, order);
            }
        };
        let ended = match &mut self.framing {
            Framing::Chunked(decoder) => {
                let mut parsed = Ok(());
                decoder.decode(input, |body| {
                    if parsed.is_ok() {
                        parsed = parser.feed(body, &mut on_event);
                    }
                })?;
                parsed?;
                decoder.is_done()
            }
            Framing::UntilClose => {
                parser.feed(input, &mut on_event)?;
                false
            }
        };
        counted?;
        if ended {
            return Err(SubError::Closed(None));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::payload;
    use crate::scenario::Transport;

    fn spec(expected: &[u64]) -> SubSpec {
        SubSpec::for_test(expected, Transport::Sse)
    }

    fn event(id: &str, name: Option<&str>, seq: u64) -> Vec<u8> {
        let mut data = Vec::new();
        payload::encode(seq, 0, 0, 64, &mut data);
        let name = name.map(|n| format!("event: {n}\n")).unwrap_or_default();
        let data = String::from_utf8(data).unwrap();
        format!("{name}id: {id}\ndata: {data}\n\n").into_bytes()
    }

    fn chunk(body: &[u8]) -> Vec<u8> {
        [format!("{:x}\r\n", body.len()).as_bytes(), body, b"\r\n"].concat()
    }

    #[test]
    fn heads_of_wspush_and_nchan() {
        let wspush = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                       transfer-encoding: chunked\r\n\r\n5\r\n";
        let (len, framing) = parse_head(wspush).unwrap().unwrap();
        assert_eq!(len, wspush.len() - 3);
        assert!(matches!(framing, Framing::Chunked(_)));
        let nchan = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
                      Connection: close\r\n\r\n: hi\n\n";
        let (_, framing) = parse_head(nchan).unwrap().unwrap();
        assert!(matches!(framing, Framing::UntilClose));
        assert!(parse_head(&nchan[..20]).unwrap().is_none());
        let refused = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n";
        assert!(matches!(parse_head(refused), Err(SubError::Http(_))));
        let sized = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
        assert!(matches!(parse_head(sized), Err(SubError::Http(_))));
    }

    /// wspush's stream: an id-only opening block, a retry, a comment, channel events, chunked
    /// and split at every position; then the last chunk ends it.
    #[test]
    fn chunked_events_split_anywhere() {
        let body = [
            b"retry: 2000\nid: since=E:0:news\n\n".to_vec(),
            b": ping\n\n".to_vec(),
            b"data: w warmup\n\n".to_vec(),
            event("since=E:1:news", Some("news"), 0),
            event("since=E:2:news", Some("news"), 1),
        ]
        .concat();
        let mut wire: Vec<u8> = body.chunks(7).flat_map(chunk).collect();
        wire.extend_from_slice(b"0\r\n\r\n");
        for cut in 0..wire.len() {
            let (s, tally) = (spec(&[2]), Tally::new(1));
            let mut r = Reader::new(Framing::Chunked(chunked::Decoder::new()), &s, &tally);
            r.handle(&wire[..cut], 0, &s, &tally).unwrap();
            let end = r.handle(&wire[cut..], 10, &s, &tally);
            assert!(matches!(end, Err(SubError::Closed(None))), "cut {cut}");
            assert_eq!(tally.delivered.sum(), 2, "cut {cut}");
            assert_eq!(Tally::get(&tally.ready), 1);
            assert_eq!(Tally::get(&tally.done), 1);
            assert_eq!(Tally::get(&tally.bad_clients), 0);
        }
    }

    /// Nchan's stream: `: hi`, then `id:` and `data:` lines until the connection closes; a
    /// skipped sequence number is loss, a `gap` event marks the subscriber lossy.
    #[test]
    fn nchan_events_loss_and_gap() {
        use std::sync::atomic::Ordering::Relaxed;
        let (s, tally) = (spec(&[3]), Tally::new(1));
        let mut r = Reader::new(Framing::UntilClose, &s, &tally);
        let wire = [
            b": hi\n\n".to_vec(),
            event("1700000000:0", None, 0),
            event("1700000001:0", None, 2),
        ]
        .concat();
        r.handle(&wire, 0, &s, &tally).unwrap();
        assert_eq!((tally.delivered.sum(), tally.lost.load(Relaxed)), (2, 1));
        assert_eq!(Tally::get(&tally.done), 1);
        let (s, tally) = (spec(&[3]), Tally::new(1));
        let mut r = Reader::new(Framing::UntilClose, &s, &tally);
        let gap = b"event: gap\ndata: {\"channel\":null,\"epoch\":\"E\",\"seq\":4}\n\n";
        r.handle(gap, 0, &s, &tally).unwrap();
        assert_eq!(Tally::get(&tally.bad_clients), 1);
        assert_eq!(tally.delivered.sum(), 0);
    }
}
