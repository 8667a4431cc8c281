//! The embedded broker: this node numbers, keeps and fans out every push itself, inline,
//! so an answer is known at once, except for a push that met a fan-out of its stream in
//! progress: it is answered when the next pass has queued it (`delivery::joining`).

use std::sync::Arc;

use super::BrokerError;
use super::bus::NodeCommand;
use super::control::{Query, UserCommand};
use super::interface::{Answer, Broker, Done, Survey};
use super::survey::{self, Identity};
use crate::delivery::flush::Flush;
use crate::delivery::hub::{Hub, Published};
use crate::delivery::payload::Payload;
use crate::delivery::position::Position;

/// The embedded broker over this node's hub.
pub struct Embedded {
    hub: Arc<Hub>,
    me: Arc<Identity>,
}

impl Embedded {
    /// Pushes go straight to `hub`; `me` is this node for `info`.
    pub fn new(hub: Arc<Hub>, me: Arc<Identity>) -> Self {
        Embedded { hub, me }
    }
}

fn count(n: usize) -> Answer {
    Answer::now(Ok(Done::count(n as u64)))
}

impl Broker for Embedded {
    fn answers_inline(&self) -> bool {
        true
    }

    fn publish(&self, stream: Option<&str>, payload: Payload, flush: Flush) -> Answer {
        let done = |(queued, position): (usize, Position)| Done {
            count: queued as u64,
            position: Some(position),
        };
        match self.hub.publish(stream, payload, flush) {
            Published::Now(queued, position) => Answer::now(Ok(done((queued, position)))),
            // Joined a fan-out in progress: answered when its pass has queued it.
            Published::Later(answered) => Answer::Later(Box::pin(async move {
                answered.await.map(done).map_err(|_| BrokerError::Closed)
            })),
        }
    }

    fn publish_live(&self, channel: &str, payload: Payload, flush: Flush) -> Answer {
        count(self.hub.publish_live(channel, payload, flush))
    }

    fn user_command(&self, command: UserCommand, _: Flush) -> Answer {
        count(survey::apply_user(&self.hub, &command))
    }

    fn survey(&self, query: Query) -> Survey {
        let report = survey::report(&self.hub, &self.me, &query);
        Box::pin(std::future::ready(Ok(vec![report])))
    }

    fn command(&self, command: NodeCommand, flush: Flush) -> Answer {
        let done = match command {
            NodeCommand::Send(id, payload) => self.hub.send(id, payload, flush),
            NodeCommand::Subscribe(id, channel) => self.hub.subscribe(id, &channel),
            NodeCommand::Unsubscribe(id, channel) => self.hub.unsubscribe(id, &channel),
            NodeCommand::Disconnect(id, code, reason) => self.hub.disconnect(id, code, &reason),
        };
        count(usize::from(done))
    }

    fn send_user(&self, user: &str, payload: Payload, flush: Flush) -> Answer {
        count(self.hub.send_user(user, payload, flush))
    }
}
