//! Processes and sockets for the stock-client tests: the real `wspush` binary,
//! a stock client script speaking JSON lines, and a recording TCP proxy that
//! shows what each client really puts on the wire.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

/// How long any one step may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Where the stock client scripts and their installed packages live.
pub fn stock_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stock")
}

/// Fails (never skips) when something `scripts/test-deps.sh` installs is missing.
pub fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} is missing ({}): run scripts/test-deps.sh",
        path.display()
    );
}

/// Collects a child's stderr in the background, for failure messages.
pub fn drain_into(mut from: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    log
}

/// The `wspush serve` binary on ports the kernel chose; killed (by PID) on drop.
pub struct Wspush {
    /// The WebSocket/HTTP address it bound.
    pub ws: SocketAddr,
    /// The RPC address it bound.
    pub rpc: SocketAddr,
    /// The HTTP API address it bound.
    #[allow(dead_code)] // Not every test binary that includes the harness uses the API.
    pub api: SocketAddr,
    child: Child,
}

impl Wspush {
    /// Starts `wspush serve --ws 127.0.0.1:0 --rpc 127.0.0.1:0` and reads the
    /// bound addresses from its `wspush serving ws=… rpc=…` log line.
    pub async fn spawn() -> Wspush {
        Wspush::spawn_with(&["--ws", "127.0.0.1:0", "--rpc", "127.0.0.1:0"], &[]).await
    }

    /// Starts `wspush serve ARGS` with extra environment variables.
    pub async fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Wspush {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wspush"))
            .arg("serve")
            .args(args)
            // The API on a port of its own unless the test says otherwise.
            .env("WSPUSH_API", "127.0.0.1:0")
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the wspush binary");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let started = timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("wspush serving") {
                    return Some(line);
                }
            }
            None
        });
        let line = started
            .await
            .expect("wspush did not log `wspush serving` in time")
            .expect("wspush exited before serving");
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
                .parse()
                .unwrap()
        };
        let (ws, rpc, api) = (addr("ws="), addr("rpc="), addr("api="));
        // Keep the pipe empty so the server never blocks on logging.
        drain_into(lines.into_inner().into_inner());
        Wspush {
            ws,
            rpc,
            api,
            child,
        }
    }

    /// Kills it (SIGKILL, by its PID through its `Child`): a node that dies, with no
    /// chance to say goodbye.
    #[allow(dead_code)]
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    #[allow(dead_code)]
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("wspush already reaped");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        timeout(WAIT, self.child.wait())
            .await
            .expect("wspush did not exit")
            .unwrap()
    }
}

/// A stock client program printing one JSON object per step; killed on drop.
pub struct Script {
    name: String,
    child: Child,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl Script {
    /// Runs `program args…` in the stock directory.
    pub fn spawn(program: &Path, args: &[String]) -> Script {
        let name = format!("{} {}", program.display(), args.join(" "));
        let mut child = Command::new(program)
            .args(args)
            .current_dir(stock_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}: run scripts/test-deps.sh"));
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = drain_into(child.stderr.take().unwrap());
        Script {
            name,
            child,
            stdout,
            stderr,
        }
    }

    /// The next step the script reports; it must be `step`.
    pub async fn step(&mut self, step: &str) -> serde_json::Value {
        let line = timeout(WAIT, self.stdout.next_line()).await;
        let line = match line {
            Ok(Ok(Some(line))) => line,
            other => panic!(
                "{}: no `{step}` step ({other:?}); stderr:\n{}",
                self.name,
                self.stderr.lock().unwrap()
            ),
        };
        let value: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.name));
        assert_eq!(value["step"], step, "{}: {value}", self.name);
        value
    }

    /// Waits for the script to exit successfully.
    pub async fn finish(mut self) {
        let status = timeout(WAIT, self.child.wait()).await;
        assert!(
            matches!(status, Ok(Ok(s)) if s.success()),
            "{}: {status:?}; stderr:\n{}",
            self.name,
            self.stderr.lock().unwrap()
        );
    }
}

/// A TCP proxy in front of `target` that records both directions.
pub struct Recorder {
    /// Where clients connect instead of `target`.
    pub addr: SocketAddr,
    /// Every byte clients sent, in order (one client at a time).
    pub from_client: Arc<Mutex<Vec<u8>>>,
    /// Every byte the server answered.
    pub from_server: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    /// Listens on 127.0.0.1:0 and forwards each accepted connection to `target`.
    pub async fn start(target: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let from_client = Arc::new(Mutex::new(Vec::new()));
        let from_server = Arc::new(Mutex::new(Vec::new()));
        let (up, down) = (Arc::clone(&from_client), Arc::clone(&from_server));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(target).await.unwrap();
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, Arc::clone(&up)));
                tokio::spawn(pipe(sr, cw, Arc::clone(&down)));
            }
        });
        Recorder {
            addr,
            from_client,
            from_server,
        }
    }
}

async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    record: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        record.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
