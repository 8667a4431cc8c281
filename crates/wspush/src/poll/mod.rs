//! Long-polling on the public port: `GET /poll?channel=…&since=E:Q[…]&timeout=25` answers at
//! once with the messages after those positions, or waits up to `timeout` seconds for the
//! next one. Answers come from history, so with the Redis broker any node answers and no
//! sticky sessions are needed; the same JWT, channel permissions, Origin allowlist and
//! per-IP limits as the upgrade decide the request first.
//!
//! ```text
//! {"messages":[{"channel":null,"epoch":"E","seq":5,"data":"hello"},
//!              {"channel":"news","epoch":"F","seq":3,"binary":"AAE="}],
//!  "gaps":[{"channel":"news","epoch":"F","seq":1}],
//!  "next":"since=E:5&since=F:3:news"}
//! ```
//!
//! `next` is what to send back as the next poll's query (with the same channels). A stream
//! without `since` starts where it is now: the first poll waits for what comes next. A gap
//! says the stream continues after that position and what was before it is lost.

mod answer;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use tokio::sync::Notify;
use tokio::time::Instant;
use ws_server::{Connection, Request, StreamHead};

use crate::auth::{Gate, Refusal};
use crate::delivery::history::plan;
use crate::delivery::position::Position;
use crate::delivery::query::{ClientOptions, Since};
use crate::shared::Shared;

pub use answer::{Answer, Message};

/// The path of long polls.
pub const PATH: &str = "/poll";

/// How long a poll waits when it does not say (`timeout=`), and the most it may ask for.
const DEFAULT_WAIT: Duration = Duration::from_secs(25);
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Decides a poll request before anything is written: `Ok(None)` if it is not one.
pub fn decide(
    req: &Request,
    gate: &Gate,
) -> Result<Option<StreamHead>, Box<http::Response<Bytes>>> {
    if req.path() != PATH {
        return Ok(None);
    }
    let refuse = |status: http::StatusCode, why: &'static str| {
        let mut resp = http::Response::new(Bytes::from_static(why.as_bytes()));
        *resp.status_mut() = status;
        crate::sse::cors(req, resp.headers_mut());
        Box::new(resp)
    };
    gate.admit(req)
        .map_err(|why: Refusal| refuse(why.status(), why.reason()))?;
    if wait_of(req).is_none() {
        return Err(refuse(
            http::StatusCode::BAD_REQUEST,
            "timeout must be whole seconds, at most 60",
        ));
    }
    let mut head = StreamHead::default();
    let h = &mut head.headers;
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    crate::sse::cors(req, h);
    Ok(Some(head))
}

/// `timeout=` in seconds (default 25, at most 60); `None` if malformed or too long.
fn wait_of(req: &Request) -> Option<Duration> {
    let query = req.query().unwrap_or("");
    let given = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "timeout");
    match given {
        None => Some(DEFAULT_WAIT),
        Some((_, v)) => v
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .filter(|d| *d <= MAX_WAIT),
    }
}

/// Answers an admitted poll (registered in the hub with `wake`, so any push on its streams
/// wakes it): reads history until it has something or the wait is over, queues the answer
/// and ends the response.
pub async fn serve(
    shared: &Shared,
    conn: &Connection,
    req: &Request,
    opts: &ClientOptions,
    wake: Arc<Notify>,
) {
    let deadline = Instant::now() + wait_of(req).unwrap_or(DEFAULT_WAIT);
    let streams: Vec<Option<String>> = std::iter::once(None)
        .chain(opts.channels.iter().cloned().map(Some))
        .collect();
    let mut since: Vec<Option<Since>> = streams
        .iter()
        .map(|s| opts.since.iter().find(|g| &g.stream == s).cloned())
        .collect();
    let answer = loop {
        let mut answer = Answer::default();
        for (stream, since) in streams.iter().zip(since.iter_mut()) {
            let read = shared.read_history(stream.as_deref()).await;
            // No `since`: from where the stream is at the first read.
            let from = since
                .get_or_insert_with(|| Since {
                    stream: stream.clone(),
                    epoch: read.epoch.to_string(),
                    seq: read.last_seq,
                })
                .clone();
            let replay = plan(&from, read);
            let epoch = replay.last.epoch.clone();
            if let Some(gap) = replay.gap {
                answer.gaps.push((stream.clone(), gap));
            }
            for (seq, payload) in replay.entries {
                let pos = Position::new(epoch.clone(), seq);
                answer.messages.push(Message {
                    stream: stream.clone(),
                    pos,
                    payload,
                });
            }
            answer.next.push((stream.clone(), replay.last));
        }
        if !answer.is_empty() || Instant::now() >= deadline {
            break answer;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    };
    // Beyond the queue's limit like a replay: the answer is bounded by the history's.
    let _ = conn.send_chunk(Bytes::new(), &answer.encode(), true);
    conn.close(1000, "answered");
}
