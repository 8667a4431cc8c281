//! The parser against the byte-at-a-time parser it replaced ([`reference`]): random streams
//! of field-like pieces, fed in random chunks under random limits, must give the same events,
//! the same error at the same point, and the same `last_event_id` and `retry`.
#![allow(clippy::unwrap_used)]

mod reference;

use sse_proto::{Error, Event, Parser};

/// Pieces a stream is made of: field names, separators, every line end, BOM bytes, invalid
/// UTF-8, NUL, digits, multi-byte text.
const PIECES: &[&[u8]] = &[
    b"data",
    b"data:",
    b"data: ",
    b"id",
    b"id: ",
    b"event",
    b"event: ",
    b"retry: ",
    b"retry:",
    b":",
    b" ",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\xEF",
    b"\xBB",
    b"\xBF",
    b"\xEF\xBB\xBF",
    b"\xFF",
    b"\0",
    b"7",
    b"123",
    b"99999999999999999999999",
    b"x",
    b"gap",
    b"\xC3\xA9",
    b"message",
    b"since=661939e22e37e.211e.0:123",
];

/// xorshift64*: a fixed seed, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// What a parser made of a stream: the events, then the error if one stopped it.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    error: Option<Error>,
    last_event_id: String,
    retry: Option<u64>,
}

/// Either parser, fed one part of a stream at a time.
trait Feed {
    /// Reads `part`; appends the events it completed to `out`.
    fn feed(&mut self, part: &[u8], out: &mut Vec<Event>) -> Result<(), Error>;
    /// The last event id and retry so far.
    fn state(&self) -> (String, Option<u64>);
}

/// The parser, handing each event back ([`Parser::recycle`]) or not.
struct Fast(Parser, bool);

impl Feed for Fast {
    fn feed(&mut self, part: &[u8], out: &mut Vec<Event>) -> Result<(), Error> {
        let fed = self.0.handle_input(part);
        while let Some(e) = self.0.poll_event() {
            out.push(e.clone());
            if self.1 {
                self.0.recycle(e);
            }
        }
        fed
    }
    fn state(&self) -> (String, Option<u64>) {
        (self.0.last_event_id().to_owned(), self.0.retry())
    }
}

/// The parser's borrowing entry point ([`Parser::feed`]): events copied out of the callback.
struct Borrowed(Parser);

impl Feed for Borrowed {
    fn feed(&mut self, part: &[u8], out: &mut Vec<Event>) -> Result<(), Error> {
        self.0.feed(part, |e| {
            out.push(Event {
                event: e.event.to_owned(),
                data: e.data.to_owned(),
                last_event_id: e.last_event_id.to_owned(),
            })
        })
    }
    fn state(&self) -> (String, Option<u64>) {
        (self.0.last_event_id().to_owned(), self.0.retry())
    }
}

impl Feed for reference::Parser {
    fn feed(&mut self, part: &[u8], out: &mut Vec<Event>) -> Result<(), Error> {
        let fed = self.handle_input(part);
        out.extend(std::iter::from_fn(|| self.poll_event()));
        fed
    }
    fn state(&self) -> (String, Option<u64>) {
        (self.last_event_id().to_owned(), self.retry())
    }
}

/// Feeds `stream` cut at `cuts` until the end or the first error.
fn run(mut parser: impl Feed, stream: &[u8], cuts: &[usize]) -> Outcome {
    let mut events = Vec::new();
    for part in pieces_of(stream, cuts) {
        if let Err(e) = parser.feed(part, &mut events) {
            let (last_event_id, retry) = (String::new(), None);
            let error = Some(e);
            return Outcome {
                events,
                error,
                last_event_id,
                retry,
            };
        }
    }
    let (last_event_id, retry) = parser.state();
    Outcome {
        events,
        error: None,
        last_event_id,
        retry,
    }
}

fn run_new(stream: &[u8], cuts: &[usize], limit: usize, recycle: bool) -> Outcome {
    run(Fast(Parser::new(limit), recycle), stream, cuts)
}

fn run_borrowed(stream: &[u8], cuts: &[usize], limit: usize) -> Outcome {
    run(Borrowed(Parser::new(limit)), stream, cuts)
}

fn run_reference(stream: &[u8], cuts: &[usize], limit: usize) -> Outcome {
    run(reference::Parser::new(limit), stream, cuts)
}

fn pieces_of<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        parts.push(&stream[at..cut]);
        at = cut;
    }
    parts.push(&stream[at..]);
    parts
}

#[test]
fn random_streams_read_as_the_reference_reads_them() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for case in 0..20_000 {
        let stream: Vec<u8> = (0..rng.below(40))
            .flat_map(|_| PIECES[rng.below(PIECES.len())].iter().copied())
            .collect();
        let mut cuts: Vec<usize> = (0..rng.below(6))
            .map(|_| rng.below(stream.len() + 1))
            .collect();
        cuts.sort_unstable();
        let limit = match rng.below(3) {
            0 => rng.below(24),
            1 => rng.below(200),
            _ => usize::MAX,
        };
        let want = run_reference(&stream, &cuts, limit);
        for recycle in [false, true] {
            let got = run_new(&stream, &cuts, limit, recycle);
            assert_eq!(
                got,
                want,
                "case {case}: stream {:?}, cuts {cuts:?}, limit {limit}, recycle {recycle}",
                String::from_utf8_lossy(&stream)
            );
        }
        assert_eq!(
            run_borrowed(&stream, &cuts, limit),
            want,
            "borrowed, case {case}: stream {:?}, cuts {cuts:?}, limit {limit}",
            String::from_utf8_lossy(&stream)
        );
    }
}

#[test]
fn every_limit_edge_reads_as_the_reference_reads_it() {
    let stream = b"\xEF\xBB\xBFdata: 0123\r\ndata\xFFxy\rid: 1\n\nevent: e\ndata: 45678\n\n";
    for limit in 0..=stream.len() {
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let want = run_reference(stream, &[i, j], limit);
                assert_eq!(
                    run_new(stream, &[i, j], limit, true),
                    want,
                    "{limit} {i} {j}"
                );
                assert_eq!(
                    run_borrowed(stream, &[i, j], limit),
                    want,
                    "borrowed {limit} {i} {j}"
                );
            }
        }
    }
}
