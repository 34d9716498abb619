//! The `accurate` binary.
fn main() {}
