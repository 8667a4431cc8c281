//! What travels through Redis between nodes, and the script that numbers,
//! keeps and publishes a message in one atomic step.
//!
//! Keys (`S` is `b` for the broadcast stream, `c:NAME` for a channel):
//!
//! ```text
//! wspush:m:S      hash {epoch, seq}: the stream's numbering       } both expire one history
//! wspush:h:S      stream of {k: t|b, d: data, t: unix ms},        } window (--history-secs)
//!                 entry id SEQ-0, XADD MAXLEN                     } after the stream's last write
//! wspush:bus      pub/sub: every stream message and send_user, to every node
//! wspush:node:N   pub/sub: commands for the connections of node N
//! wspush:nodes    counter handing out node numbers (never expires: numbers must not repeat)
//! wspush:stats    hash node -> shared counters (expires when no node refreshes it)
//! ```
//!
//! Pub/sub payloads are a header line, `\n`, then raw bytes:
//!
//! ```text
//! t SEQ EPOCH - [O]\n<data>              broadcast stream, text (b: binary)
//! t SEQ EPOCH LEN [O]\n<channel><data>   channel of LEN bytes
//! T ID [O]\n<data>                       send() to connection ID (B: binary)
//! S ID [O]\n<channel> / U ID [O]\n<channel>  subscribe / unsubscribe
//! D ID CODE [O]\n<reason>                disconnect
//! V LEN [O]\n<user><data>                send_user (W: binary)
//! ```
//!
//! and the cluster kinds of [`super::control`]: `G` (a command for every connection of
//! a user), `Q` / `A` (a survey of every node and its answers), `p` / `q` (a live
//! channel message, neither numbered nor kept).
//!
//! `O` (`ORIGIN.TICKET`, origin in hex) is present on what a node published
//! and will receive itself: its receipt (see `receipts`). Parsers ignore
//! trailing header fields, so nodes without it read the same bus.

use bytes::Bytes;

use super::control::{self, Query, Report, UserCommand};
use crate::delivery::payload::Payload;
use crate::delivery::position::Position;

/// The pub/sub channel every node listens to.
pub const BUS: &str = "wspush:bus";

/// Numbers a stream message, keeps it, publishes it; returns how many nodes got it.
/// KEYS: meta hash, history stream. ARGV: bus, kind, tag, name, data, maxlen,
/// max age ms (0: none), origin field (` O.T` or empty).
///
/// Both keys live one history window past the stream's last write (set here,
/// atomically with the write): a stream nobody writes to leaves nothing behind
/// in Redis, and the next write starts a new epoch, as after any loss.
pub const PUBLISH_SCRIPT: &str = r#"
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if seq == 1 or not epoch then
  local t = redis.call('TIME')
  epoch = string.format('%x.%x', tonumber(t[1]), tonumber(t[2]))
  seq = 1
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 1)
  redis.call('DEL', KEYS[2])
end
local s = string.format('%d', seq)
local maxlen = tonumber(ARGV[6])
local age = tonumber(ARGV[7])
if maxlen > 0 then
  local t = redis.call('TIME')
  local ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  redis.call('XADD', KEYS[2], 'MAXLEN', maxlen, s .. '-0', 'k', ARGV[2], 'd', ARGV[5], 't', ms)
end
if age > 0 then
  redis.call('PEXPIRE', KEYS[1], age)
  if maxlen > 0 then redis.call('PEXPIRE', KEYS[2], age) end
end
local n = redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. s .. ' ' .. epoch .. ' ' .. ARGV[3] .. ARGV[8] .. '\n' .. ARGV[4] .. ARGV[5])
return {n, seq, epoch}
"#;

/// A message's receipt field: `origin` (a random number per process, so two
/// nodes misconfigured with one `--node-id` still tell theirs apart) and the
/// ticket, counting that origin's receipted messages in publish order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Who published it.
    pub origin: u64,
    /// Its number among that origin's receipted messages.
    pub ticket: u64,
}

impl Receipt {
    /// The header field, with its leading space.
    pub fn field(&self) -> String {
        format!(" {:x}.{}", self.origin, self.ticket)
    }

    fn parse(field: &str) -> Option<Receipt> {
        let (origin, ticket) = field.split_once('.')?;
        Some(Receipt {
            origin: u64::from_str_radix(origin, 16).ok()?,
            ticket: ticket.parse().ok()?,
        })
    }
}

/// The header line of a pub/sub payload, if it has one.
fn head(msg: &[u8]) -> Option<&str> {
    let nl = msg.iter().position(|b| *b == b'\n')?;
    std::str::from_utf8(&msg[..nl]).ok()
}

/// The receipt field of a pub/sub payload, read from its header alone.
pub fn receipt_of(msg: &[u8]) -> Option<Receipt> {
    let head = head(msg)?;
    let at = match head.as_bytes().first()? {
        b't' | b'b' => 4,
        b'D' => 3,
        b'T' | b'B' | b'S' | b'U' | b'V' | b'W' => 2,
        kind => super::control::receipt_at(*kind)?,
    };
    Receipt::parse(head.split(' ').nth(at)?)
}

/// Whether a payload changes a connection's state (subscribe, unsubscribe,
/// disconnect, also by user) or is a survey: small, and not to be lost when the
/// intake drops data.
pub fn is_control(msg: &[u8]) -> bool {
    matches!(msg.first(), Some(b'S' | b'U' | b'D' | b'G' | b'Q' | b'A'))
}

/// The stream and position of a stream message, read from its header and
/// the first bytes of its body (for logging what was dropped).
pub fn stream_of(msg: &[u8]) -> Option<(Option<String>, Position)> {
    let head = head(msg)?;
    let mut fields = head.split(' ');
    if !matches!(fields.next()?, "t" | "b") {
        return None;
    }
    let seq = fields.next()?.parse().ok()?;
    let epoch = fields.next()?;
    let stream = match fields.next()? {
        "-" => None,
        len => {
            let len: usize = len.parse().ok()?;
            let body = &msg[head.len() + 1..];
            Some(String::from_utf8_lossy(body.get(..len)?).into_owned())
        }
    };
    Some((stream, Position::new(epoch, seq)))
}

/// The meta hash and history stream keys of a stream.
pub fn keys(stream: Option<&str>) -> (String, String) {
    match stream {
        None => ("wspush:m:b".into(), "wspush:h:b".into()),
        Some(name) => (format!("wspush:m:c:{name}"), format!("wspush:h:c:{name}")),
    }
}

/// The pub/sub channel of node `n`.
pub fn node_channel(n: u32) -> String {
    format!("wspush:node:{n}")
}

/// The header tag of a stream: `-` or the channel name's length.
pub fn tag(stream: Option<&str>) -> String {
    stream.map_or_else(|| "-".into(), |name| name.len().to_string())
}

/// A command for another node's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCommand {
    /// `send(id, data)`.
    Send(u64, Payload),
    /// `subscribe(id, channel)`.
    Subscribe(u64, String),
    /// `unsubscribe(id, channel)`.
    Unsubscribe(u64, String),
    /// `disconnect(id, code, reason)`.
    Disconnect(u64, u16, String),
}

impl NodeCommand {
    /// The connection it is for.
    pub fn conn_id(&self) -> u64 {
        match self {
            NodeCommand::Send(id, _)
            | NodeCommand::Subscribe(id, _)
            | NodeCommand::Unsubscribe(id, _)
            | NodeCommand::Disconnect(id, _, _) => *id,
        }
    }

    /// The pub/sub payload; `receipt` is [`Receipt::field`] or empty.
    pub fn encode(&self, receipt: &str) -> Vec<u8> {
        let (head, body): (String, &[u8]) = match self {
            NodeCommand::Send(id, Payload::Text(b)) => (format!("T {id}"), b),
            NodeCommand::Send(id, Payload::Binary(b)) => (format!("B {id}"), b),
            NodeCommand::Subscribe(id, c) => (format!("S {id}"), c.as_bytes()),
            NodeCommand::Unsubscribe(id, c) => (format!("U {id}"), c.as_bytes()),
            NodeCommand::Disconnect(id, code, r) => (format!("D {id} {code}"), r.as_bytes()),
        };
        frame(&format!("{head}{receipt}"), &[body])
    }
}

/// `head\n` then the parts, back to back.
fn frame(head: &str, parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(head.len() + 1 + len);
    out.extend_from_slice(head.as_bytes());
    out.push(b'\n');
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// `send_user(user, data)` for the shared bus, where every node serves its
/// own connections of that user: `V|W <user length>\n<user><data>`;
/// `receipt` is [`Receipt::field`] or empty.
pub fn encode_user(user: &str, payload: &Payload, receipt: &str) -> Vec<u8> {
    let (kind, data) = match payload {
        Payload::Text(b) => ('V', b),
        Payload::Binary(b) => ('W', b),
    };
    frame(
        &format!("{kind} {}{receipt}", user.len()),
        &[user.as_bytes(), data],
    )
}

/// A message received from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusMessage {
    /// A numbered message of a stream (`None`: broadcast).
    Stream(Option<String>, Position, Payload),
    /// A command for a connection of this node.
    Node(NodeCommand),
    /// `send_user(user, data)`: this node's connections of that user.
    User(String, Payload),
    /// A command for this node's connections of a user.
    ByUser(UserCommand),
    /// A survey: node `asker` waits for this node's [`Report`] on survey `id`.
    Query {
        /// Who asks (its node channel gets the answer).
        asker: u32,
        /// The asker's number for the survey.
        id: u64,
        /// What it asks.
        query: Query,
    },
    /// Node `node`'s answer to this node's survey `id`.
    Answer {
        /// The survey.
        id: u64,
        /// Who answers.
        node: u32,
        /// The answer.
        report: Report,
    },
    /// A message of a channel that is neither numbered nor kept (`skip_history`).
    Live(String, Payload),
}

/// Why a pub/sub payload was not understood (it is dropped and counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// No header line, or a field missing or not a number.
    #[error("malformed header")]
    Header,
    /// Text or a channel name that is not UTF-8.
    #[error("text that is not UTF-8")]
    Utf8,
    /// An unknown message kind.
    #[error("unknown kind {0:?}")]
    Kind(char),
    /// A control message's JSON body is not of its kind's shape.
    #[error("malformed control body")]
    Body,
}

fn utf8(bytes: &[u8]) -> Result<String, BusError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| BusError::Utf8)
}

fn text(bytes: &[u8]) -> Result<Payload, BusError> {
    std::str::from_utf8(bytes).map_err(|_| BusError::Utf8)?;
    Ok(Payload::Text(Bytes::copy_from_slice(bytes)))
}

impl BusMessage {
    /// Parses a pub/sub payload.
    pub fn parse(msg: &[u8]) -> Result<BusMessage, BusError> {
        let nl = msg
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(BusError::Header)?;
        let head = std::str::from_utf8(&msg[..nl]).map_err(|_| BusError::Header)?;
        let body = &msg[nl + 1..];
        let mut fields = head.split(' ');
        let kind = fields
            .next()
            .and_then(|k| k.chars().next())
            .ok_or(BusError::Header)?;
        if control::is_control_kind(kind) {
            return control::parse(kind, fields, body);
        }
        let mut number = || -> Result<u64, BusError> {
            fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or(BusError::Header)
        };
        match kind {
            't' | 'b' => {
                let seq = number()?;
                let epoch = fields.next().ok_or(BusError::Header)?;
                let (stream, data) = match fields.next().ok_or(BusError::Header)? {
                    "-" => (None, body),
                    len => {
                        let len: usize = len.parse().map_err(|_| BusError::Header)?;
                        let name = body.get(..len).ok_or(BusError::Header)?;
                        (Some(utf8(name)?), &body[len..])
                    }
                };
                let payload = match kind {
                    't' => text(data)?,
                    _ => Payload::Binary(Bytes::copy_from_slice(data)),
                };
                Ok(BusMessage::Stream(
                    stream,
                    Position::new(epoch, seq),
                    payload,
                ))
            }
            'T' => Ok(BusMessage::Node(NodeCommand::Send(number()?, text(body)?))),
            'B' => Ok(BusMessage::Node(NodeCommand::Send(
                number()?,
                Payload::Binary(Bytes::copy_from_slice(body)),
            ))),
            'S' => Ok(BusMessage::Node(NodeCommand::Subscribe(
                number()?,
                utf8(body)?,
            ))),
            'U' => Ok(BusMessage::Node(NodeCommand::Unsubscribe(
                number()?,
                utf8(body)?,
            ))),
            'D' => {
                let id = number()?;
                let code = u16::try_from(number()?).map_err(|_| BusError::Header)?;
                Ok(BusMessage::Node(NodeCommand::Disconnect(
                    id,
                    code,
                    utf8(body)?,
                )))
            }
            'V' | 'W' => {
                let len = usize::try_from(number()?).map_err(|_| BusError::Header)?;
                if len > body.len() {
                    return Err(BusError::Header);
                }
                let (user, data) = body.split_at(len);
                let payload = match kind {
                    'V' => text(data)?,
                    _ => Payload::Binary(Bytes::copy_from_slice(data)),
                };
                Ok(BusMessage::User(utf8(user)?, payload))
            }
            other => Err(BusError::Kind(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stream_messages_parse() {
        let m = BusMessage::parse(b"t 7 e1.2 4\nn:wshello\nworld").unwrap();
        assert_eq!(
            m,
            BusMessage::Stream(
                Some("n:ws".into()),
                Position::new("e1.2", 7),
                Payload::Text(Bytes::from_static(b"hello\nworld"))
            )
        );
        let m = BusMessage::parse(b"b 1 e -\n\x00\xff").unwrap();
        assert_eq!(
            m,
            BusMessage::Stream(
                None,
                Position::new("e", 1),
                Payload::Binary(Bytes::from_static(&[0, 255]))
            )
        );
    }

    #[test]
    fn send_user_round_trips() {
        for (user, payload) in [
            ("al ice\n", Payload::Text(Bytes::from_static(b"x\ny"))),
            ("", Payload::Binary(Bytes::from_static(&[0, 10]))),
        ] {
            for receipt in ["", " ff.2"] {
                let wire = encode_user(user, &payload, receipt);
                assert_eq!(
                    BusMessage::parse(&wire).unwrap(),
                    BusMessage::User(user.into(), payload.clone())
                );
            }
        }
        assert!(BusMessage::parse(b"V 9\nab").is_err());
    }

    #[test]
    fn node_commands_round_trip() {
        for cmd in [
            NodeCommand::Send(1 << 33, Payload::Text(Bytes::from_static(b"x\ny"))),
            NodeCommand::Send(5, Payload::Binary(Bytes::from_static(&[1, 10]))),
            NodeCommand::Subscribe(5, "a b".into()),
            NodeCommand::Unsubscribe(5, "a".into()),
            NodeCommand::Disconnect(5, 4000, "bye".into()),
        ] {
            let receipt = Receipt {
                origin: 0xabc,
                ticket: 9,
            };
            for field in [String::new(), receipt.field()] {
                let wire = cmd.encode(&field);
                assert_eq!(
                    BusMessage::parse(&wire).unwrap(),
                    BusMessage::Node(cmd.clone())
                );
                let expected = (!field.is_empty()).then_some(receipt);
                assert_eq!(receipt_of(&wire), expected, "{wire:?}");
            }
        }
    }

    #[test]
    fn receipts_and_streams_are_read_from_the_header_alone() {
        let r = Receipt {
            origin: u64::MAX,
            ticket: 12,
        };
        let wire = format!("t 7 e1.2 4{}\nn:wshello", r.field());
        assert_eq!(receipt_of(wire.as_bytes()), Some(r));
        assert_eq!(
            stream_of(wire.as_bytes()),
            Some((Some("n:ws".into()), Position::new("e1.2", 7)))
        );
        // The epoch holds a dot but is no receipt; nodes without receipts parse alike.
        assert_eq!(receipt_of(b"t 7 e1.2 -\nx"), None);
        assert_eq!(stream_of(b"b 3 e -\n"), Some((None, Position::new("e", 3))));
        assert_eq!(
            BusMessage::parse(wire.as_bytes()).unwrap(),
            BusMessage::parse(b"t 7 e1.2 4\nn:wshello").unwrap()
        );
        assert_eq!(receipt_of(b"t 7 e1.2 4 zz.1\nn:ws"), None);
        assert_eq!(stream_of(b"T 1\nx"), None);
        assert!(is_control(b"S 1\nc") && is_control(b"D 1 1000\n"));
        assert!(!is_control(b"T 1\nx") && !is_control(b"t 1 e -\nx"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"t 1 e\n",
            b"t x e -\n",
            b"t 1 e 99\nshort",
            b"t 1 e -\n\xff",
            b"D 1 70000\n",
            b"Z 1\n",
            b"\n",
        ] {
            assert!(BusMessage::parse(bad).is_err(), "{bad:?}");
        }
    }
}
