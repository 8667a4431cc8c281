//! The method registry: arity checks, the reference server's error strings,
//! and running handlers with panics turned into error replies.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::{RangeFrom, RangeInclusive};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;

use futures_util::FutureExt;
use rmpv::Value;

use super::context::Context;
use crate::error::RpcError;
use crate::hash::FastMap;
use crate::message::method_name;

/// How many params a method takes. Built from `usize` (exact),
/// `a..=b` or `a..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arity {
    min: usize,
    max: Option<usize>,
}

impl Arity {
    /// Any number of params.
    pub const ANY: Arity = Arity { min: 0, max: None };

    fn accepts(self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|max| n <= max)
    }
}

impl From<usize> for Arity {
    fn from(n: usize) -> Self {
        Arity {
            min: n,
            max: Some(n),
        }
    }
}

impl From<RangeInclusive<usize>> for Arity {
    fn from(r: RangeInclusive<usize>) -> Self {
        Arity {
            min: *r.start(),
            max: Some(*r.end()),
        }
    }
}

impl From<RangeFrom<usize>> for Arity {
    fn from(r: RangeFrom<usize>) -> Self {
        Arity {
            min: r.start,
            max: None,
        }
    }
}

/// Ruby's notation, as in its ArgumentError: `1`, `1..3`, `1+`.
impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) if max == self.min => write!(f, "{max}"),
            Some(max) => write!(f, "{}..{max}", self.min),
            None => write!(f, "{}+", self.min),
        }
    }
}

/// A handler's outcome, tagged with the msgid to answer (None: notification).
pub(crate) struct Reply {
    pub(crate) msgid: Option<u32>,
    pub(crate) result: Result<Value, RpcError>,
}

pub(crate) type CallFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
type AsyncFn = Box<dyn Fn(Context, Vec<Value>, Option<u32>) -> CallFuture + Send + Sync>;
type SyncFn = Box<dyn Fn(&Context, Vec<Value>) -> Result<Value, RpcError> + Send + Sync>;
type OrderedFn = Box<dyn Fn(&Context, Vec<Value>) -> Outcome + Send + Sync>;

enum Handler {
    Async(AsyncFn),
    Sync(SyncFn),
    Ordered(OrderedFn),
}

/// What an ordered method's handler returns (see
/// [`ServerBuilder::method_ordered`](super::ServerBuilder::method_ordered)).
pub enum Outcome {
    /// The reply, known now.
    Ready(Result<Value, RpcError>),
    /// The reply once this future ends; the connection dispatches nothing else until then.
    Wait(Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>),
}

struct Method {
    arity: Arity,
    handler: Handler,
}

/// What became of one request or notification.
pub(crate) enum Dispatch {
    /// Answered already (unknown method, wrong arity, sync handler).
    Done(Result<Value, RpcError>),
    /// An async handler is running.
    Running(CallFuture),
    /// An ordered handler waits: the connection's next message is dispatched after it.
    Barrier(CallFuture),
}

/// Methods by name (raw bytes, as they arrive).
#[derive(Default)]
pub(crate) struct Registry {
    methods: HashMap<Box<[u8]>, Method, FastMap>,
}

impl Registry {
    pub(crate) fn add_async<F, Fut>(&mut self, name: &[u8], arity: Arity, handler: F)
    where
        F: Fn(Context, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        let call: AsyncFn = Box::new(move |ctx, params, msgid| {
            // The handler may panic before it returns its future.
            match catch_unwind(AssertUnwindSafe(|| handler(ctx, params))) {
                Ok(fut) => Box::pin(async move {
                    let result = AssertUnwindSafe(fut).catch_unwind().await;
                    Reply {
                        msgid,
                        result: result.unwrap_or_else(|p| Err(panic_error(p.as_ref()))),
                    }
                }),
                Err(p) => {
                    let result = Err(panic_error(p.as_ref()));
                    Box::pin(std::future::ready(Reply { msgid, result }))
                }
            }
        });
        self.methods.insert(
            name.into(),
            Method {
                arity,
                handler: Handler::Async(call),
            },
        );
    }

    pub(crate) fn add_sync<F>(&mut self, name: &[u8], arity: Arity, handler: F)
    where
        F: Fn(&Context, Vec<Value>) -> Result<Value, RpcError> + Send + Sync + 'static,
    {
        let handler = Handler::Sync(Box::new(handler));
        self.methods.insert(name.into(), Method { arity, handler });
    }

    pub(crate) fn add_ordered<F>(&mut self, name: &[u8], arity: Arity, handler: F)
    where
        F: Fn(&Context, Vec<Value>) -> Outcome + Send + Sync + 'static,
    {
        let handler = Handler::Ordered(Box::new(handler));
        self.methods.insert(name.into(), Method { arity, handler });
    }

    /// Runs `method`, or answers why not with the reference server's strings.
    pub(crate) fn dispatch(
        &self,
        ctx: &Context,
        method: &[u8],
        params: Vec<Value>,
        msgid: Option<u32>,
    ) -> Dispatch {
        let Some(m) = self.methods.get(method) else {
            let msg = format!("method `{}' is not accepted", method_name(method));
            return Dispatch::Done(Err(RpcError::Message(msg)));
        };
        if !m.arity.accepts(params.len()) {
            let given = params.len();
            let msg = format!(
                "wrong number of arguments (given {given}, expected {})",
                m.arity
            );
            return Dispatch::Done(Err(RpcError::Message(msg)));
        }
        match &m.handler {
            Handler::Sync(f) => {
                let result = catch_unwind(AssertUnwindSafe(|| f(ctx, params)));
                Dispatch::Done(result.unwrap_or_else(|p| Err(panic_error(p.as_ref()))))
            }
            Handler::Async(f) => Dispatch::Running(f(ctx.clone(), params, msgid)),
            Handler::Ordered(f) => match catch_unwind(AssertUnwindSafe(|| f(ctx, params))) {
                Ok(Outcome::Ready(result)) => Dispatch::Done(result),
                Ok(Outcome::Wait(fut)) => Dispatch::Barrier(Box::pin(async move {
                    let result = AssertUnwindSafe(fut).catch_unwind().await;
                    Reply {
                        msgid,
                        result: result.unwrap_or_else(|p| Err(panic_error(p.as_ref()))),
                    }
                })),
                Err(p) => Dispatch::Done(Err(panic_error(p.as_ref()))),
            },
        }
    }
}

/// A panic's message becomes the error string, as a Ruby exception's would.
fn panic_error(payload: &(dyn Any + Send)) -> RpcError {
    let msg = match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(s), _) => (*s).to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => "handler panicked".to_owned(),
    };
    RpcError::Message(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_in_ruby_notation() {
        assert_eq!(Arity::from(1).to_string(), "1");
        assert_eq!(Arity::from(1..=3).to_string(), "1..3");
        assert_eq!(Arity::from(2..).to_string(), "2+");
        assert!(Arity::from(1..=3).accepts(3));
        assert!(!Arity::from(1..=3).accepts(0));
        assert!(Arity::ANY.accepts(0));
    }
}
