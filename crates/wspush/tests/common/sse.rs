//! An event-stream client as EventSource reads one: a real HTTP/1.1 client (hyper), the
//! body through the sans-IO SSE parser, events waited for with a timeout.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sse_proto::{Event, Parser};
use tokio::time::timeout;

use super::WAIT;

/// One open event stream.
pub struct Sse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    body: Incoming,
    parser: Parser,
    /// The body of a refused request (its status is not 200).
    pub refusal: String,
}

impl Sse {
    /// GETs `path_and_query` on `addr` with `headers` and reads the response head.
    pub async fn open(addr: SocketAddr, path_and_query: &str, headers: &[(&str, &str)]) -> Sse {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = http::Request::get(path_and_query)
            .header("host", "127.0.0.1")
            .header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = timeout(
            WAIT,
            sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()),
        )
        .await
        .expect("no response head in time")
        .unwrap();
        let (parts, body) = resp.into_parts();
        let mut sse = Sse {
            status: parts.status,
            headers: parts.headers,
            body,
            parser: Parser::new(1 << 24),
            refusal: String::new(),
        };
        if sse.status != http::StatusCode::OK {
            let bytes = timeout(WAIT, (&mut sse.body).collect())
                .await
                .unwrap()
                .unwrap();
            sse.refusal = String::from_utf8_lossy(&bytes.to_bytes()).into_owned();
        }
        sse
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.parser.poll_event() {
                return Some(event);
            }
            let frame = timeout(WAIT, self.body.frame())
                .await
                .expect("no event in time");
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.parser.handle_input(&data).unwrap();
                    }
                }
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next event, which must exist.
    pub async fn event(&mut self) -> Event {
        self.next().await.expect("the stream ended")
    }

    /// The id EventSource would send back as `Last-Event-ID`.
    pub fn last_event_id(&self) -> String {
        self.parser.last_event_id().to_owned()
    }

    /// The reconnection delay the stream asked for.
    pub fn retry(&self) -> Option<u64> {
        self.parser.retry()
    }
}
