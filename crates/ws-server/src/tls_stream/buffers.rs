//! The byte buffers of [`TlsStream`](super::TlsStream): the per-thread scratch every
//! connection borrows for one call, and the per-connection remainders kept only while
//! something is pending (a record half-received, ciphertext the socket did not take yet,
//! plaintext the reader's buffer had no room for). An idle connection owns none of them.

use std::cell::RefCell;

/// The largest TLS record on the wire: 5 header bytes and 2^14 + 2048 of ciphertext
/// (RFC 5246 §6.2.3; TLS 1.3 allows less, RFC 8446 §5.2). A read buffer of at least this
/// size always holds a whole record, so the deframer can always make progress.
pub(super) const MAX_RECORD: usize = 5 + (1 << 14) + 2048;

/// Bytes of the per-thread read buffer: a whole record and some of the next.
pub(super) const READ_BUF: usize = 20 * 1024;

/// Plaintext taken per `poll_write`: two full records. What the socket does not take of its
/// ciphertext is what a blocked connection keeps (beside its own write queue).
pub(super) const MAX_WRITE: usize = 32 * 1024;

/// Ciphertext room for `MAX_WRITE` of plaintext (record headers, tags, TLS 1.3's content
/// type; grown if rustls ever asks for more).
pub(super) const CIPHER_BUF: usize = MAX_WRITE + 4 * 256;

/// One thread's scratch, lent to one call at a time.
#[derive(Default)]
pub(super) struct Scratch {
    /// Ciphertext read from the socket (zeroed once, `READ_BUF` long); taken out while a
    /// call uses it (see [`take_read`]).
    read: Vec<u8>,
    /// The slices of one vectored write, made contiguous so they share records.
    pub(super) plain: Vec<u8>,
    /// Ciphertext encrypted and not yet handed to the socket.
    pub(super) cipher: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Runs `f` with this thread's write scratch (a fresh one if it is lent out already, which
/// the stream's own calls never do: they do not nest).
pub(super) fn with_write_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => {
            // `cipher` is sized by its user: rustls's encrypter writes into a zeroed
            // buffer, our record layer appends to an empty one.
            if s.plain.len() < MAX_WRITE {
                s.plain.resize(MAX_WRITE, 0);
            }
            f(&mut s)
        }
        Err(_) => {
            let mut s = Scratch {
                read: Vec::new(),
                plain: vec![0; MAX_WRITE],
                cipher: vec![0; CIPHER_BUF],
            };
            f(&mut s)
        }
    })
}

/// The ciphertext one call works on: `buf[start..end]` is received and not yet processed.
#[derive(Debug)]
pub(super) struct Incoming {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Incoming {
    /// This thread's read buffer (or a new one), with `pending` (what the connection kept
    /// from its last call) at its front.
    pub(super) fn take(pending: &[u8]) -> Self {
        let mut buf = SCRATCH
            .with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut s.read)))
            .unwrap_or_default();
        let len = READ_BUF.max(pending.len());
        if buf.len() < len {
            buf.resize(len, 0);
        }
        buf[..pending.len()].copy_from_slice(pending);
        Self {
            buf,
            start: 0,
            end: pending.len(),
        }
    }

    /// Gives the buffer back to the thread and returns what the connection must keep: the
    /// bytes not processed yet, in an allocation of their own size (none when empty).
    pub(super) fn give_back(self) -> Vec<u8> {
        let rest = self.buf[self.start..self.end].to_vec();
        let mut buf = self.buf;
        if buf.len() == READ_BUF {
            SCRATCH.with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    if s.read.is_empty() {
                        s.read = std::mem::take(&mut buf);
                    }
                }
            });
        }
        rest
    }

    /// The bytes received and not yet processed.
    pub(super) fn filled_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` processed bytes from the front.
    pub(super) fn discard(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: the pending bytes move to the front first, so a whole record
    /// always fits (`READ_BUF` > `MAX_RECORD`, and the deframer consumes every complete
    /// record before it asks for more, so what is pending then is less than one).
    pub(super) fn spare_mut(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // More than a record pending and still no progress: give the deframer room to
            // report what is wrong rather than read nothing.
            self.buf.resize(self.buf.len() + MAX_RECORD, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`Incoming::spare_mut`].
    pub(super) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }
}

/// Ciphertext encoded but not yet written: `buf[pos..]`. Unallocated once written.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    buf: Vec<u8>,
    pos: usize,
}

impl Outgoing {
    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub(super) fn unwritten(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// `n` bytes were written; frees the buffer once everything is.
    pub(super) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.is_empty() {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// Appends bytes to write after everything already here.
    pub(super) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer, for an encoder to append to (after everything already here).
    pub(super) fn back(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// `len` zeroed bytes at the back for an encoder to fill; `truncate_to` undoes unused ones.
    pub(super) fn grow(&mut self, len: usize) -> (usize, &mut [u8]) {
        let at = self.buf.len();
        self.buf.resize(at + len, 0);
        (at, &mut self.buf[at..])
    }

    pub(super) fn truncate_to(&mut self, len: usize) {
        self.buf.truncate(len);
        if self.is_empty() {
            self.advance(0);
        }
    }
}

/// Decrypted bytes the reader's buffer could not take: `buf[pos..]`. Unallocated once read.
#[derive(Debug, Default)]
pub(super) struct Plain {
    buf: Vec<u8>,
    pos: usize,
}

impl Plain {
    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub(super) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Copies as much as `out` takes; `true` if anything was copied.
    pub(super) fn drain_into(&mut self, out: &mut tokio::io::ReadBuf<'_>) -> bool {
        let n = out.remaining().min(self.buf.len() - self.pos);
        if n == 0 {
            return false;
        }
        out.put_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.is_empty() {
            self.buf = Vec::new();
            self.pos = 0;
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn incoming_keeps_only_what_is_pending() {
        let mut inc = Incoming::take(b"abc");
        assert_eq!(inc.filled_mut(), b"abc");
        let spare = inc.spare_mut();
        spare[..2].copy_from_slice(b"de");
        inc.filled(2);
        inc.discard(4);
        assert_eq!(inc.filled_mut(), b"e");
        let kept = inc.give_back();
        assert_eq!(kept, b"e");
        assert_eq!(kept.capacity(), 1);
        let inc = Incoming::take(&[]);
        assert!(inc.is_empty());
        assert!(inc.give_back().is_empty());
    }

    #[test]
    fn incoming_always_has_room_for_a_record() {
        // The most a call can be left with once every complete record is processed.
        let pending = vec![1u8; MAX_RECORD - 1];
        let mut inc = Incoming::take(&pending);
        inc.discard(0);
        assert!(pending.len() + inc.spare_mut().len() >= MAX_RECORD);
        // Processed bytes at the front are moved out of the way before a read.
        let n = inc.spare_mut().len();
        inc.filled(n);
        inc.discard(MAX_RECORD);
        assert!(inc.spare_mut().len() >= MAX_RECORD);
    }

    #[test]
    fn outgoing_and_plain_free_when_done() {
        let mut out = Outgoing::default();
        out.extend(b"hello");
        out.advance(2);
        assert_eq!(out.unwritten(), b"llo");
        out.advance(3);
        assert!(out.is_empty());
        assert_eq!(out.buf.capacity(), 0);
        let (at, room) = out.grow(8);
        room[..3].copy_from_slice(b"xyz");
        out.truncate_to(at + 3);
        assert_eq!(out.unwritten(), b"xyz");

        let mut plain = Plain::default();
        plain.extend(b"0123456789");
        let mut mem = [0u8; 4];
        let mut rb = tokio::io::ReadBuf::new(&mut mem);
        assert!(plain.drain_into(&mut rb));
        assert_eq!(rb.filled(), b"0123");
        let mut mem = [0u8; 16];
        let mut rb = tokio::io::ReadBuf::new(&mut mem);
        assert!(plain.drain_into(&mut rb));
        assert_eq!(rb.filled(), b"456789");
        assert!(plain.is_empty());
        assert_eq!(plain.buf.capacity(), 0);
    }
}
