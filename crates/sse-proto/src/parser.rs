//! Reading an event stream as EventSource does (HTML §9.2.6, "Interpreting an event
//! stream"), incrementally.

use std::borrow::Cow;
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

/// One dispatched event, borrowed: what [`Parser::feed`] hands its callback, read in place
/// from the input where the event's lines were complete in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type: the `event:` field, or `message` without one.
    pub event: &'a str,
    /// The data lines joined with LF.
    pub data: &'a str,
    /// The last event id seen on the stream so far (what `Last-Event-ID` would carry).
    pub last_event_id: &'a str,
}

/// How many bytes of handed-back events ([`Parser::recycle`]) a parser keeps for reuse:
/// about one 16 KiB read's worth of small events, so that a load generator's thousands of
/// parsers stay small.
const SPARE_BYTES: usize = 16 * 1024;

/// An incremental parser. Feed bytes with [`Parser::handle_input`] and take owned events
/// with [`Parser::poll_event`] (optionally handing them back with [`Parser::recycle`] so the
/// next events reuse their buffers); or, with no copy at all, [`Parser::feed`] hands each
/// event to a callback as it completes. Memory is bounded by the limit given to
/// [`Parser::new`] (the pending line plus the pending event's data), the events not yet
/// polled, and at most 16 KiB of recycled buffers.
///
/// Complete lines are read straight from the input, and a field whose line is complete in
/// the input is only noted (where it lies) until the event is dispatched or the input ends;
/// only what outlives the input is copied. After an error the stream is broken: drop the
/// parser.
#[derive(Debug)]
pub struct Parser {
    fields: Fields,
    queue: Queue,
}

/// The interpretation state, kept between inputs.
#[derive(Debug)]
struct Fields {
    limit: usize,
    /// The start of a line begun in an earlier input (or the held bytes of a maybe-BOM).
    line: Vec<u8>,
    /// The previous byte was CR: an LF now ends nothing (CRLF is one line end).
    after_cr: bool,
    /// Nothing read yet: a leading BOM is dropped.
    at_start: bool,
    /// The data buffer, each line followed by LF (empty while the event's only data line
    /// so far is noted instead, see [`Noted`]).
    data: String,
    event_type: String,
    id_buffer: String,
    last_event_id: String,
    retry: Option<u64>,
}

/// A complete line: in the input (its fields can be noted), or assembled from a line begun
/// in an earlier input (only ever the input's first line).
enum Line<'a, 'l> {
    In(&'a [u8]),
    Assembled(&'l [u8]),
}

/// Field values that lie in the current input `'a` (valid UTF-8) and have not been copied;
/// each stands in for its buffer in [`Fields`]. Lives for one [`Fields::feed`] call, which
/// copies what is left into the buffers before the input goes.
#[derive(Debug, Default)]
struct Noted<'a> {
    /// The event's only data line so far (the buffer is empty meanwhile).
    data: Option<&'a str>,
    event_type: Option<&'a str>,
    id_buffer: Option<&'a str>,
    last_event_id: Option<&'a str>,
}

/// Owned events not yet polled, and recycled ones whose buffers the next dispatches fill.
#[derive(Debug, Default)]
struct Queue {
    ready: VecDeque<Event>,
    spare: Vec<Event>,
    spare_bytes: usize,
}

impl Parser {
    /// A parser that refuses events (or lines) of more than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Parser {
            fields: Fields {
                limit,
                line: Vec::new(),
                after_cr: false,
                at_start: true,
                data: String::new(),
                event_type: String::new(),
                id_buffer: String::new(),
                last_event_id: String::new(),
                retry: None,
            },
            queue: Queue::default(),
        }
    }

    /// Reads more of the stream; its complete events wait for [`Parser::poll_event`].
    pub fn handle_input(&mut self, input: &[u8]) -> Result<(), Error> {
        let queue = &mut self.queue;
        self.fields.feed(input, |event| queue.push(event))
    }

    /// Reads more of the stream and hands each event it completes to `on_event`, in order,
    /// without copying it: the borrowed text lives in `input` or in the parser. Events of
    /// earlier [`Parser::handle_input`] calls stay queued for [`Parser::poll_event`].
    pub fn feed(&mut self, input: &[u8], on_event: impl FnMut(EventRef<'_>)) -> Result<(), Error> {
        self.fields.feed(input, on_event)
    }

    /// The next dispatched event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.queue.ready.pop_front()
    }

    /// Hands back a polled event the caller is done with: the next events are written into
    /// its buffers instead of new ones (no allocation per event once warm). Optional; beyond
    /// 16 KiB of kept buffers, the event is dropped.
    pub fn recycle(&mut self, event: Event) {
        let q = &mut self.queue;
        let bytes = footprint(&event);
        if q.spare_bytes + bytes <= SPARE_BYTES {
            q.spare_bytes += bytes;
            q.spare.push(event);
        }
    }

    /// The reconnection delay the stream asked for (`retry:`), in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.fields.retry
    }

    /// The last event id so far.
    pub fn last_event_id(&self) -> &str {
        &self.fields.last_event_id
    }
}

impl Queue {
    fn push(&mut self, e: EventRef<'_>) {
        let mut event = match self.spare.pop() {
            Some(event) => {
                self.spare_bytes -= footprint(&event);
                event
            }
            None => Event {
                event: String::new(),
                // The next event's data likely has this one's size: one allocation, not a
                // doubling series.
                data: String::with_capacity((e.data.len() + 1).min(4096)),
                last_event_id: String::new(),
            },
        };
        replace(&mut event.event, e.event);
        replace(&mut event.data, e.data);
        replace(&mut event.last_event_id, e.last_event_id);
        self.ready.push_back(event);
    }
}

impl Fields {
    fn feed(
        &mut self,
        mut input: &[u8],
        mut on_event: impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        if self.at_start {
            match self.skip_bom(input) {
                Some(rest) => input = rest,
                None => return Ok(()),
            }
        }
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        let mut noted = Noted::default();
        let result = self.lines(input, &mut noted, &mut on_event);
        // What was only noted is copied now: the input is gone after this call.
        self.keep_noted(noted);
        result
    }

    fn lines<'a>(
        &mut self,
        input: &'a [u8],
        noted: &mut Noted<'a>,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        let mut start = 0;
        while let Some(len) = find_line_end(&input[start..]) {
            let end = start + len;
            self.check_room(noted, len)?;
            if self.line.is_empty() {
                self.handle_line(noted, Line::In(&input[start..end]), on_event)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[start..end]);
                let handled = self.handle_line(noted, Line::Assembled(&line), on_event);
                line.clear();
                self.line = line;
                handled?;
            }
            start = end + 1;
            if input[end] == b'\r' {
                // CRLF is one line end, its LF maybe in the next input.
                match input.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        let rest = &input[start..];
        self.check_room(noted, rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// Drops a leading BOM, which may arrive split: its first bytes are held in `line` until
    /// decided. `None` while still undecided (the whole input was held).
    fn skip_bom<'a>(&mut self, input: &'a [u8]) -> Option<&'a [u8]> {
        if input.is_empty() {
            return Some(input);
        }
        let bom = [0xEF, 0xBB, 0xBF];
        let want = &bom[self.line.len()..];
        let take = want.len().min(input.len());
        self.at_start = false;
        if input[..take] != want[..take] {
            // Not a BOM after all: what was held is the line's start.
            return Some(input);
        }
        self.line.extend_from_slice(&input[..take]);
        if self.line.len() < bom.len() {
            self.at_start = true;
            return None;
        }
        self.line.clear();
        Some(&input[take..])
    }

    /// The pending event's data so far, in bytes (each line with its LF).
    fn data_len(&self, noted: &Noted<'_>) -> usize {
        self.data.len() + noted.data.map_or(0, |d| d.len() + 1)
    }

    /// Refuses `more` bytes of the current line when the line and the pending data would pass
    /// the limit.
    fn check_room(&self, noted: &Noted<'_>, more: usize) -> Result<(), Error> {
        if more > 0 && self.line.len() + more + self.data_len(noted) > self.limit {
            return Err(Error::TooLong(self.limit));
        }
        Ok(())
    }

    /// One line; a field of a line in the input is noted rather than copied.
    fn handle_line<'a>(
        &mut self,
        noted: &mut Noted<'a>,
        line: Line<'a, '_>,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        let (in_input, line) = match line {
            Line::In(line) => (Some(line), line),
            Line::Assembled(line) => (None, line),
        };
        let Some(&first) = line.first() else {
            self.dispatch(noted, on_event);
            return Ok(());
        };
        if first == b':' {
            return Ok(());
        }
        let (name, value_start) = match line.iter().position(|&b| b == b':') {
            Some(i) => (
                &line[..i],
                i + 1 + usize::from(line.get(i + 1) == Some(&b' ')),
            ),
            None => (line, line.len()),
        };
        let value = &line[value_start..];
        // The value as it lies in the input, if it does and needs no repair.
        let in_place = || match text(&in_input?[value_start..]) {
            Cow::Borrowed(value) => Some(value),
            Cow::Owned(_) => None,
        };
        match name {
            b"event" => {
                noted.event_type = in_place();
                if noted.event_type.is_none() {
                    replace(&mut self.event_type, &text(value));
                }
            }
            b"data" => {
                let noting = in_place();
                let value = noting.map_or_else(|| text(value), Cow::Borrowed);
                if self.data_len(noted) + value.len() + 1 > self.limit {
                    return Err(Error::TooLong(self.limit));
                }
                match noting {
                    Some(data) if self.data.is_empty() && noted.data.is_none() => {
                        noted.data = Some(data);
                    }
                    _ => {
                        self.keep_data(noted);
                        self.data.push_str(&value);
                        self.data.push('\n');
                    }
                }
            }
            b"id" if !value.contains(&0) => {
                noted.id_buffer = in_place();
                if noted.id_buffer.is_none() {
                    replace(&mut self.id_buffer, &text(value));
                }
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry = text(value).parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    /// Copies a noted data line into the buffer, before a line that is not noted joins it.
    fn keep_data(&mut self, noted: &mut Noted<'_>) {
        if let Some(data) = noted.data.take() {
            self.data.push_str(data);
            self.data.push('\n');
        }
    }

    fn dispatch(&mut self, noted: &mut Noted<'_>, on_event: &mut impl FnMut(EventRef<'_>)) {
        noted.last_event_id = noted.id_buffer;
        if noted.id_buffer.is_none() && self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        let data = match noted.data.take() {
            Some(data) => data,
            None if self.data.is_empty() => {
                noted.event_type = None;
                self.event_type.clear();
                return;
            }
            // Without its last LF.
            None => &self.data[..self.data.len() - 1],
        };
        let event = noted.event_type.take().unwrap_or(&self.event_type);
        let event = if event.is_empty() { "message" } else { event };
        on_event(EventRef {
            event,
            data,
            last_event_id: noted.last_event_id.unwrap_or(&self.last_event_id),
        });
        self.data.clear();
        self.event_type.clear();
    }

    /// Copies every noted value into its buffer: the input they lie in is about to go.
    fn keep_noted(&mut self, mut noted: Noted<'_>) {
        self.keep_data(&mut noted);
        for (value, buffer) in [
            (noted.event_type, &mut self.event_type),
            (noted.id_buffer, &mut self.id_buffer),
            (noted.last_event_id, &mut self.last_event_id),
        ] {
            if let Some(value) = value {
                replace(buffer, value);
            }
        }
    }
}

/// Where the first CR or LF of `bytes` is: a block of bytes at a time without an early
/// exit, which the compiler turns into vector compares, then the position within that block.
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 16;
    let is_end = |b: &u8| *b == b'\n' || *b == b'\r';
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut start = 0;
    for block in &mut blocks {
        if block.iter().fold(false, |seen, b| seen | is_end(b)) {
            return block.iter().position(is_end).map(|i| start + i);
        }
        start += BLOCK;
    }
    blocks
        .remainder()
        .iter()
        .position(is_end)
        .map(|i| start + i)
}

/// A field value as text: borrowed when valid UTF-8 (the usual case), else with U+FFFD for
/// each invalid sequence.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Sets `buffer` to `value`, keeping its capacity.
fn replace(buffer: &mut String, value: &str) {
    buffer.clear();
    buffer.push_str(value);
}

/// The bytes a recycled event keeps.
fn footprint(event: &Event) -> usize {
    std::mem::size_of::<Event>()
        + event.event.capacity()
        + event.data.capacity()
        + event.last_event_id.capacity()
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

    /// wspush-like events and every other field kind, as one feed and split anywhere.
    const STREAM: &[u8] = b"retry: 2000\nid: since=E:0:news\n\n: ping\r\n\r\
        event: news\nid: since=661939e22e37e.211e.0:1\ndata: {\"seq\":1}\n\n\
        data: a\r\ndata:b\r\rid\ndata\nevent: gap\ndata: \xC3\xA9\xFF\n\n";

    fn stream_events() -> Vec<Event> {
        vec![
            msg("news", "{\"seq\":1}", "since=661939e22e37e.211e.0:1"),
            msg("message", "a\nb", "since=661939e22e37e.211e.0:1"),
            msg("gap", "\n\u{e9}\u{FFFD}", ""),
        ]
    }

    fn parse_recycling(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new(1 << 16);
        let mut events = Vec::new();
        for c in chunks {
            p.handle_input(c).unwrap();
            while let Some(e) = p.poll_event() {
                events.push(e.clone());
                p.recycle(e);
            }
        }
        events
    }

    #[test]
    fn a_stream_split_at_any_two_points_reads_as_one_feed() {
        let want = stream_events();
        assert_eq!(parse_all(&[STREAM]).0, want);
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let chunks = [&STREAM[..i], &STREAM[i..j], &STREAM[j..]];
                assert_eq!(parse_all(&chunks).0, want, "split at {i} and {j}");
                assert_eq!(parse_recycling(&chunks), want, "split at {i} and {j}");
            }
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_recycling(&bytes), want);
    }

    #[test]
    fn recycled_events_lend_their_buffers_to_the_next() {
        let mut p = Parser::new(1 << 16);
        p.handle_input(b"event: gap\nid: 1\ndata: one\n\n").unwrap();
        let first = p.poll_event().unwrap();
        let (name, id) = (first.event.as_ptr(), first.last_event_id.as_ptr());
        p.recycle(first);
        p.handle_input(b"data: two\n\n").unwrap();
        let second = p.poll_event().unwrap();
        // The recycled type is cleared, not kept: no `event:` line means `message`.
        assert_eq!(second, msg("message", "two", "1"));
        assert_eq!(second.event.as_ptr(), name);
        assert_eq!(second.last_event_id.as_ptr(), id);
    }

    #[test]
    fn the_limit_holds_at_its_edge_wherever_the_line_is_split() {
        // `data: 0123` is 10 bytes: a limit of 10 takes it, 9 refuses it; then 5 bytes of
        // data (with its LF) are pending and count against the next line (the reference
        // parser in tests/ agrees on every edge).
        let stream = b"data: 0123\ndata";
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            let mut p = Parser::new(10);
            p.handle_input(a).unwrap();
            assert_eq!(p.handle_input(b), Ok(()), "split at {split}");
            let mut p = Parser::new(9);
            let refused = p.handle_input(a).and_then(|()| p.handle_input(b));
            assert_eq!(refused, Err(Error::TooLong(9)), "split at {split}");
            // `datax` and the pending 5 make 10: still in; one more byte is not.
            let mut p = Parser::new(10);
            let taken = p.handle_input(a).and_then(|()| p.handle_input(b));
            assert_eq!(taken.and_then(|()| p.handle_input(b"x")), Ok(()));
            assert_eq!(p.handle_input(b"y"), Err(Error::TooLong(10)));
        }
    }
}
