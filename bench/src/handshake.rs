//! Time to `101 Switching Protocols` for new connections made while a point publishes
//! (scenario d at 10k): a fan-out that held a lock the upgrade needs would show here.
//!
//! Each newcomer connects, sends its upgrade request for the point's own path (so the
//! server subscribes it to the stream being fanned out), and is timed from the start of
//! `connect` until the whole `101` response head is in (with `--transport sse`, the `200`
//! head of its event stream); then it closes. Newcomers are made
//! one after another, spread evenly over the expected publishing time, so they land at
//! every phase of the paced pushes rather than only between them.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

use crate::report::PointResult;
use crate::scenario::Transport;

/// Longest wait for one newcomer's upgrade before it counts as failed.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the newcomers of one point saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Upgrades {
    /// Newcomers that got their `101`.
    pub count: usize,
    /// Newcomers refused, timed out or closed before the `101`.
    pub failed: usize,
    /// Median time to the `101`, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Makes `n` newcomers to `path` on `addr`, spread over `over`.
pub async fn newcomers(
    addr: SocketAddr,
    path: String,
    transport: Transport,
    n: usize,
    over: Duration,
) -> Upgrades {
    let mut tick =
        tokio::time::interval(over.div_f64(n.max(1) as f64).max(Duration::from_micros(1)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut times = Vec::with_capacity(n);
    let mut failed = 0;
    for i in 0..n {
        tick.tick().await;
        let opened = match transport {
            Transport::Ws => tokio::time::timeout(UPGRADE_TIMEOUT, upgrade(addr, &path, i)).await,
            Transport::Sse => {
                tokio::time::timeout(UPGRADE_TIMEOUT, event_stream(addr, &path)).await
            }
        };
        match opened {
            Ok(Ok(t)) => times.push(t),
            _ => failed += 1,
        }
    }
    summarize(times, failed)
}

/// One newcomer: the time from `connect` to its complete `101` head.
async fn upgrade(addr: SocketAddr, path: &str, i: usize) -> std::io::Result<Duration> {
    let t0 = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    // Keys unlike the subscribers' (which count up from 0).
    let key = ws_proto::handshake::generate_key((u128::MAX - i as u128).to_le_bytes());
    let host = addr.to_string();
    stream
        .write_all(&ws_proto::handshake::client_request(&host, path, &key, &[]))
        .await?;
    let mut buf = Vec::with_capacity(512);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // parse_response accepts only a 101 with the right accept key.
        match ws_proto::handshake::parse_response(&buf, &key) {
            Ok(Some(_)) => return Ok(t0.elapsed()),
            Ok(None) => continue,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
}

/// One SSE newcomer: the time from `connect` to its complete `200` head.
async fn event_stream(addr: SocketAddr, path: &str) -> std::io::Result<Duration> {
    let t0 = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    crate::sse::open(&mut stream, &addr.to_string(), path)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(t0.elapsed())
}

fn summarize(mut times: Vec<Duration>, failed: usize) -> Upgrades {
    times.sort_unstable();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    // The smallest time at or above the fraction q of all (nearest rank).
    let rank = |q: f64| ((q * times.len() as f64).ceil() as usize).saturating_sub(1);
    Upgrades {
        count: times.len(),
        failed,
        p50_ms: ms(times.get(rank(0.5))),
        p99_ms: ms(times.get(rank(0.99))),
        max_ms: ms(times.last()),
    }
}

/// The lines the run prints after its table, one per point that timed newcomers.
pub fn summary(results: &[PointResult]) -> String {
    let mut out = String::new();
    for r in results {
        if let Some(u) = &r.upgrades {
            let answer = match r.point.transport {
                Transport::Ws => "101",
                Transport::Sse => "the event stream's 200",
            };
            out.push_str(&format!(
                "{} {}: time to {answer} for {} new connections during the point: p50 {:.2} ms, \
                 p99 {:.2} ms, max {:.2} ms{}\n",
                r.label,
                r.point.name,
                u.count,
                u.p50_ms,
                u.p99_ms,
                u.max_ms,
                if u.failed > 0 {
                    format!(" ({} FAILED)", u.failed)
                } else {
                    String::new()
                }
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let times = (1..=100).map(Duration::from_millis).collect();
        let u = summarize(times, 2);
        assert_eq!((u.count, u.failed), (100, 2));
        assert_eq!((u.p50_ms, u.p99_ms, u.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(summarize(Vec::new(), 0), Upgrades::default());
    }
}
