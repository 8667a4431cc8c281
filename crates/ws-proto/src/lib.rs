//! ws-proto (work in progress).
