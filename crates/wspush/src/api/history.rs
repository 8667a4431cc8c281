//! `history`'s selection, sans-IO: from what a stream keeps ([`HistoryRead`]) to the
//! publications asked for, as Centrifugo's `limit`, `since` and `reverse` describe them.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::wire::{ApiError, to_raw};
use crate::delivery::history::HistoryRead;
use crate::delivery::payload::Payload;

/// A stream position a client holds: `{offset, epoch}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Since {
    /// The last offset (sequence number) it has.
    #[serde(default)]
    pub offset: u64,
    /// Its epoch; `""` stands for the current one.
    #[serde(default)]
    pub epoch: String,
}

/// The publications of `read` that the request asks for, each `{"data":..,"offset":N}`.
///
/// - `limit` 0: none (only the stream's position); negative: every kept one; else at
///   most that many.
/// - `since`: only those after it (`reverse`: before it). A position from another epoch,
///   beyond the stream's top, or older than what is kept (messages in between are gone)
///   is [`ApiError::Unrecoverable`].
/// - `reverse`: newest first.
pub fn select(
    read: HistoryRead,
    limit: i64,
    since: Option<&Since>,
    reverse: bool,
) -> Result<Vec<Box<RawValue>>, ApiError> {
    let mut entries = read.entries;
    if let Some(s) = since {
        let other_epoch = !s.epoch.is_empty() && *s.epoch != *read.epoch;
        let first = entries.first().map_or(read.last_seq + 1, |(seq, _)| *seq);
        let trimmed = !reverse && s.offset < read.last_seq && first > s.offset + 1;
        if other_epoch || s.offset > read.last_seq || trimmed {
            return Err(ApiError::Unrecoverable);
        }
        match reverse {
            false => entries.retain(|(seq, _)| *seq > s.offset),
            true => entries.retain(|(seq, _)| *seq < s.offset),
        }
    }
    if reverse {
        entries.reverse();
    }
    if limit >= 0 {
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(entries
        .iter()
        .map(|(seq, p)| publication(*seq, p))
        .collect())
}

/// One publication: JSON text as is; other text as a JSON string; binary as `b64data`
/// (with `"data":null`: cent requires the key).
fn publication(seq: u64, payload: &Payload) -> Box<RawValue> {
    use base64::Engine;
    match payload {
        Payload::Text(b) => {
            let text = std::str::from_utf8(b).unwrap_or_default();
            // Kept as text, so the data reads back byte for byte as it was published.
            let data = RawValue::from_string(text.to_owned()).unwrap_or_else(|_| to_raw(&text));
            let text = format!("{{\"data\":{},\"offset\":{seq}}}", data.get());
            RawValue::from_string(text).unwrap_or_else(|_| super::wire::empty())
        }
        Payload::Binary(b) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(b);
            to_raw(&serde_json::json!({"data": null, "b64data": b64, "offset": seq}))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;

    fn read(seqs: &[u64], last: u64) -> HistoryRead {
        HistoryRead {
            epoch: Arc::from("e"),
            last_seq: last,
            entries: seqs
                .iter()
                .map(|s| (*s, Payload::Text(Bytes::from(format!("{{\"n\":{s}}}")))))
                .collect(),
        }
    }

    fn texts(v: Vec<Box<RawValue>>) -> Vec<String> {
        v.into_iter().map(|r| r.get().to_owned()).collect()
    }

    fn since(offset: u64, epoch: &str) -> Since {
        Since {
            offset,
            epoch: epoch.into(),
        }
    }

    #[test]
    fn limit_and_reverse() {
        assert!(
            select(read(&[1, 2, 3], 3), 0, None, false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            texts(select(read(&[1, 2, 3], 3), -1, None, false).unwrap()),
            [
                r#"{"data":{"n":1},"offset":1}"#,
                r#"{"data":{"n":2},"offset":2}"#,
                r#"{"data":{"n":3},"offset":3}"#
            ]
        );
        assert_eq!(
            texts(select(read(&[1, 2, 3], 3), 2, None, true).unwrap()),
            [
                r#"{"data":{"n":3},"offset":3}"#,
                r#"{"data":{"n":2},"offset":2}"#
            ]
        );
    }

    #[test]
    fn since_takes_what_follows_or_says_unrecoverable() {
        let after = select(read(&[2, 3, 4], 4), -1, Some(&since(2, "e")), false).unwrap();
        assert_eq!(after.len(), 2);
        // The empty epoch stands for the current one.
        assert_eq!(
            select(read(&[1, 2], 2), -1, Some(&since(0, "")), false)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            select(read(&[1, 2], 2), -1, Some(&since(2, "e")), false)
                .unwrap()
                .len(),
            0
        );
        for bad in [since(1, "other"), since(9, "e"), since(0, "e")] {
            let r = select(read(&[3, 4], 4), -1, Some(&bad), false);
            assert!(matches!(r, Err(ApiError::Unrecoverable)), "{bad:?}");
        }
        let before = select(read(&[1, 2, 3], 3), -1, Some(&since(3, "e")), true).unwrap();
        assert_eq!(texts(before).len(), 2);
    }

    #[test]
    fn text_that_is_not_json_and_binary() {
        let r = HistoryRead {
            epoch: Arc::from("e"),
            last_seq: 2,
            entries: vec![
                (1, Payload::Text(Bytes::from_static(b"hello"))),
                (2, Payload::Binary(Bytes::from_static(&[0, 255]))),
            ],
        };
        assert_eq!(
            texts(select(r, -1, None, false).unwrap()),
            [
                r#"{"data":"hello","offset":1}"#,
                r#"{"b64data":"AP8=","data":null,"offset":2}"#
            ]
        );
    }
}
