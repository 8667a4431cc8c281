//! Errors of the encoder and the parser.

/// What the encoder refuses or the parser gives up on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event name or id holding CR or LF would end its line early and inject fields.
    #[error("{0} must not contain CR or LF")]
    LineBreak(&'static str),
    /// An id holding NUL is ignored by EventSource (the standard drops it), so resuming
    /// from it would silently fail.
    #[error("an event id must not contain NUL")]
    NulInId,
    /// The parser's pending event grew past its limit.
    #[error("event larger than {0} bytes")]
    TooLong(usize),
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_stay_small() {
        assert!(std::mem::size_of::<super::Error>() <= 24);
    }
}
