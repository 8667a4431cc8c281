//! Times the server side of a TLS 1.3 connection for what a push server does, with no sockets:
//! `cargo run --release -p ws-server --example tls_speed -- [N]`
//! (default 100000) runs N operations of each shape on the server's own
//! [`ws_server::TlsStream`] over an in-memory pipe, after a TLS 1.3 handshake with a
//! tokio-rustls client, once per record layer:
//!
//! - `own`: the config allows secret extraction, so the stream moves to its own TLS 1.3
//!   record layer (as the server runs it);
//! - `rustls`: it does not, so the stream stays on rustls's `UnbufferedServerConnection`.
//!
//! The shapes: writes (`write_all`, or `write_vectored` until all is taken, each then
//! flushed) of one 66-byte WebSocket frame, of 16 such frames in one vectored write, and of
//! 4 KiB; reads by the server (into a 4 KiB buffer, until all is in) of one 66-byte record
//! the client sent, and of 16 of them sent together.
//!
//! Only the server's calls are timed: the client decrypts what the server wrote after every
//! 64 writes (so the pipe stays small), and writes the records the server reads before the
//! server's read is timed (one `Instant` pair per read, its cost printed). Each line is
//! one round: ns per operation and MB/s of plaintext; 3 rounds, the layers alternating
//! (each round on a new connection), then the best round of each layer side by side.
//! A measurement to read, not a test: nothing is asserted about the times.

mod common;

use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use common::{Configs, Error, configs};

/// A small WebSocket frame, as a push server writes one per message.
const FRAME: usize = 66;
/// Frames in one vectored write, and records the client sends together.
const FRAMES: usize = 16;
/// Server writes timed together before the client reads them.
const BATCH: usize = 64;
const ROUNDS: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Shape {
    Write(usize),
    Vectored,
    Read(usize),
}

const SHAPES: [Shape; 5] = [
    Shape::Write(FRAME),
    Shape::Vectored,
    Shape::Write(4096),
    Shape::Read(1),
    Shape::Read(FRAMES),
];

impl Shape {
    fn name(self) -> String {
        match self {
            Self::Write(n) => format!("write {n} B"),
            Self::Vectored => format!("write_vectored {FRAMES}x{FRAME} B"),
            Self::Read(1) => format!("read 1 record of {FRAME} B"),
            Self::Read(k) => format!("read {k} records of {FRAME} B"),
        }
    }

    /// Plaintext bytes one operation moves.
    fn bytes(self) -> usize {
        match self {
            Self::Write(n) => n,
            Self::Vectored => FRAMES * FRAME,
            Self::Read(k) => k * FRAME,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Layer {
    Own,
    Rustls,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Rustls => "rustls",
        }
    }

    fn config(self, cfg: &Configs) -> &Arc<rustls::ServerConfig> {
        match self {
            Self::Own => &cfg.server,
            Self::Rustls => &cfg.server_rustls,
        }
    }
}

/// Writes all of `bufs` with `write_vectored` (the stream takes at most 32 KiB a call).
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    while !bufs.is_empty() {
        let n = w.write_vectored(bufs).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// Reads until `len` bytes have come, each read offered all of `buf` (as a server reads).
async fn read_len<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    len: usize,
) -> Result<(), Error> {
    let mut got = 0;
    while got < len {
        let n = r.read(&mut buf[..]).await?;
        if n == 0 {
            return Err("end of stream".into());
        }
        got += n;
    }
    if got != len {
        return Err(format!("read {got} bytes, {len} expected").into());
    }
    Ok(())
}

/// The server's time for `n` operations of `shape`, on a new connection.
async fn run(cfg: &Configs, layer: Layer, shape: Shape, n: usize) -> Result<Duration, Error> {
    let (mut server, mut client) = common::handshake(cfg, layer.config(cfg), false).await?;
    let payload = vec![0x81u8; 4096];
    let frame = &payload[..FRAME];
    let mut sink = vec![0u8; BATCH * shape.bytes()];
    let mut buf = vec![0u8; 4096];
    let mut spent = Duration::ZERO;
    let mut done = 0;
    while done < n {
        match shape {
            Shape::Write(_) | Shape::Vectored => {
                let k = BATCH.min(n - done);
                let started = Instant::now();
                for _ in 0..k {
                    if let Shape::Write(len) = shape {
                        server.write_all(&payload[..len]).await?;
                    } else {
                        let mut slices = [IoSlice::new(frame); FRAMES];
                        write_all_vectored(&mut server, &mut slices).await?;
                    }
                    server.flush().await?;
                }
                spent += started.elapsed();
                client.read_exact(&mut sink[..k * shape.bytes()]).await?;
                done += k;
            }
            Shape::Read(k) => {
                for _ in 0..k {
                    client.write_all(frame).await?;
                }
                client.flush().await?;
                let started = Instant::now();
                read_len(&mut server, &mut buf, k * FRAME).await?;
                spent += started.elapsed();
                done += 1;
            }
        }
    }
    Ok(spent)
}

/// What one `Instant` pair costs, in ns (part of every timed read of one record).
fn instant_cost() -> f64 {
    let n = 1_000_000u32;
    let mut sum = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..n {
        sum += Instant::now().elapsed();
    }
    std::hint::black_box(sum);
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() -> Result<(), Error> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let cfg = configs()?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let suite = rt.block_on(async {
        let (_, client) = common::handshake(&cfg, &cfg.server, false).await?;
        Ok::<_, Error>(client.get_ref().1.negotiated_cipher_suite())
    })?;
    println!(
        "{n} operations per shape, server side only; TLS 1.3, {suite:?}; an Instant pair: \
         {:.0} ns",
        instant_cost()
    );
    // best[layer][shape]: the fastest round's ns per operation.
    let mut best = [[f64::INFINITY; SHAPES.len()]; 2];
    for round in 0..ROUNDS {
        let layers = if round % 2 == 0 {
            [Layer::Own, Layer::Rustls]
        } else {
            [Layer::Rustls, Layer::Own]
        };
        for layer in layers {
            for (i, shape) in SHAPES.into_iter().enumerate() {
                let spent = rt.block_on(run(&cfg, layer, shape, n))?;
                let ns = spent.as_nanos() as f64 / n as f64;
                let mb_s = (shape.bytes() * n) as f64 / spent.as_secs_f64() / 1e6;
                println!(
                    "round {} {:>6}  {:<30} {ns:>9.1} ns/op {mb_s:>9.1} MB/s",
                    round + 1,
                    layer.name(),
                    shape.name(),
                );
                let slot = &mut best[layer as usize][i];
                *slot = slot.min(ns);
            }
        }
    }
    println!("best of {ROUNDS} rounds (ns/op): own, rustls, own/rustls");
    for (i, shape) in SHAPES.into_iter().enumerate() {
        let (own, theirs) = (best[0][i], best[1][i]);
        println!(
            "  {:<30} {own:>9.1} {theirs:>9.1} {:>6.2}",
            shape.name(),
            own / theirs
        );
    }
    Ok(())
}
