//! Table-driven tests of `Struct` against bytes and errors produced by CPython 3.11.

use super::*;

#[test]
fn seed_network_order() {
    assert_eq!(pack("!I", &[Value::from(20u32)]).unwrap(), [0, 0, 0, 20]);
}
