//! Regression tests for the `netkit` library: each test is named after the bug it
//! guards against, fails on the code that had the bug and passes after the fix.
//! One module per area, all in one test binary (ripgrep's `tests/regression.rs`
//! habit).

mod datagram;
mod fetch;
mod fuzz_inputs;
mod http;
mod pool;
mod receive;
mod serve;
