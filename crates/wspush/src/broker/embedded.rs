//! The embedded broker: this node numbers, keeps and fans out every push itself, inline,
//! so every answer is known at once.

use std::sync::Arc;

use super::bus::NodeCommand;
use super::interface::{Answer, Broker, Done};
use crate::delivery::flush::Flush;
use crate::delivery::hub::Hub;
use crate::delivery::payload::Payload;

/// The embedded broker over this node's hub.
pub struct Embedded {
    hub: Arc<Hub>,
}

impl Embedded {
    /// Pushes go straight to `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Embedded { hub }
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
        let (queued, position) = match stream {
            None => self.hub.broadcast(payload, flush),
            Some(channel) => self.hub.publish(channel, payload, flush),
        };
        Answer::now(Ok(Done {
            count: queued as u64,
            position: Some(position),
        }))
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
