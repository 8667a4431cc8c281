//! The byte-at-a-time parser of commit 2d7c330, kept unchanged as an oracle: the
//! differential test (`tests/same_as_reference.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/sse_parser.rs`) check the parser against it, and the `parse_bench`
//! example times both. Not part of the library.
#![allow(dead_code)]

use std::collections::VecDeque;

use sse_proto::{Error, Event};

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
