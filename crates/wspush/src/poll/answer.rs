//! The JSON of a long-poll answer (see the module above for its shape).

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::delivery::event_stream::since_query;
use crate::delivery::payload::Payload;
use crate::delivery::position::Position;

/// One message of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `None`: the broadcast stream.
    pub stream: Option<String>,
    /// Its place in the stream.
    pub pos: Position,
    /// What was pushed.
    pub payload: Payload,
}

/// What a poll answers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Messages after the poll's positions, stream by stream, in order.
    pub messages: Vec<Message>,
    /// Streams that lost messages: each continues after its position.
    pub gaps: Vec<(Option<String>, Position)>,
    /// Where every stream is after this answer: the next poll's `since`.
    pub next: Vec<(Option<String>, Position)>,
}

fn position(stream: &Option<String>, pos: &Position) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("channel".into(), json!(stream));
    m.insert("epoch".into(), json!(&*pos.epoch));
    m.insert("seq".into(), json!(pos.seq));
    m
}

impl Answer {
    /// Nothing new and no gap: a poll keeps waiting.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.gaps.is_empty()
    }

    /// The answer's JSON. Text is a JSON string (its bytes as they were pushed), binary is
    /// base64 under `binary`.
    pub fn encode(&self) -> Bytes {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                let mut o = position(&m.stream, &m.pos);
                match &m.payload {
                    Payload::Text(b) => {
                        o.insert("data".into(), json!(String::from_utf8_lossy(b)));
                    }
                    Payload::Binary(b) => {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(b);
                        o.insert("binary".into(), json!(b64));
                    }
                }
                Value::Object(o)
            })
            .collect();
        let gaps: Vec<Value> = self
            .gaps
            .iter()
            .map(|(s, p)| Value::Object(position(s, p)))
            .collect();
        let mut next = String::new();
        let streams = self.next.iter().map(|(s, p)| (s.as_deref(), p));
        since_query(streams, &mut next);
        let body = json!({ "messages": messages, "gaps": gaps, "next": next });
        Bytes::from(body.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn an_answer_names_positions_and_the_next_query() {
        let e: Arc<str> = Arc::from("E");
        let answer = Answer {
            messages: vec![
                Message {
                    stream: None,
                    pos: Position::new(e.clone(), 5),
                    payload: Payload::Text(Bytes::from_static(b"{\"a\":1}")),
                },
                Message {
                    stream: Some("n s".into()),
                    pos: Position::new("F", 3),
                    payload: Payload::Binary(Bytes::from_static(&[0, 1])),
                },
            ],
            gaps: vec![(Some("n s".into()), Position::new("F", 1))],
            next: vec![
                (None, Position::new(e, 5)),
                (Some("n s".into()), Position::new("F", 3)),
            ],
        };
        let v: Value = serde_json::from_slice(&answer.encode()).unwrap();
        assert_eq!(
            v,
            json!({
                "messages": [
                    {"channel": null, "epoch": "E", "seq": 5, "data": "{\"a\":1}"},
                    {"channel": "n s", "epoch": "F", "seq": 3, "binary": "AAE="},
                ],
                "gaps": [{"channel": "n s", "epoch": "F", "seq": 1}],
                "next": "since=E:5&since=F:3:n%20s",
            })
        );
        assert!(!answer.is_empty());
        assert!(Answer::default().is_empty());
    }
}
