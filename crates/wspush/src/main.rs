//! The `wspush` binary.
fn main() {}
