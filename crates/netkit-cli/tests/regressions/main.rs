//! Regression tests for the `netkit` command: each test is named after the bug it
//! guards against, fails on the code that had the bug and passes after the fix.
//! One module per area, all in one test binary (ripgrep's `tests/regression.rs`
//! habit).

#[path = "../util/mod.rs"]
mod util;

mod cli;
mod datagram;
mod exec;
mod fetch;
mod http;
mod pool;
mod receive;
mod serve;
