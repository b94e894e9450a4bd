//! Benches (filled in with the signing work).
fn main() {}
