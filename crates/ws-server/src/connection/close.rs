//! [`CloseState`]: where one connection is in its ending, as a single value.
//!
//! It lives in the connection's queue, under the queue lock: senders read it to refuse
//! messages once a close is under way, the handle and the server ask for a close or an
//! abort through it, and the connection task moves it on as the close handshake goes. The
//! task reads it only where it takes that lock anyway (a wake-up, an inbound close, a
//! protocol failure, its end), so its event loop pays nothing for it.
//!
//! ```text
//!            Connection::close            task takes it         our frame encoded
//! Open ──────────────────────▶ Requested ─────────────▶ Closing ─────────────▶ CloseSent
//!   │  overflow policy                                     ▲
//!   ├──────────────────────▶ Overflowed ──────────────────┘ (queued data dropped first)
//!   │  the peer's close (echoed)                  frame read by the task
//!   ├──────────────────────▶ PeerClosed(None) ─────────────────▶ PeerClosed(Some)
//!   │  protocol violation or limit
//!   └──────────────────────▶ Failed
//! any of them ──shutdown deadline──▶ Aborted        any of them ──task ends──▶ Closed
//! ```
//! The peer's close ends `Requested`, `Overflowed`, `Closing` and `CloseSent` too (its
//! frame is what the handler is told); a failure ends every state before the peer's close.

use ws_proto::CloseFrame;

/// The close code and reason used by [`OverflowPolicy::Close`](crate::OverflowPolicy::Close): 1008 (policy violation), because
/// the peer broke the server's policy by not reading; 1013 would blame the server.
pub const SLOW_CONSUMER: (u16, &str) = (1008, "slow consumer");

/// One connection's close state; see the module docs for the moves between variants.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) enum CloseState {
    /// Sends are accepted.
    #[default]
    Open,
    /// A close asked for through the handle (the application, or the server at shutdown),
    /// not yet taken by the task. From here on every send is refused.
    Requested { code: u16, reason: String },
    /// The overflow policy closes the connection ([`SLOW_CONSUMER`]): what waits is dropped,
    /// so the peer gets the close frame next instead of after data it is too slow to read.
    Overflowed,
    /// The task took our close: the frame goes out after the messages it already holds, then
    /// the peer's answer is awaited until the close deadline.
    Closing { code: u16, reason: String },
    /// Our close frame is with the protocol core; the peer's answer is awaited.
    CloseSent { code: u16, reason: String },
    /// The peer sent its close and ws-proto echoed it: no data frame may follow, direct ones
    /// included. The frame is `None` until the task has read it from the protocol core.
    PeerClosed(Option<CloseFrame>),
    /// We failed the connection for a protocol violation or a limit; ws-proto sent the close.
    Failed { code: u16, reason: String },
    /// The shutdown deadline passed: the task drops the socket at its next wake-up and
    /// reports this code and reason (what the close handshake had reached, else 1006).
    Aborted { code: u16, reason: String },
    /// The task ended; nothing is queued or written any more.
    Closed,
}

/// What the task must do about a close asked for through the handle.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Nothing new.
    None,
    /// Start our close handshake after the messages already taken.
    Close,
    /// The overflow policy's close: drop every frame not yet begun, then close.
    DiscardAndClose,
    /// Drop the socket now.
    Abort,
}

impl CloseState {
    /// Whether senders may still queue (and direct writers write).
    pub(crate) fn accepts_sends(&self) -> bool {
        matches!(self, CloseState::Open)
    }

    /// A close through the handle; `false` when one is already under way.
    pub(crate) fn request(&mut self, code: u16, reason: &str) -> bool {
        if !self.accepts_sends() {
            return false;
        }
        *self = CloseState::Requested {
            code,
            reason: reason.to_owned(),
        };
        true
    }

    /// The overflow policy's close (only an open connection accepts the send that overflows).
    pub(crate) fn overflow(&mut self) {
        if self.accepts_sends() {
            *self = CloseState::Overflowed;
        }
    }

    /// The shutdown deadline: keeps what the task will report, as it would be reported were
    /// the socket dropped now.
    pub(crate) fn abort(&mut self) {
        let (code, reason) = match std::mem::take(self) {
            CloseState::Closed => {
                *self = CloseState::Closed;
                return;
            }
            CloseState::Closing { code, reason }
            | CloseState::CloseSent { code, reason }
            | CloseState::Failed { code, reason }
            | CloseState::Aborted { code, reason } => (code, reason),
            CloseState::PeerClosed(Some(frame)) => (frame.code, frame.reason),
            CloseState::Open
            | CloseState::Requested { .. }
            | CloseState::Overflowed
            | CloseState::PeerClosed(None) => (1006, "shutdown deadline passed".to_owned()),
        };
        *self = CloseState::Aborted { code, reason };
    }

    /// Task side: takes a close asked for through the handle (once).
    pub(crate) fn take_request(&mut self) -> Control {
        match std::mem::take(self) {
            CloseState::Requested { code, reason } => {
                *self = CloseState::Closing { code, reason };
                Control::Close
            }
            CloseState::Overflowed => {
                *self = CloseState::Closing {
                    code: SLOW_CONSUMER.0,
                    reason: SLOW_CONSUMER.1.to_owned(),
                };
                Control::DiscardAndClose
            }
            aborted @ CloseState::Aborted { .. } => {
                *self = aborted;
                Control::Abort
            }
            other => {
                *self = other;
                Control::None
            }
        }
    }

    /// Task side: the close taken by [`take_request`](Self::take_request) is due; hands its
    /// code and reason to `send` once.
    pub(crate) fn send_close(&mut self, send: impl FnOnce(u16, &str)) {
        if let CloseState::Closing { code, reason } = self {
            let (code, reason) = (*code, std::mem::take(reason));
            send(code, &reason);
            *self = CloseState::CloseSent { code, reason };
        }
    }

    /// Task side: ws-proto saw the peer's close (and echoed it); its frame comes later.
    pub(crate) fn peer_closing(&mut self) {
        if matches!(
            self,
            CloseState::Open | CloseState::Requested { .. } | CloseState::Overflowed
        ) {
            *self = CloseState::PeerClosed(None);
        }
    }

    /// Task side: the peer's close frame, read from the protocol core.
    pub(crate) fn peer_closed(&mut self, frame: CloseFrame) {
        if !matches!(
            self,
            CloseState::Failed { .. } | CloseState::Aborted { .. } | CloseState::Closed
        ) {
            *self = CloseState::PeerClosed(Some(frame));
        }
    }

    /// Task side: we failed the connection (ws-proto has queued its close).
    pub(crate) fn fail(&mut self, code: u16, reason: String) {
        if !matches!(
            self,
            CloseState::PeerClosed(_) | CloseState::Aborted { .. } | CloseState::Closed
        ) {
            *self = CloseState::Failed { code, reason };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(code: u16) -> CloseFrame {
        CloseFrame {
            code,
            reason: "bye".to_owned(),
        }
    }

    #[test]
    fn a_requested_close_is_taken_once_then_sent_once() {
        let mut s = CloseState::Open;
        assert!(s.request(1000, "done"));
        assert!(!s.request(1001, "again"));
        assert!(!s.accepts_sends());
        assert_eq!(s.take_request(), Control::Close);
        assert_eq!(s.take_request(), Control::None);
        let mut sent = Vec::new();
        s.send_close(|code, reason| sent.push((code, reason.to_owned())));
        s.send_close(|code, reason| sent.push((code, reason.to_owned())));
        assert_eq!(sent, [(1000, "done".to_owned())]);
        assert!(matches!(s, CloseState::CloseSent { code: 1000, .. }));
    }

    #[test]
    fn the_overflow_close_discards_and_says_slow_consumer() {
        let mut s = CloseState::Open;
        s.overflow();
        assert_eq!(s.take_request(), Control::DiscardAndClose);
        assert_eq!(
            s,
            CloseState::Closing {
                code: 1008,
                reason: "slow consumer".to_owned()
            }
        );
    }

    #[test]
    fn the_peers_close_wins_over_ours_but_not_over_a_failure() {
        let mut s = CloseState::Open;
        s.request(1000, "done");
        s.take_request();
        s.peer_closing();
        assert!(
            matches!(s, CloseState::Closing { .. }),
            "ours is kept until the frame"
        );
        s.peer_closed(frame(1001));
        assert_eq!(s, CloseState::PeerClosed(Some(frame(1001))));
        s.fail(1002, "late".to_owned());
        assert_eq!(s, CloseState::PeerClosed(Some(frame(1001))));

        let mut f = CloseState::Open;
        f.fail(1002, "bad".to_owned());
        f.peer_closed(frame(1000));
        assert!(matches!(f, CloseState::Failed { code: 1002, .. }));
    }

    #[test]
    fn an_abort_keeps_what_the_handshake_reached() {
        let mut open = CloseState::Open;
        open.abort();
        assert_eq!(
            open,
            CloseState::Aborted {
                code: 1006,
                reason: "shutdown deadline passed".to_owned()
            }
        );
        assert_eq!(open.take_request(), Control::Abort);
        let mut closing = CloseState::Open;
        closing.request(1001, "server shutting down");
        closing.take_request();
        closing.abort();
        assert!(matches!(closing, CloseState::Aborted { code: 1001, .. }));
        let mut closed = CloseState::Closed;
        closed.abort();
        assert_eq!(closed, CloseState::Closed);
    }

    /// No larger than what it replaced in the queue: an `Option<(u16, String)>` and four flags.
    #[test]
    fn the_state_costs_no_more_than_the_flags_it_replaced() {
        assert!(std::mem::size_of::<CloseState>() <= 40);
    }
}
