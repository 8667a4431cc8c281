//! Brokers: how a push reaches the nodes that hold the browsers.
//!
//! ```text
//! every door --> dyn Broker (one interface, `interface.rs`) --> embedded or redis:
//! embedded (default):  Embedded --> Hub (numbers, keeps history, fans out)
//! redis:               rpc --> publisher task --pipelined EVALSHA--> Redis (numbers, XADD, PUBLISH)
//!                      Redis --pub/sub--> reader --intake (bytes)--> deliverer --> Hub::deliver --> browsers
//!                      reader --receipts--> the publishing caller's answer
//! surveys (cluster-wide presence, channels, info) and by-user commands: every node
//!                      answers or acts for its own connections (`control.rs`, `survey.rs`)
//! ```
//!
//! Connection ids carry their node (see [`crate::delivery::conn_id`]).

pub mod bus;
pub mod control;
pub mod embedded;
pub mod intake;
pub mod interface;
pub mod receipts;
pub mod redis;
pub mod resp;
pub mod subscriber;
pub mod survey;

use std::time::Duration;

pub use self::embedded::Embedded;
pub use self::interface::{Answer, Broker};
pub use self::redis::{BrokerCounters, DEFAULT_INTAKE_BYTES, RedisBroker};
pub use crate::delivery::conn_id::{MAX_NODE, global_id, node_of};

/// Why a broker operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker URL is not one we understand.
    #[error("invalid broker {0:?}: use \"embedded\" or redis://HOST:PORT[/DB]")]
    Url(String),
    /// Redis cannot be reached or the connection broke.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// Redis did not answer in time.
    #[error("broker did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis refused the command.
    #[error("broker error: {0}")]
    Redis(String),
    /// Redis answered something we did not expect.
    #[error("unexpected broker reply: {0}")]
    Reply(String),
    /// The node is shutting down.
    #[error("broker is shut down")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<BrokerError>() <= 32);
    }
}
