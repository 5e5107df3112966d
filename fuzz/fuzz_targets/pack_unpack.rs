//! A format from the first input bytes, a buffer from the rest: every unpacking entry
//! point must return a value or an error, never panic, and agree with each other.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::pack::{Struct, Value};

/// Equality with floats compared bit for bit (so NaN equals the same NaN).
fn same(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            _ => x == y,
        })
}

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let len = usize::from(len % 24).min(rest.len());
    let Ok(fmt) = std::str::from_utf8(&rest[..len]) else {
        return;
    };
    let buf = &rest[len..];
    let Ok(st) = Struct::new(fmt) else {
        return;
    };
    let whole = st.unpack(buf);
    if whole.is_ok() {
        assert_eq!(buf.len(), st.size(), "unpack accepted a buffer of the wrong size");
    }
    for off in [0isize, 1, -1, -(st.size() as isize), isize::MIN, isize::MAX] {
        let a = st.unpack_from(buf, off);
        let mut out = Vec::new();
        let b = st.unpack_into(buf, off, &mut out);
        assert_eq!(a.is_ok(), b.is_ok());
        if let Ok(v) = a {
            assert!(same(&v, &out), "unpack_from {v:?} but unpack_into {out:?}");
            if let Ok(bytes) = st.pack(&v) {
                // Re-packing unpacked values gives a record of the struct's size that
                // unpacks again.
                assert_eq!(bytes.len(), st.size());
                assert!(st.unpack(&bytes).is_ok());
            }
        }
        if st.count() <= 4096 {
            let mut ints = vec![0i128; st.count()];
            let _ = st.unpack_ints_from(buf, off, &mut ints);
        }
    }
    if let Ok(it) = st.iter_unpack(buf) {
        assert_eq!(it.count() * st.size(), buf.len());
    }
});
