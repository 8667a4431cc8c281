//! The one interface every door pushes through: numbered and fanned out on this node
//! (the embedded broker, [`super::embedded`]) or through Redis to every node
//! ([`super::redis`]). The RPC methods (and the HTTP API's twins) are written once
//! against it.

use std::pin::Pin;
use std::task::{Context, Poll};

use super::BrokerError;
use super::bus::NodeCommand;
use super::control::{Query, Report, UserCommand};
use crate::delivery::flush::Flush;
use crate::delivery::payload::Payload;
use crate::delivery::position::Position;

/// What a broker did: a number (deliveries or nodes reached, see each method; for a
/// command, more than 0 means it was carried out (embedded) or its node listens
/// (Redis)) and, for a publish, the position it was given in its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Deliveries or nodes reached.
    pub count: u64,
    /// Where a publish landed (`None` for commands and `send_user`, which are not
    /// numbered).
    pub position: Option<Position>,
}

impl Done {
    /// An unnumbered outcome.
    pub fn count(count: u64) -> Done {
        Done {
            count,
            position: None,
        }
    }
}

/// A broker's answer: known at once (the embedded broker queues inline) or later: once
/// Redis answered, or once the embedded broker's pass that a push joined has queued it.
pub enum Answer {
    /// Answered already; taken by the first poll.
    Now(Option<Result<Done, BrokerError>>),
    /// Redis has yet to answer, or a joined push's pass has yet to run.
    Later(Pin<Box<dyn Future<Output = Result<Done, BrokerError>> + Send>>),
}

impl Answer {
    /// An answer known now.
    pub fn now(result: Result<Done, BrokerError>) -> Answer {
        Answer::Now(Some(result))
    }
}

impl Future for Answer {
    type Output = Result<Done, BrokerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Now(result) => Poll::Ready(result.take().unwrap_or(Err(BrokerError::Closed))),
            Answer::Later(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// A survey's answer: every live node's [`Report`] (in the order they came).
pub type Survey = Pin<Box<dyn Future<Output = Result<Vec<Report>, BrokerError>> + Send>>;

/// How a push or a command for a connection reaches the node that holds its browsers.
///
/// Each call takes its work before it returns, in call order: queued, or (a push that met a
/// fan-out of its stream in progress) joined to that stream's next pass, behind the pushes
/// before it. One program's pushes to a stream reach each browser in the order it made
/// them; a door whose caller's next call must follow this one's effects on other streams
/// and connections awaits the answer first (every door does). Only the answer may come
/// later. `flush` is
/// the caller's hint of what follows (see [`Flush`]); a broker that does not fan out
/// itself ignores it.
pub trait Broker: Send + Sync {
    /// Numbers `payload` in `stream` (`None`: the broadcast stream), keeps it in history
    /// and delivers it. Answers the connections it was queued to (embedded) or the nodes
    /// it reached (Redis), and the position it was given.
    fn publish(&self, stream: Option<&str>, payload: Payload, flush: Flush) -> Answer;

    /// Delivers `payload` live to `channel`'s subscribers on every node, neither numbered
    /// nor kept (`skip_history`). Answers as [`Broker::publish`] does, with no position.
    fn publish_live(&self, channel: &str, payload: Payload, flush: Flush) -> Answer;

    /// Carries out `command` on every node's connections of its user. Answers the
    /// connections it changed (embedded) or the nodes that listen (Redis).
    fn user_command(&self, command: UserCommand, flush: Flush) -> Answer;

    /// Asks every live node `query` (queued in call order with this caller's pushes and
    /// commands, so it sees them carried out). Fails rather than answer for part of the
    /// cluster.
    fn survey(&self, query: Query) -> Survey;

    /// Carries out `command` on the node holding its connection.
    fn command(&self, command: NodeCommand, flush: Flush) -> Answer;

    /// Queues `payload` to every connection of `user`. Answers the connections (embedded)
    /// or the nodes that listen (Redis).
    fn send_user(&self, user: &str, payload: Payload, flush: Flush) -> Answer;

    /// Whether answers are [`Answer::Now`] but for pushes that joined a pass in progress
    /// (the work is done inline), so doors may take the answer without making a future
    /// and make one only for [`Answer::Later`].
    fn answers_inline(&self) -> bool {
        false
    }
}
