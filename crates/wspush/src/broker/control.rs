//! The bus's cluster messages, as sans-IO code: commands for every node's connections
//! of a user, surveys of every node's state and their answers, and live (unkept,
//! unnumbered) channel messages. [`super::bus`] parses the rest of the bus and hands
//! these kinds here.
//!
//! ```text
//! G [O]\n<json UserCommand>        wspush:bus      every node: its connections of that user
//! Q ASKER ID\n<json Query>         wspush:bus      every node answers node ASKER
//! A ID NODE\n<json Report>         wspush:node:N   node NODE's answer to survey ID of node N
//! p LEN [O]\n<channel><data>       wspush:bus      live text to a channel (q: binary)
//! ```
//!
//! `O` is the receipt field (see [`super::bus::Receipt`]). Surveys carry no receipt: the
//! asker waits for as many answers as `PUBLISH` said nodes listen (see [`super::survey`]).
//! Control bodies are JSON: they are small and rare, and a field added later is
//! ignored by older nodes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::bus::{BusError, BusMessage};
use crate::delivery::payload::Payload;

/// A command for every connection of `user`, on whichever node it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UserCommand {
    /// Subscribes each of the user's connections to `channel`.
    Subscribe {
        /// Whose connections.
        user: String,
        /// To what.
        channel: String,
    },
    /// Unsubscribes each of the user's connections from `channel`.
    Unsubscribe {
        /// Whose connections.
        user: String,
        /// From what.
        channel: String,
    },
    /// Closes each of the user's connections with `code` and `reason`, but those in `keep`.
    Disconnect {
        /// Whose connections.
        user: String,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
        /// Connection ids left open (Centrifugo's `whitelist`).
        #[serde(default)]
        keep: Vec<u64>,
    },
}

/// What a survey asks every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "q", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Query {
    /// The node's subscribers of `channel`.
    Presence {
        /// Which channel.
        channel: String,
    },
    /// The node's channels with their number of subscribers.
    Channels,
    /// The node's identity and totals.
    Info,
}

/// One subscriber, as `presence` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its connection id (cluster-wide).
    pub id: u64,
    /// The user its token named, if any.
    #[serde(default)]
    pub user: Option<String>,
}

/// A node as `info` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node number (0: embedded).
    pub node: u32,
    /// The process's uid.
    pub uid: String,
    /// Host name and node number.
    pub name: String,
    /// wspush's version.
    pub version: String,
    /// Open connections.
    pub clients: u64,
    /// Distinct users among them.
    pub users: u64,
    /// Channels with a subscriber.
    pub channels: u64,
    /// Subscriptions, summed over connections.
    pub subs: u64,
    /// Seconds since start.
    pub uptime: u64,
}

/// One node's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Report {
    /// To [`Query::Presence`].
    Presence {
        /// The node's subscribers of the channel.
        members: Vec<Member>,
    },
    /// To [`Query::Channels`].
    Channels {
        /// Name and number of subscribers.
        channels: Vec<(String, u64)>,
    },
    /// To [`Query::Info`].
    Info(NodeInfo),
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our types are plain structs and enums with string keys: they always serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

fn frame(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 1 + body.len());
    out.extend_from_slice(head.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// `G [O]\n<json>`; `receipt` is [`super::bus::Receipt::field`] or empty.
pub fn encode_user_command(command: &UserCommand, receipt: &str) -> Vec<u8> {
    frame(&format!("G{receipt}"), &json(command))
}

/// `Q ASKER ID\n<json>`.
pub fn encode_query(asker: u32, id: u64, query: &Query) -> Vec<u8> {
    frame(&format!("Q {asker} {id}"), &json(query))
}

/// `A ID NODE\n<json>`.
pub fn encode_report(id: u64, node: u32, report: &Report) -> Vec<u8> {
    frame(&format!("A {id} {node}"), &json(report))
}

/// `p|q LEN [O]\n<channel><data>`: a channel message neither numbered nor kept.
pub fn encode_live(channel: &str, payload: &Payload, receipt: &str) -> Vec<u8> {
    let kind = match payload {
        Payload::Text(_) => 'p',
        Payload::Binary(_) => 'q',
    };
    let mut out = frame(
        &format!("{kind} {}{receipt}", channel.len()),
        channel.as_bytes(),
    );
    out.extend_from_slice(payload.bytes());
    out
}

/// The kinds this module parses.
pub fn is_control_kind(kind: char) -> bool {
    matches!(kind, 'G' | 'Q' | 'A' | 'p' | 'q')
}

/// Where the receipt field of a kind sits in its header (`None`: it has none).
pub fn receipt_at(kind: u8) -> Option<usize> {
    match kind {
        b'G' => Some(1),
        b'p' | b'q' => Some(2),
        _ => None,
    }
}

fn body_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BusError> {
    serde_json::from_slice(body).map_err(|_| BusError::Body)
}

/// Parses a message of one of [`is_control_kind`]'s kinds: `fields` are its header's
/// fields after the kind.
pub fn parse<'a>(
    kind: char,
    mut fields: impl Iterator<Item = &'a str>,
    body: &[u8],
) -> Result<BusMessage, BusError> {
    let mut number = || -> Result<u64, BusError> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or(BusError::Header)
    };
    match kind {
        'G' => Ok(BusMessage::ByUser(body_json(body)?)),
        'Q' => {
            let asker = u32::try_from(number()?).map_err(|_| BusError::Header)?;
            let id = number()?;
            Ok(BusMessage::Query {
                asker,
                id,
                query: body_json(body)?,
            })
        }
        'A' => {
            let id = number()?;
            let node = u32::try_from(number()?).map_err(|_| BusError::Header)?;
            Ok(BusMessage::Answer {
                id,
                node,
                report: body_json(body)?,
            })
        }
        'p' | 'q' => {
            let len = usize::try_from(number()?).map_err(|_| BusError::Header)?;
            let name = body.get(..len).ok_or(BusError::Header)?;
            let channel = String::from_utf8(name.to_vec()).map_err(|_| BusError::Utf8)?;
            let data = &body[len..];
            let payload = match kind {
                'p' => {
                    std::str::from_utf8(data).map_err(|_| BusError::Utf8)?;
                    Payload::Text(Bytes::copy_from_slice(data))
                }
                _ => Payload::Binary(Bytes::copy_from_slice(data)),
            };
            Ok(BusMessage::Live(channel, payload))
        }
        other => Err(BusError::Kind(other)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::broker::bus::{Receipt, is_control, receipt_of};

    fn receipt() -> Receipt {
        Receipt {
            origin: 0x1f,
            ticket: 3,
        }
    }

    #[test]
    fn user_commands_round_trip_with_and_without_receipts() {
        for cmd in [
            UserCommand::Subscribe {
                user: "al ice\n".into(),
                channel: "a b".into(),
            },
            UserCommand::Unsubscribe {
                user: String::new(),
                channel: "x".into(),
            },
            UserCommand::Disconnect {
                user: "bob".into(),
                code: 4000,
                reason: "bye\n".into(),
                keep: vec![1 << 33, 5],
            },
        ] {
            for field in [String::new(), receipt().field()] {
                let wire = encode_user_command(&cmd, &field);
                assert_eq!(
                    BusMessage::parse(&wire).unwrap(),
                    BusMessage::ByUser(cmd.clone())
                );
                let expected = (!field.is_empty()).then(receipt);
                assert_eq!(receipt_of(&wire), expected, "{wire:?}");
                assert!(is_control(&wire), "a by-user command survives gap mode");
            }
        }
        // The exact bytes, so other implementations can follow them.
        let wire = encode_user_command(
            &UserCommand::Subscribe {
                user: "u".into(),
                channel: "c".into(),
            },
            " 1f.3",
        );
        assert_eq!(
            wire,
            b"G 1f.3\n{\"op\":\"subscribe\",\"user\":\"u\",\"channel\":\"c\"}"
        );
    }

    #[test]
    fn surveys_and_answers_round_trip() {
        for query in [
            Query::Presence {
                channel: "news".into(),
            },
            Query::Channels,
            Query::Info,
        ] {
            let wire = encode_query(7, 1 << 40, &query);
            assert_eq!(
                BusMessage::parse(&wire).unwrap(),
                BusMessage::Query {
                    asker: 7,
                    id: 1 << 40,
                    query: query.clone()
                }
            );
            assert!(is_control(&wire) && receipt_of(&wire).is_none());
        }
        assert_eq!(encode_query(2, 9, &Query::Info), b"Q 2 9\n{\"q\":\"info\"}");
        for report in [
            Report::Presence {
                members: vec![
                    Member { id: 1, user: None },
                    Member {
                        id: 2 << 32,
                        user: Some("u".into()),
                    },
                ],
            },
            Report::Channels {
                channels: vec![("a".into(), 2), ("b\n".into(), 1)],
            },
            Report::Info(NodeInfo {
                node: 3,
                uid: "ab".into(),
                clients: 4,
                ..NodeInfo::default()
            }),
        ] {
            let wire = encode_report(9, 3, &report);
            assert_eq!(
                BusMessage::parse(&wire).unwrap(),
                BusMessage::Answer {
                    id: 9,
                    node: 3,
                    report: report.clone()
                }
            );
        }
    }

    #[test]
    fn live_messages_round_trip_and_are_data() {
        for payload in [
            Payload::Text(Bytes::from_static(b"he\nllo")),
            Payload::Binary(Bytes::from_static(&[0, 255, 10])),
        ] {
            for field in [String::new(), receipt().field()] {
                let wire = encode_live("ch an", &payload, &field);
                assert_eq!(
                    BusMessage::parse(&wire).unwrap(),
                    BusMessage::Live("ch an".into(), payload.clone())
                );
                assert_eq!(receipt_of(&wire), (!field.is_empty()).then(receipt));
                assert!(!is_control(&wire), "live data may be dropped in gap mode");
            }
        }
        assert_eq!(
            encode_live("n", &Payload::Text(Bytes::from_static(b"x")), ""),
            b"p 1\nnx"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"G\n"[..],
            b"G\n{\"op\":\"explode\"}",
            b"G\n{\"op\":\"subscribe\",\"user\":1}",
            b"Q 1\n{\"q\":\"info\"}",
            b"Q 99999999999 1\n{\"q\":\"info\"}",
            b"Q 1 2\n{}",
            b"A 1 2\n[",
            b"A x 2\n{\"r\":\"channels\",\"channels\":[]}",
            b"p 9\nshort",
            b"p 1\nc\xff",
            b"p\nc",
            b"q 1\n\xff",
        ] {
            assert!(BusMessage::parse(bad).is_err(), "{bad:?}");
        }
    }
}
