//! Incremental UTF-8 validation across fragment (and read) boundaries.
//!
//! RFC 6455 §8.1: an endpoint receiving a text message that is not valid UTF-8 MUST
//! fail the connection. We fail as soon as the bytes seen so far cannot be the prefix
//! of a valid string, not at the end of the message: simdutf8's `compat` API tells an
//! incomplete tail (`error_len() == None`) from an invalid sequence.

use simdutf8::compat::from_utf8;

/// The UTF-8 validation state of one text message in progress: at most three bytes of
/// an incomplete code point carried over to the next piece.
#[derive(Debug, Default, Clone, Copy)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The bytes seen so far can no longer be valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate the next piece of the message.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            input = self.complete_pending(input)?;
            if self.pending_len > 0 {
                return Ok(());
            }
        }
        match from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                // An incomplete code point at the end (at most 3 bytes): keep it.
                let tail = &input[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Whether the message may end here (no incomplete code point pending).
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// Complete the carried-over code point with bytes from `input`; returns the rest.
    fn complete_pending<'a>(&mut self, input: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let have = usize::from(self.pending_len);
        let take = input.len().min(4 - have);
        let mut buf = self.pending;
        buf[have..have + take].copy_from_slice(&input[..take]);
        let joined = &buf[..have + take];
        match from_utf8(joined) {
            Ok(_) => {
                self.pending_len = 0;
                Ok(&input[take..])
            }
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) if e.valid_up_to() >= have => {
                // The pending code point completed; the rest starts a new one.
                self.pending_len = 0;
                Ok(&input[e.valid_up_to() - have..])
            }
            Err(_) => {
                // Still a valid prefix, and `input` was too short to finish it.
                self.pending = buf;
                self.pending_len = joined.len() as u8;
                Ok(&[])
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn feed_all(pieces: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for p in pieces {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn split_anywhere() {
        let s = "κόσμε €𝄞 hello".as_bytes();
        for i in 0..=s.len() {
            for j in i..=s.len() {
                assert_eq!(feed_all(&[&s[..i], &s[i..j], &s[j..]]), Ok(()), "{i} {j}");
            }
        }
        // Byte by byte.
        let pieces: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(feed_all(&pieces), Ok(()));
    }

    #[test]
    fn fails_fast_at_surrogate() {
        // Autobahn 6.4.x: κόσμε followed by ED A0 80 (a surrogate). ED A0 is already
        // impossible, so the failure comes before the message (and the 80) arrives.
        let mut v = Utf8Validator::new();
        v.feed(&[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
        ])
        .unwrap();
        v.feed(&[0xed]).unwrap();
        assert_eq!(v.feed(&[0xa0]), Err(InvalidUtf8));
        // In one piece as well.
        let mut v = Utf8Validator::new();
        let bytes = [
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0,
        ];
        assert_eq!(v.feed(&bytes), Err(InvalidUtf8));
    }

    #[test]
    fn incomplete_at_end_fails_on_finish() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xe2, 0x82]).unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    #[test]
    fn invalid_bytes() {
        for bad in [
            &[0xff][..],
            &[0xc0, 0x80],
            &[0xf4, 0x90, 0x80, 0x80],
            &[0x80],
        ] {
            assert_eq!(feed_all(&[bad]), Err(InvalidUtf8), "{bad:x?}");
        }
        // Invalid continuation after a carried lead byte.
        assert_eq!(feed_all(&[&[0xe2], &[0x41]]), Err(InvalidUtf8));
    }
}
