//! The fault battery, over 127.0.0.1: broken, slow, abrupt and hostile peers
//! on both ports. After each: no panic, a healthy browser still gets a push
//! end to end, and this process's open fds (server and clients are in it)
//! come back to within a small margin of the baseline.
//!
//! The tests take turns (one lock) so that fd counts are not mixed up.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use msgpack_rpc::{Client as Rpc, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio::time::timeout;
use ws_proto::Event;
use ws_server::Message;
use ws_server::client::{self, Client as Ws, ClientConfig};
use wspush::config::Settings;
use wspush::serve::{Running, start};

const WAIT: Duration = Duration::from_secs(15);
/// fds that may legitimately differ from the baseline (runtime internals, a
/// socket still in the kernel's hands for a moment).
const FD_MARGIN: usize = 8;

static TURN: Mutex<()> = Mutex::const_new(());
static HEALTH: AtomicU64 = AtomicU64::new(0);

fn settings() -> Settings {
    Settings {
        ws: "127.0.0.1:0".parse().unwrap(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace: 0,
        handshake_timeout: 1,
        ping_interval: 1,
        pong_timeout: 1,
        max_message_bytes: 64 << 10,
        max_frame_bytes: 64 << 10,
        rpc_max_message_bytes: 64 << 10,
        ..Settings::default()
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Resident memory of this process, KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// RSS may stay above the baseline by allocator caches, not by what a fault left.
const RSS_MARGIN_KIB: usize = 32 << 10;

/// A running server with its RPC client and the fd count once both are warm.
struct Bench {
    server: Running,
    rpc: Rpc,
    baseline: usize,
    rss_baseline: usize,
}

impl Bench {
    async fn start(settings: Settings) -> Bench {
        let server = start(&settings).await.unwrap();
        let rpc = Rpc::connect_tcp(server.rpc_addr).await.unwrap();
        let bench = Bench {
            server,
            rpc,
            baseline: 0,
            rss_baseline: 0,
        };
        bench.healthy().await;
        Bench {
            baseline: open_fds(),
            rss_baseline: rss_kib(),
            ..bench
        }
    }

    /// A fresh browser joins its own channel and receives a publish.
    async fn healthy(&self) {
        let channel = format!("health-{}", HEALTH.fetch_add(1, Ordering::Relaxed));
        let url = format!("ws://{}/?channel={channel}", self.server.ws_addr);
        let mut ws = timeout(WAIT, client::connect(&url)).await.unwrap().unwrap();
        let mut delivered = false;
        // The 101 can arrive a moment before the hub lists the browser.
        for _ in 0..500 {
            let n = self
                .rpc
                .call(
                    "publish",
                    vec![Value::from(channel.as_str()), Value::from("ok")],
                )
                .await
                .unwrap();
            if n == Value::from(1) {
                delivered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(delivered, "the healthy browser never joined");
        let msg = timeout(WAIT, ws.recv_message()).await.unwrap().unwrap();
        assert_eq!(msg, Some(Message::text("ok")));
        ws.close(1000, "").await.unwrap();
    }

    /// Waits (bounded) until no browser is left and fds and RSS are back near the baseline.
    async fn settled(&self) {
        let (mut fds, mut rss) = (0, 0);
        for _ in 0..1500 {
            (fds, rss) = (open_fds(), rss_kib());
            if self.server.shared.hub.connection_count() == 0
                && fds <= self.baseline + FD_MARGIN
                && rss <= self.rss_baseline + RSS_MARGIN_KIB
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "not settled: {} connections, {fds} fds (baseline {}), RSS {rss} KiB (baseline {})",
            self.server.shared.hub.connection_count(),
            self.baseline,
            self.rss_baseline
        );
    }

    async fn after(self) {
        self.settled().await;
        self.healthy().await;
        self.settled().await;
        self.server.shutdown().await.unwrap();
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/", self.server.ws_addr)
    }
}

/// The close code the server sends, or `None` if the socket just ends.
async fn server_close_code(ws: &mut Ws) -> Option<u16> {
    timeout(WAIT, async {
        loop {
            match ws.recv().await {
                Ok(Some(Event::Close(frame))) => return Some(frame.code),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    })
    .await
    .expect("the server neither closed nor dropped the connection")
}

/// A client frame header with mask key 0 (the payload then goes as is).
fn frame_head(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let mut head = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => head.push(0x80 | len as u8),
        126..=0xffff => {
            head.push(0x80 | 126);
            head.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            head.push(0x80 | 127);
            head.extend_from_slice(&len.to_be_bytes());
        }
    }
    head.extend_from_slice(&[0, 0, 0, 0]);
    head
}

/// Drops a socket with RST instead of FIN.
// Deprecated because a nonzero linger blocks the thread on drop; zero never does.
#[allow(deprecated)]
fn reset(tcp: TcpStream) {
    tcp.set_linger(Some(Duration::ZERO)).unwrap();
    drop(tcp);
}

#[tokio::test]
async fn half_a_frame_then_silence() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    let mut ws = client::connect(&bench.ws_url()).await.unwrap();
    let mut half = frame_head(1, true, 100);
    half.extend_from_slice(&[b'x'; 50]);
    ws.send_raw(&half).await.unwrap();
    // Not reading, the client answers no ping: the pong deadline must end it
    // rather than the server waiting for the other half forever.
    let closed = timeout(WAIT, async {
        loop {
            if bench.server.shared.hub.connection_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "a silent half frame kept its connection");
    assert!(bench.server.shared.stats().ping_timeouts >= 1);
    drop(ws);
    bench.after().await;
}

#[tokio::test]
async fn handshake_one_byte_per_second_is_cut_off() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    let mut tcp = TcpStream::connect(bench.server.ws_addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        bench.server.ws_addr
    );
    let mut sent = 0;
    let mut buf = [0u8; 256];
    for byte in request.as_bytes() {
        if tcp.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        // The slowloris pace: one byte a second, unless the server hangs up.
        if let Ok(Ok(0) | Err(_)) = timeout(Duration::from_secs(1), tcp.read(&mut buf)).await {
            break;
        }
    }
    assert!(
        sent < request.len(),
        "the whole slow handshake was accepted"
    );
    assert!(bench.server.shared.stats().handshake_timeouts >= 1);
    drop(tcp);
    bench.after().await;
}

#[tokio::test]
async fn ten_thousand_connections_reset_abruptly() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    let addr = bench.server.ws_addr;
    let upgrade = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    // 10,000 in all, 100 at a time (the fd limit here is 20,000 for both ends).
    for batch in 0..100 {
        let mut tasks = Vec::new();
        for i in 0..100 {
            let upgrade = upgrade.clone();
            tasks.push(tokio::spawn(async move {
                let socket = TcpSocket::new_v4().unwrap();
                let mut tcp = socket.connect(addr).await.unwrap();
                match (batch * 100 + i) % 3 {
                    // Connect, then reset before a byte.
                    0 => {}
                    // Half a request head.
                    1 => tcp.write_all(&upgrade.as_bytes()[..40]).await.unwrap(),
                    // A full upgrade, half a frame, reset.
                    _ => {
                        tcp.write_all(upgrade.as_bytes()).await.unwrap();
                        let mut head = [0u8; 512];
                        let _ = timeout(WAIT, tcp.read(&mut head)).await;
                        let mut frame = frame_head(2, true, 1000);
                        frame.extend_from_slice(&[7; 300]);
                        let _ = tcp.write_all(&frame).await;
                    }
                }
                reset(tcp);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    bench.after().await;
}

#[tokio::test]
async fn clients_killed_mid_message() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    for fragments in [false, true] {
        let ws = client::connect(&bench.ws_url()).await.unwrap();
        let mut ws = ws;
        if fragments {
            let mut first = frame_head(1, false, 5);
            first.extend_from_slice(b"hello");
            ws.send_raw(&first).await.unwrap();
        }
        let mut partial = frame_head(if fragments { 0 } else { 1 }, true, 4000);
        partial.extend_from_slice(&[b'a'; 1000]);
        ws.send_raw(&partial).await.unwrap();
        drop(ws);
    }
    bench.after().await;
}

#[tokio::test]
async fn decompression_bomb_is_refused_1009() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    let mut cfg = ClientConfig::default();
    cfg.deflate = Some(ws_proto::handshake::DeflateConfig::default());
    let mut ws = client::connect_with(&bench.ws_url(), cfg).await.unwrap();
    assert!(ws.is_compressed());
    // 16 MiB of zeros deflates to a few KiB: small on the wire, huge inflated.
    ws.send_binary(vec![0u8; 16 << 20]).await.unwrap();
    assert_eq!(server_close_code(&mut ws).await, Some(1009));
    drop(ws);
    bench.after().await;
}

#[tokio::test]
async fn invalid_utf8_in_text_and_close_reason_is_refused_1007() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    let mut ws = client::connect(&bench.ws_url()).await.unwrap();
    let mut text = frame_head(1, true, 4);
    text.extend_from_slice(&[b'o', b'k', 0xff, 0xfe]);
    ws.send_raw(&text).await.unwrap();
    assert_eq!(server_close_code(&mut ws).await, Some(1007));
    drop(ws);

    let mut ws = client::connect(&bench.ws_url()).await.unwrap();
    let mut close = frame_head(8, true, 4);
    close.extend_from_slice(&[0x03, 0xe8, 0xc3, 0x28]);
    ws.send_raw(&close).await.unwrap();
    assert_eq!(server_close_code(&mut ws).await, Some(1007));
    drop(ws);
    bench.after().await;
}

#[tokio::test]
async fn oversize_frames_are_refused_1009() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    for len in [(64 << 10) + 1, 1 << 40, u64::MAX >> 1] {
        let mut ws = client::connect(&bench.ws_url()).await.unwrap();
        ws.send_raw(&frame_head(2, true, len)).await.unwrap();
        assert_eq!(server_close_code(&mut ws).await, Some(1009), "{len}");
    }
    bench.after().await;
}

/// Writes `bytes` on a fresh RPC connection and expects the server to hang up.
async fn rpc_hangs_up_on(bench: &Bench, bytes: &[u8]) {
    let mut tcp = TcpStream::connect(bench.server.rpc_addr).await.unwrap();
    let _ = tcp.write_all(bytes).await;
    assert!(
        hung_up(&mut tcp).await,
        "the RPC server kept a connection that sent {bytes:02x?}"
    );
}

/// Whether the server ends the connection within [`WAIT`] (whatever it sends first).
async fn hung_up(tcp: &mut TcpStream) -> bool {
    let mut sink = vec![0u8; 4096];
    let ended = timeout(WAIT, async {
        loop {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    ended.is_ok()
}

/// Issue 12.8: twenty connections each sent most of a 16 MiB message and
/// stayed, holding the server's memory with no timeout. Now each is cut off
/// after `rpc_message_timeout` (here the first 512 KiB of each: the timeout
/// does not depend on the size, the fds and RSS check does).
#[tokio::test]
async fn half_sent_rpc_messages_are_cut_off_by_the_message_timeout() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(Settings {
        rpc_max_message_bytes: 16 << 20,
        rpc_message_timeout: 1,
        ..settings()
    })
    .await;
    // push_data(bin32 of 16 MiB - 64 KiB: within the limit), its first 512 KiB.
    let mut head = vec![0x94, 0x00, 0x01, 0xa9];
    head.extend_from_slice(b"push_data");
    head.extend_from_slice(&[0x91, 0xc6, 0x00, 0xff, 0x00, 0x00]);
    head.resize(512 << 10, 0);
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(bench.server.rpc_addr).await.unwrap();
        tcp.write_all(&head).await.unwrap();
        stalled.push(tcp);
    }
    // Meanwhile other programs push as usual.
    bench.healthy().await;
    for tcp in &mut stalled {
        assert!(hung_up(tcp).await, "a half-sent message was kept");
    }
    let stats = bench.server.shared.stats();
    assert_eq!(stats.rpc_message_timeouts, 20, "{stats:?}");
    assert_eq!(stats.rpc_malformed_closes, 0, "{stats:?}");
    // The publisher's connection, idle all along, is still there.
    assert_eq!(stats.rpc_connections, 1, "{stats:?}");
    drop(stalled);
    bench.after().await;
}

#[tokio::test]
async fn garbage_truncated_and_oversize_msgpack_on_the_rpc_port() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    // 0xc1 is never used in MessagePack; a map where an array must be; a
    // request whose method is a number.
    rpc_hangs_up_on(&bench, &[0xc1, 0xc1, 0xc1]).await;
    rpc_hangs_up_on(&bench, &[0x81, 0x01, 0x02]).await;
    rpc_hangs_up_on(&bench, &[0x94, 0x00, 0x01, 0x02, 0x90]).await;
    // A bin32 announcing 256 MiB (over the 64 KiB limit): refused from the header.
    rpc_hangs_up_on(&bench, &[0x94, 0x00, 0x01, 0xc6, 0x10, 0, 0, 0]).await;
    // Truncated: half a valid request, then the client leaves.
    let mut tcp = TcpStream::connect(bench.server.rpc_addr).await.unwrap();
    tcp.write_all(&[0x94, 0x00, 0x01, 0xa9, b'p', b'u'])
        .await
        .unwrap();
    reset(tcp);
    // Each refusal is counted: four malformed closes, one of them over the size limit.
    let stats = bench.server.shared.stats();
    assert_eq!((stats.rpc_malformed_closes, stats.rpc_limit_closes), (4, 1));
    bench.after().await;
}

#[tokio::test]
async fn an_rpc_client_that_never_reads_its_replies() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(settings()).await;
    let mut tcp = TcpStream::connect(bench.server.rpc_addr).await.unwrap();
    // stats(): a small request, a larger reply.
    let request = [0x94, 0x00, 0x01, 0xa5, b's', b't', b'a', b't', b's', 0x90];
    let chunk: Vec<u8> = request
        .iter()
        .copied()
        .cycle()
        .take(request.len() * 1000)
        .collect();
    let mut stalled = false;
    for _ in 0..2000 {
        match timeout(Duration::from_secs(2), tcp.write_all(&chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    assert!(
        stalled,
        "the server kept reading requests it could not answer"
    );
    // Other programs are not held up meanwhile.
    bench.healthy().await;
    reset(tcp);
    bench.after().await;
}

#[tokio::test]
async fn per_ip_limit_and_large_heads_are_refused() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(Settings {
        max_connections_per_ip: 5,
        limit_loopback: true,
        ..settings()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(client::connect(&bench.ws_url()).await.unwrap());
    }
    // The 5th slot is the healthy check's; the 6th connection is refused.
    let fifth = TcpStream::connect(bench.server.ws_addr).await.unwrap();
    let mut sixth = TcpStream::connect(bench.server.ws_addr).await.unwrap();
    let mut answer = Vec::new();
    let _ = timeout(WAIT, sixth.read_to_end(&mut answer)).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 429"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(bench.server.shared.stats().refused_per_ip, 1);
    drop((fifth, sixth));

    let mut big = TcpStream::connect(bench.server.ws_addr).await.unwrap();
    // More headers than allowed (small enough that the server reads them all,
    // so its answer is not lost to a reset).
    let headers: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let head = format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    let _ = big.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = timeout(WAIT, big.read_to_end(&mut answer)).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(big);
    drop(held);
    bench.after().await;
}

#[tokio::test]
async fn connecting_too_fast_from_one_address_is_refused_429() {
    let _turn = TURN.lock().await;
    let server = start(&Settings {
        connects_per_ip_per_sec: 2,
        limit_loopback: true,
        ..settings()
    })
    .await
    .unwrap();
    // Ten connections back to back: at most two per one-second window pass.
    let mut refused = 0;
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut tcp = TcpStream::connect(server.ws_addr).await.unwrap();
        let mut answer = [0u8; 12];
        match timeout(Duration::from_millis(200), tcp.read(&mut answer)).await {
            Ok(Ok(12)) if answer.starts_with(b"HTTP/1.1 429") => refused += 1,
            _ => held.push(tcp),
        }
    }
    assert!(refused > 0, "no connection was refused");
    assert_eq!(server.shared.stats().refused_rate, refused);
    drop(held);
    server.shutdown().await.unwrap();
}

/// Waits (bounded) until `done` holds for the server's stats.
async fn wait_stats(bench: &Bench, what: &str, done: impl Fn(&wspush::stats::Stats) -> bool) {
    for _ in 0..1500 {
        if done(&bench.server.shared.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: {:?}", bench.server.shared.stats());
}

#[tokio::test]
async fn big_values_to_unsubscribed_channels_stay_within_the_history_limits() {
    let _turn = TURN.lock().await;
    // The default byte limits (4 MiB a stream, 64 MiB in all); a short age so
    // that the memory is seen going back.
    let bench = Bench::start(Settings {
        rpc_max_message_bytes: 8 << 20,
        history_secs: 1,
        ..settings()
    })
    .await;
    let publish = |channel: String, value: Value| {
        let rpc = bench.rpc.clone();
        async move {
            let n = rpc.call("publish", vec![Value::from(channel), value]);
            assert_eq!(n.await.unwrap(), Value::from(0));
        }
    };
    // Larger than a stream may keep: numbered, never kept.
    for i in 0..8u8 {
        publish(format!("big{i}"), Value::Binary(vec![i; 6 << 20])).await;
    }
    // 120 MiB to 60 streams: the oldest go beyond 64 MiB.
    for i in 0..60u8 {
        publish(format!("mid{i}"), Value::Binary(vec![i; 2 << 20])).await;
    }
    // Binary inside a map: JSON text with base64, not four bytes a byte.
    let blob = Value::Map(vec![(
        Value::from("blob"),
        Value::Binary(vec![0xab; 1 << 20]),
    )]);
    publish("json".into(), blob).await;
    let s = bench.server.shared.stats();
    assert!(s.history_bytes <= 64 << 20, "{s:?}");
    assert!(s.history_bytes >= 60 << 20, "it keeps what it may: {s:?}");
    assert_eq!(s.history_trimmed_stream, 8, "{s:?}");
    assert!(s.history_trimmed_total >= 28, "{s:?}");
    // A generous bound (the allocator keeps freed memory for reuse): without
    // the limits the history alone would hold 168 MiB.
    let grown_mib = rss_kib().saturating_sub(bench.rss_baseline) >> 10;
    assert!(grown_mib < 128, "RSS grew {grown_mib} MiB");
    let json = bench.server.shared.hub.history().read(Some("json"));
    let kept = json.entries[0].1.bytes();
    assert!(kept.len() < (1 << 20) / 3 * 4 + 64, "{} bytes", kept.len());
    assert!(kept.starts_with(b"{\"blob\":\"q6ur"), "{:?}", &kept[..16]);
    // Both readings of the counters show them.
    let metrics = bench.server.shared.stats().to_prometheus();
    assert!(
        metrics.contains("wspush_history_trimmed_total{limit=\"total\"} "),
        "{metrics}"
    );
    let rpc_stats = bench.rpc.call("stats", vec![]).await.unwrap();
    assert!(
        rpc_stats
            .to_string()
            .contains("\"history_trimmed_stream\": 8"),
        "{rpc_stats}"
    );
    // Past --history-secs every stream is forgotten and its memory freed.
    wait_stats(&bench, "history not expired", |s| {
        s.history_bytes == 0 && s.history_channels == 0
    })
    .await;
    // Not `after()`: glibc keeps big freed blocks in its heap once it has
    // raised its mmap threshold, so RSS need not come back to the baseline.
    bench.healthy().await;
    bench.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_history_of_many_channels_is_freed_on_a_timer() {
    let _turn = TURN.lock().await;
    let bench = Bench::start(Settings {
        history_secs: 1,
        ..settings()
    })
    .await;
    // The counters are the check; RSS (in `after()`) only a generous bound:
    // glibc keeps most small freed blocks for reuse rather than returning them.
    const CHANNELS: u64 = 30_000;
    for i in 0..CHANNELS {
        let params = vec![Value::from(format!("idle-{i}")), Value::from("x")];
        bench.rpc.notify("publish", params).unwrap();
    }
    // Methods run in order: when this answers, every publish has been made.
    bench.rpc.call("stats", vec![]).await.unwrap();
    let s = bench.server.shared.stats();
    assert!(
        s.history_channels + s.history_expired_channels >= CHANNELS,
        "{s:?}"
    );
    // No further publish: the timer alone forgets them, and the map shrinks.
    wait_stats(&bench, "idle channels kept", |s| {
        s.history_channels == 0 && s.history_expired_channels >= CHANNELS
    })
    .await;
    bench.after().await;
}
