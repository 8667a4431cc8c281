//! The wspush server under test: started by the benchmark (`--spawn-server`)
//! or already running (`--server-pid`), and its counters over RPC `stats()`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use msgpack_rpc::Value;

/// A `wspush serve` child process; killed on drop.
pub struct Spawned {
    child: Child,
    /// Its WebSocket address.
    pub ws: SocketAddr,
    /// Its MessagePack-RPC address.
    pub rpc: SocketAddr,
    /// Its HTTP API address (builds before the API have none).
    pub api: Option<SocketAddr>,
}

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The executable could not be run.
    #[error("cannot run {path}: {err}")]
    Exec {
        /// The executable.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// It exited or closed stderr before saying where it listens.
    #[error("{0} ended before printing \"wspush serving ws=… rpc=…\"")]
    NoBanner(String),
}

impl Spawned {
    /// Runs `path serve` on free loopback ports and waits for its banner. With `api`, its
    /// HTTP API listens on a free port too (builds before the API take no `--api`, so
    /// without it they can be measured by the same generator).
    pub fn start(path: &Path, extra_args: &[String], api: bool) -> Result<Spawned, SpawnError> {
        let shown = path.display().to_string();
        // In a session of its own, as a daemon runs (nginx daemonizes the same way): with
        // the kernel's autogroup scheduling the generator and the server then share the
        // cores as two programs do, rather than as threads of one group whose priorities
        // (wspush's fan-out writers run below its event loop) are weighed against each other.
        let mut command = match setsid() {
            Some(setsid) => {
                let mut c = Command::new(setsid);
                c.arg(path);
                c
            }
            None => Command::new(path),
        };
        let mut child = command
            .args(["serve", "--ws", "127.0.0.1:0", "--rpc", "127.0.0.1:0"])
            .args(if api {
                &["--api", "127.0.0.1:0"][..]
            } else {
                &[]
            })
            .args(["--max-connections", "1000000"])
            .args(extra_args)
            // Per-connection open/close lines at info level would cost the
            // server CPU inside the measurement; keep only the banner.
            .env("RUST_LOG", "warn,wspush::serve=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| SpawnError::Exec {
                path: shown.clone(),
                err,
            })?;
        let Some(stderr) = child.stderr.take() else {
            return Err(SpawnError::NoBanner(shown));
        };
        let mut lines = BufReader::new(stderr).lines();
        let banner = lines.by_ref().map_while(Result::ok).find_map(|l| {
            if !l.contains("wspush serving") {
                eprintln!("[server] {l}");
                return None;
            }
            Some((
                addr_after(&l, "ws=")?,
                addr_after(&l, "rpc=")?,
                addr_after(&l, "api="),
            ))
        });
        let Some((ws, rpc, api)) = banner else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SpawnError::NoBanner(shown));
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[server] {line}");
            }
        });
        Ok(Spawned {
            child,
            ws,
            rpc,
            api,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// util-linux's `setsid`, which calls setsid(2) and execs the program in the same process
/// (it forks only when the caller leads its process group, which a spawned child does not).
fn setsid() -> Option<&'static Path> {
    ["/usr/bin/setsid", "/bin/setsid"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
}

fn addr_after(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(key)? + key.len();
    line[start..]
        .split(|c: char| c.is_whitespace() || c == ',' || c == '"')
        .next()?
        .parse()
        .ok()
}

/// The counters of wspush's `stats()` that a benchmark reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerCounters {
    /// Open WebSocket connections.
    pub connections: u64,
    /// Deliveries refused because a queue was full.
    pub overflows: u64,
    /// Connections closed because their queue overflowed.
    pub overflow_closes: u64,
    /// Frames queued to browsers.
    pub deliveries: u64,
    /// Frames written to sockets.
    pub messages_written: u64,
    /// Write system calls on sockets.
    pub write_calls: u64,
}

impl ServerCounters {
    /// Frames per write call from `before` to these.
    pub fn messages_per_write(&self, before: &ServerCounters) -> Option<f64> {
        let writes = self.write_calls.checked_sub(before.write_calls)?;
        let messages = self.messages_written.checked_sub(before.messages_written)?;
        (writes > 0).then(|| messages as f64 / writes as f64)
    }
}

/// Calls `stats()`; `None` if the server does not answer in time.
pub async fn counters(rpc: SocketAddr) -> Option<ServerCounters> {
    let client = msgpack_rpc::Client::connect_tcp(rpc).await.ok()?;
    let stats = client
        .call_timeout("stats", vec![], Some(Duration::from_secs(10)))
        .await
        .ok()?;
    let get = |name: &str| -> u64 {
        stats
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(name)))
            .and_then(|(_, v): &(Value, Value)| v.as_u64())
            .unwrap_or(0)
    };
    Some(ServerCounters {
        connections: get("connections"),
        overflows: get("overflows"),
        overflow_closes: get("overflow_closes"),
        deliveries: get("deliveries"),
        messages_written: get("messages_written"),
        write_calls: get("write_calls"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn banner_addresses() {
        let line = "2025-01-01T00:00:00Z  INFO wspush::serve: wspush serving ws=127.0.0.1:4321 rpc=127.0.0.1:5432";
        assert_eq!(
            addr_after(line, "ws="),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(
            addr_after(line, "rpc="),
            Some("127.0.0.1:5432".parse().unwrap())
        );
        assert_eq!(addr_after("nothing", "ws="), None);
    }
}
