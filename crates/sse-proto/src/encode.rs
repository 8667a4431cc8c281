//! Writing events, comments and the reconnection delay.

use bytes::{BufMut, BytesMut};

use crate::Error;

/// Appends one event: `id:` (if any), `event:` (if any), then `data` as one `data:` line per
/// line, and the blank line that dispatches it. An empty `data` still dispatches (one empty
/// `data:` line). `event` and `id` must be single lines; `id` must not hold NUL.
pub fn event(
    out: &mut BytesMut,
    event: Option<&str>,
    id: Option<&str>,
    data: &str,
) -> Result<(), Error> {
    if let Some(id) = id {
        check_line("an event id", id)?;
        if id.contains('\0') {
            return Err(Error::NulInId);
        }
    }
    if let Some(name) = event {
        check_line("an event name", name)?;
    }
    out.reserve(data.len() + 16 + id.map_or(0, str::len) + event.map_or(0, str::len));
    if let Some(id) = id {
        field(out, b"id", id.as_bytes());
    }
    if let Some(name) = event {
        field(out, b"event", name.as_bytes());
    }
    data_lines(out, data);
    out.put_u8(b'\n');
    Ok(())
}

/// Appends only the `data:` lines of `data` (no blank line): for callers that frame an
/// event's fields themselves.
pub fn data_lines(out: &mut BytesMut, data: &str) {
    // HTML §9.2.5: lines end at CRLF, LF or CR; each becomes its own `data:` field, and
    // the parser joins them with LF.
    let bytes = data.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                field(out, b"data", &bytes[start..i]);
                start = i + 1;
            }
            b'\r' => {
                field(out, b"data", &bytes[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    field(out, b"data", &bytes[start..]);
}

/// Appends a comment line (`: text`), which every parser ignores: a heartbeat that keeps
/// proxies from timing the stream out. Line breaks in `text` become spaces.
pub fn comment(out: &mut BytesMut, text: &str) {
    out.put_u8(b':');
    if !text.is_empty() {
        out.put_u8(b' ');
        for &b in text.as_bytes() {
            out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
    }
    out.put_slice(b"\n\n");
}

/// Appends the reconnection delay an EventSource waits before it reconnects by itself.
pub fn retry(out: &mut BytesMut, millis: u64) {
    out.put_slice(b"retry: ");
    out.put_slice(millis.to_string().as_bytes());
    out.put_slice(b"\n\n");
}

fn field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_u8(b':');
    // One space after the colon is stripped by the parser; a value starting with a space
    // keeps it because we always write the separating one.
    if !value.is_empty() {
        out.put_u8(b' ');
        out.put_slice(value);
    }
    out.put_u8(b'\n');
}

fn check_line(what: &'static str, s: &str) -> Result<(), Error> {
    match s.contains(['\r', '\n']) {
        true => Err(Error::LineBreak(what)),
        false => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ev(name: Option<&str>, id: Option<&str>, data: &str) -> String {
        let mut out = BytesMut::new();
        event(&mut out, name, id, data).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn an_event_is_its_fields_then_a_blank_line() {
        assert_eq!(ev(None, None, "hi"), "data: hi\n\n");
        assert_eq!(
            ev(Some("news"), Some("e:3"), "{\"a\":1}"),
            "id: e:3\nevent: news\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(ev(None, None, ""), "data:\n\n");
    }

    #[test]
    fn every_line_end_of_the_payload_starts_a_data_line() {
        assert_eq!(
            ev(None, None, "a\nb\r\nc\rd\n"),
            "data: a\ndata: b\ndata: c\ndata: d\ndata:\n\n"
        );
        assert_eq!(ev(None, None, " lead"), "data:  lead\n\n");
    }

    #[test]
    fn names_and_ids_cannot_inject_fields() {
        let mut out = BytesMut::new();
        assert_eq!(
            event(&mut out, Some("a\ndata: x"), None, "y"),
            Err(Error::LineBreak("an event name"))
        );
        assert_eq!(
            event(&mut out, None, Some("1\r"), "y"),
            Err(Error::LineBreak("an event id"))
        );
        assert_eq!(event(&mut out, None, Some("1\0"), "y"), Err(Error::NulInId));
        assert!(out.is_empty(), "nothing written on refusal");
    }

    #[test]
    fn comments_and_retry() {
        let mut out = BytesMut::new();
        comment(&mut out, "");
        comment(&mut out, "ping\nx");
        retry(&mut out, 3000);
        assert_eq!(&out[..], b":\n\n: ping x\n\nretry: 3000\n\n");
    }
}
