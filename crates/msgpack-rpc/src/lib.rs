//! msgpack-rpc (work in progress).
