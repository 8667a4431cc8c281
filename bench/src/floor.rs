//! The floor server: the least a push server can do per delivery on this machine, to
//! calibrate paced-latency figures (scenario d).
//!
//! It accepts WebSocket subscribers and HTTP POST publishes (the same interface as the
//! Nchan setup, so the load generator drives it unchanged) and fans each publish out by
//! writing the encoded frame to every socket with a plain blocking `write`, from
//! `threads` threads that each own an equal share of the sockets. No event loop, no
//! queues, no wake-ups, no per-connection state: what remains is the kernel's cost of a
//! loopback write, plus the load generator's own work on the same cores. A real server
//! cannot beat it at paced rates; at max rate it does not coalesce, so it is not a
//! throughput reference.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use bytes::Bytes;
use ws_proto::{Message, PreparedMessage};

/// How long a client has to send its request head.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

type Share = Arc<Mutex<Vec<TcpStream>>>;
type Job = (Bytes, mpsc::Sender<()>);

/// Serves until the listener fails. Sockets that error are dropped.
pub fn serve(listener: TcpListener, threads: usize) -> io::Result<()> {
    let threads = threads.max(1);
    let shares: Vec<Share> = (0..threads).map(|_| Share::default()).collect();
    let mut writers = Vec::new();
    for share in &shares {
        let (tx, rx) = mpsc::channel::<Job>();
        writers.push(tx);
        let share = Arc::clone(share);
        thread::spawn(move || {
            for (frame, done) in rx {
                let mut socks = share.lock().unwrap_or_else(PoisonError::into_inner);
                socks.retain_mut(|s| s.write_all(&frame).is_ok());
                drop(socks);
                let _ = done.send(());
            }
        });
    }
    let writers = Arc::new(writers);
    let shares = Arc::new(shares);
    let next = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(_) => {
                // Most likely out of file descriptors: the subscribers of an earlier point
                // that have gone are only noticed at the next write, and between points
                // there is none. Drop them now, then accept again.
                if prune_closed(&shares) == 0 {
                    thread::sleep(std::time::Duration::from_millis(10));
                }
                continue;
            }
        };
        // Each handshake on a thread of its own, with a deadline: one client that connects
        // and sends nothing (or a writer holding a share's lock through a long fan-out)
        // must not hold up every connection behind it in the accept queue.
        let (writers, shares, next) =
            (Arc::clone(&writers), Arc::clone(&shares), Arc::clone(&next));
        thread::spawn(move || admit(stream, &writers, &shares, &next));
    }
    Ok(())
}

/// Drops every subscriber socket whose client has closed it; returns how many.
fn prune_closed(shares: &[Share]) -> usize {
    let mut pruned = 0;
    for share in shares {
        let mut socks = share.lock().unwrap_or_else(PoisonError::into_inner);
        let before = socks.len();
        socks.retain(is_open);
        pruned += before - socks.len();
    }
    pruned
}

/// Whether the client may still read: no end of stream or error is waiting on the socket.
fn is_open(sock: &TcpStream) -> bool {
    if sock.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match sock.peek(&mut [0u8; 1]) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    };
    open && sock.set_nonblocking(false).is_ok()
}

/// Reads one connection's request head: a publisher's POST, or a subscriber's upgrade.
fn admit(
    mut stream: TcpStream,
    writers: &[mpsc::Sender<Job>],
    shares: &[Share],
    next: &AtomicUsize,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let Ok((head, rest)) = read_head(&mut stream) else {
        return;
    };
    let _ = stream.set_read_timeout(None);
    if head.starts_with(b"POST") {
        let mut buf = head;
        buf.extend_from_slice(&rest);
        publisher(stream, buf, writers);
        return;
    }
    let accepted = match ws_proto::handshake::RequestHead::parse(&head) {
        Ok(Some((_, req))) => ws_proto::handshake::validate_request(&req),
        _ => return,
    };
    let Ok(accept) = accepted else { return };
    if stream.write_all(&accept.response(None, None)).is_ok() {
        let n = next.fetch_add(1, Ordering::Relaxed);
        shares[n % shares.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stream);
    }
}

/// Reads up to the end of the request head: (head, bytes read after it).
fn read_head(stream: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_head_end(&buf) {
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// One keep-alive publishing connection: each POST body becomes one frame, fanned out by
/// every writer before the next request is read (so publishes keep their order).
fn publisher(mut stream: TcpStream, mut buf: Vec<u8>, writers: &[mpsc::Sender<Job>]) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let whole = find_head_end(&buf)
            .map(|end| (end, content_length(&buf[..end])))
            .filter(|(end, len)| buf.len() >= end + len);
        let Some((end, len)) = whole else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let body: Vec<u8> = buf.drain(..end + len).skip(end).collect();
        let msg = match String::from_utf8(body) {
            Ok(text) => Message::text(text),
            Err(e) => Message::binary(e.into_bytes()),
        };
        let frame = PreparedMessage::new(msg).plain_frame().clone();
        let (done_tx, done) = mpsc::channel();
        for w in writers {
            let _ = w.send((frame.clone(), done_tx.clone()));
        }
        drop(done_tx);
        // Answered before the writes finish, as a server that queues would.
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
        for () in done {}
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_that_closed_are_pruned_and_open_ones_kept() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (gone, kept) = (TcpStream::connect(addr)?, TcpStream::connect(addr)?);
        let (first, _) = listener.accept()?;
        let (second, _) = listener.accept()?;
        drop(gone);
        // Wait for the closed client's end of stream to reach its server side.
        let mut probe = first.try_clone()?;
        probe.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        assert_eq!(probe.read(&mut [0u8; 1])?, 0);
        let share = Share::default();
        share
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([first, second]);
        assert_eq!(prune_closed(std::slice::from_ref(&share)), 1);
        assert_eq!(
            share.lock().unwrap_or_else(PoisonError::into_inner).len(),
            1
        );
        drop(kept);
        Ok(())
    }

    #[test]
    fn content_length_is_found_case_insensitively() {
        let head = b"POST /pub HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 12\r\n\r\n";
        assert_eq!(content_length(head), 12);
        assert_eq!(content_length(b"POST / HTTP/1.1\r\n\r\n"), 0);
        assert_eq!(find_head_end(head), Some(head.len()));
    }
}
