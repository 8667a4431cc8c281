//! What this machine allows, measured without any server: the ceilings the scenarios'
//! figures should be read against.
//!
//! - **Loopback bandwidth**: one TCP stream, 256 KiB writes and reads, writer and reader
//!   on their own threads. Every delivery of an S-byte message crosses loopback once, so
//!   bandwidth ÷ (S + frame header) bounds deliveries/s at size S (scenario b), whatever
//!   the server does.
//! - **Small write cost**: one 70-byte frame written to each of N connected loopback
//!   sockets that nobody reads, from 1 and from `threads` threads. Paced fan-out (scenario
//!   d) is one such write per subscriber, so N × cost ÷ threads bounds the time to reach
//!   the last subscriber, before the subscribers' own reading is counted.
//! - **Round trip**: a 64-byte request and an 8-byte reply over one loopback
//!   connection, one at a time, between two blocking threads. A publisher with
//!   one call in flight waits at least this long per message, so 1 ÷ round trip
//!   bounds its calls/s (scenario f, and a, b, c with one call at a time).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// What [`run`] measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Calibration {
    /// Loopback TCP bytes/s, one stream.
    pub loopback_bytes_per_sec: f64,
    /// Sockets written to in the write-cost measurement.
    pub sockets: usize,
    /// Microseconds per 70-byte write, one thread (median of the rounds).
    pub write_us_1_thread: f64,
    /// Threads of the parallel measurement.
    pub threads: usize,
    /// Microseconds of wall time per write with `threads` threads writing their shares.
    pub write_us_parallel: f64,
    /// Microseconds per request/reply round trip, one at a time (median of the rounds).
    pub round_trip_us: f64,
}

impl Calibration {
    /// Deliveries/s of `size`-byte messages the loopback stream could carry at most.
    pub fn max_deliveries_per_sec(&self, size: usize) -> f64 {
        self.loopback_bytes_per_sec / (size + header_len(size)) as f64
    }

    /// A human summary with the implied ceilings of scenarios b and d.
    pub fn table(&self) -> String {
        let ms = |writes: usize, us: f64| writes as f64 * us / 1000.0;
        format!(
            "| measurement | value | implies |\n|---|---|---|\n\
             | loopback TCP, one stream | {:.2} GB/s | at that bandwidth: {:.0}k deliveries/s of 4 KiB, {:.1}M of 64 B |\n\
             | 70-byte write to an idle socket, 1 thread ({} sockets) | {:.2} µs | last of 10k paced deliveries ≥ {:.0} ms, of 1k ≥ {:.1} ms |\n\
             | same, {} threads | {:.2} µs of wall time per write | last of 10k ≥ {:.0} ms, of 1k ≥ {:.1} ms |\n\
             | request/reply round trip, one at a time | {:.2} µs | a publisher with 1 call in flight: ≤ {:.0}k calls/s |\n",
            self.loopback_bytes_per_sec / 1e9,
            self.max_deliveries_per_sec(4096) / 1e3,
            self.max_deliveries_per_sec(64) / 1e6,
            self.sockets,
            self.write_us_1_thread,
            ms(10_000, self.write_us_1_thread),
            ms(1_000, self.write_us_1_thread),
            self.threads,
            self.write_us_parallel,
            ms(10_000, self.write_us_parallel),
            ms(1_000, self.write_us_parallel),
            self.round_trip_us,
            1e3 / self.round_trip_us.max(1e-9),
        )
    }
}

/// Server frame header length for a payload of `size` bytes.
fn header_len(size: usize) -> usize {
    match size {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// Round trips per round of the round-trip measurement.
const ROUND_TRIPS: usize = 5_000;

/// Runs the measurements: `stream_bytes` through loopback, `sockets` idle
/// sockets, [`ROUND_TRIPS`] round trips (5 rounds each).
pub fn run(stream_bytes: usize, sockets: usize, threads: usize) -> io::Result<Calibration> {
    let loopback_bytes_per_sec = loopback_bandwidth(stream_bytes)?;
    let round_trip_us = median((0..5).map(|_| round_trips(ROUND_TRIPS)).collect())?;
    let pairs = connected_pairs(sockets)?;
    let (mut writers, _readers): (Vec<TcpStream>, Vec<TcpStream>) = pairs.into_iter().unzip();
    let write_us_1_thread = median((0..5).map(|_| write_round(&mut writers, 1)).collect())?;
    let threads = threads.max(1);
    let write_us_parallel = median((0..5).map(|_| write_round(&mut writers, threads)).collect())?;
    Ok(Calibration {
        loopback_bytes_per_sec,
        sockets,
        write_us_1_thread,
        threads,
        write_us_parallel,
        round_trip_us,
    })
}

/// µs per 64-byte request answered by an 8-byte reply, `n` one after the other.
fn round_trips(n: usize) -> io::Result<f64> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut request = [0u8; 64];
        for _ in 0..n {
            s.read_exact(&mut request)?;
            s.write_all(&[1u8; 8])?;
        }
        Ok(())
    });
    let mut client = TcpStream::connect(addr)?;
    client.set_nodelay(true)?;
    let mut reply = [0u8; 8];
    let start = Instant::now();
    for _ in 0..n {
        client.write_all(&[7u8; 64])?;
        client.read_exact(&mut reply)?;
    }
    let wall = start.elapsed().max(Duration::from_nanos(1));
    server
        .join()
        .map_err(|_| io::Error::other("round-trip thread panicked"))??;
    Ok(wall.as_secs_f64() * 1e6 / n.max(1) as f64)
}

fn median(rounds: Vec<io::Result<f64>>) -> io::Result<f64> {
    let mut values = rounds.into_iter().collect::<io::Result<Vec<f64>>>()?;
    values.sort_by(f64::total_cmp);
    Ok(values[values.len() / 2])
}

/// Bytes/s of one loopback TCP stream.
fn loopback_bandwidth(total: usize) -> io::Result<f64> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let reader = thread::spawn(move || -> io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        while got < total {
            match s.read(&mut buf)? {
                0 => break,
                n => got += n,
            }
        }
        Ok(got)
    });
    let mut out = TcpStream::connect(addr)?;
    let chunk = vec![7u8; 256 * 1024];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        out.write_all(&chunk)?;
        sent += chunk.len();
    }
    let got = reader
        .join()
        .map_err(|_| io::Error::other("reader thread panicked"))??;
    Ok(got as f64 / start.elapsed().as_secs_f64())
}

/// `n` connected loopback pairs: (accepted side, connecting side).
fn connected_pairs(n: usize) -> io::Result<Vec<(TcpStream, TcpStream)>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    (0..n)
        .map(|_| {
            let client = TcpStream::connect(addr)?;
            let (server, _) = listener.accept()?;
            server.set_nodelay(true)?;
            Ok((server, client))
        })
        .collect()
}

/// One 70-byte frame to every socket, split over `threads`; wall µs per write.
fn write_round(sockets: &mut [TcpStream], threads: usize) -> io::Result<f64> {
    let frame = [0x81u8; 70];
    let n = sockets.len();
    let share = n.div_ceil(threads).max(1);
    let start = Instant::now();
    thread::scope(|scope| {
        let handles: Vec<_> = sockets
            .chunks_mut(share)
            .map(|chunk| {
                scope.spawn(move || chunk.iter_mut().try_for_each(|s| s.write_all(&frame)))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| io::Error::other("writer thread panicked"))?
        })
    })?;
    let wall = start.elapsed().max(Duration::from_nanos(1));
    Ok(wall.as_secs_f64() * 1e6 / n as f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_follow_from_the_measurements() {
        let c = Calibration {
            loopback_bytes_per_sec: 4100.0 * 1000.0,
            sockets: 10,
            write_us_1_thread: 8.0,
            threads: 2,
            write_us_parallel: 4.0,
            round_trip_us: 20.0,
        };
        assert_eq!(c.max_deliveries_per_sec(4096), 1000.0);
        let table = c.table();
        assert!(
            table.contains("last of 10k paced deliveries ≥ 80 ms"),
            "{table}"
        );
        assert!(table.contains("last of 10k ≥ 40 ms"), "{table}");
        assert!(table.contains("1 call in flight: ≤ 50k calls/s"), "{table}");
    }

    #[test]
    fn a_small_calibration_runs() {
        let c = run(1 << 20, 20, 2).unwrap();
        assert!(c.loopback_bytes_per_sec > 0.0 && c.write_us_1_thread > 0.0);
        assert!(c.round_trip_us > 0.0);
    }
}
