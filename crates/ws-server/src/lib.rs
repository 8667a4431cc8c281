//! ws-server (work in progress).
