//! Reading an event stream as EventSource does (HTML §9.2.6, "Interpreting an event
//! stream"), incrementally.

use std::collections::VecDeque;

use crate::Error;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type: the `event:` field, or `message` without one.
    pub event: String,
    /// The data lines joined with LF.
    pub data: String,
    /// The last event id seen on the stream so far (what `Last-Event-ID` would carry).
    pub last_event_id: String,
}

/// An incremental parser: feed bytes with [`Parser::handle_input`], take events with
/// [`Parser::poll_event`]. Memory is bounded by the limit given to [`Parser::new`] (the
/// pending line plus the pending event's data).
#[derive(Debug)]
pub struct Parser {
    limit: usize,
    line: Vec<u8>,
    /// The previous byte was CR: an LF now ends nothing (CRLF is one line end).
    after_cr: bool,
    /// Nothing read yet: a leading BOM is dropped.
    at_start: bool,
    data: String,
    event_type: String,
    id_buffer: String,
    last_event_id: String,
    retry: Option<u64>,
    ready: VecDeque<Event>,
}

impl Parser {
    /// A parser that refuses events (or lines) of more than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Parser {
            limit,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            ready: VecDeque::new(),
        }
    }

    /// Reads more of the stream.
    pub fn handle_input(&mut self, mut input: &[u8]) -> Result<(), Error> {
        if self.at_start && !input.is_empty() {
            let bom = [0xEF, 0xBB, 0xBF];
            let n = self.line.len();
            // The BOM may arrive split: hold its first bytes in `line` until decided.
            let want = &bom[n..];
            let take = want.len().min(input.len());
            if input[..take] == want[..take] {
                self.line.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.line.len() < bom.len() {
                    return Ok(());
                }
                self.line.clear();
            } else {
                // Not a BOM after all: what was held is the line's start.
            }
            self.at_start = false;
        }
        for &b in input {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.handle_line(&line)?;
                    self.line = line;
                    self.line.clear();
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() + self.data.len() >= self.limit {
                        return Err(Error::TooLong(self.limit));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// The next dispatched event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    /// The reconnection delay the stream asked for (`retry:`), in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The last event id so far.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    fn handle_line(&mut self, line: &[u8]) -> Result<(), Error> {
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => self.event_type = value.into_owned(),
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(Error::TooLong(self.limit));
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if !value.contains('\0') => self.id_buffer = value.into_owned(),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        self.last_event_id.clone_from(&self.id_buffer);
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        self.data.pop();
        let event = match self.event_type.is_empty() {
            true => "message".to_owned(),
            false => std::mem::take(&mut self.event_type),
        };
        self.ready.push_back(Event {
            event,
            data: std::mem::take(&mut self.data),
            last_event_id: self.last_event_id.clone(),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::encode;

    fn parse_all(chunks: &[&[u8]]) -> (Vec<Event>, Parser) {
        let mut p = Parser::new(1 << 16);
        let mut events = Vec::new();
        for c in chunks {
            p.handle_input(c).unwrap();
            while let Some(e) = p.poll_event() {
                events.push(e);
            }
        }
        (events, p)
    }

    fn msg(event: &str, data: &str, id: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
            last_event_id: id.into(),
        }
    }

    #[test]
    fn the_standards_examples() {
        // HTML §9.2.6 examples: a comment, multi-line data, ids, a trailing partial event.
        let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n";
        let (events, p) = parse_all(&[stream]);
        assert_eq!(
            events,
            [
                msg("message", "first event", "1"),
                msg("message", "second event", ""),
            ]
        );
        assert_eq!(p.last_event_id(), "");
        let (events, _) = parse_all(&[b"data\n\ndata\ndata\n\ndata:\n"]);
        assert_eq!(events, [msg("message", "", ""), msg("message", "\n", "")]);
    }

    #[test]
    fn every_line_end_and_every_split_point() {
        let stream = b"\xEF\xBB\xBFevent: a\r\ndata: x\rdata: y\n\r\nid: 7\ndata: z\n\n";
        let want = [msg("a", "x\ny", ""), msg("message", "z", "7")];
        for split in 0..stream.len() {
            let (events, _) = parse_all(&[&stream[..split], &stream[split..]]);
            assert_eq!(events, want, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_all(&bytes).0, want);
    }

    #[test]
    fn encoder_output_reads_back() {
        let mut out = BytesMut::new();
        encode::retry(&mut out, 2500);
        encode::comment(&mut out, "hb");
        encode::event(&mut out, Some("news"), Some("e:1"), "a\r\nb\rc\n").unwrap();
        encode::event(&mut out, None, None, " spaced").unwrap();
        let (events, p) = parse_all(&[&out]);
        assert_eq!(
            events,
            [
                msg("news", "a\nb\nc\n", "e:1"),
                msg("message", " spaced", "e:1")
            ]
        );
        assert_eq!(p.retry(), Some(2500));
    }

    #[test]
    fn an_id_alone_moves_the_last_event_id_without_an_event() {
        let (events, p) = parse_all(&[b"id: 5\n\ndata: a\n\n"]);
        assert_eq!(events, [msg("message", "a", "5")]);
        assert_eq!(p.last_event_id(), "5");
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = Parser::new(8);
        assert_eq!(
            p.handle_input(b"data: 0123456789\n"),
            Err(Error::TooLong(8))
        );
        // The limit counts the pending line and the event's data so far.
        let mut p = Parser::new(12);
        p.handle_input(b"data: 0123\n").unwrap();
        assert_eq!(p.handle_input(b"data: 4567\n"), Err(Error::TooLong(12)));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let (events, _) = parse_all(&[b"data: \xFF\n\n"]);
        assert_eq!(events[0].data, "\u{FFFD}");
    }
}
