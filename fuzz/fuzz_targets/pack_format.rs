//! Arbitrary format strings through `Struct::new`, then packing values derived from the
//! remaining input and unpacking the result: nothing may panic, and whatever packs must
//! unpack to a record of the struct's size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::pack::{calcsize, PackError, Struct, Value};

/// Derives a value of some kind from a few input bytes.
fn value(b: &[u8]) -> Value {
    let tag = b.first().copied().unwrap_or(0);
    let mut raw = [0u8; 16];
    for (d, s) in raw.iter_mut().zip(b.iter().skip(1)) {
        *d = *s;
    }
    match tag % 5 {
        0 => Value::Int(i128::from_le_bytes(raw)),
        1 => Value::Int(i128::from(i64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]))),
        2 => Value::Float(f64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]])),
        3 => Value::Bool(raw[0] & 1 == 1),
        _ => Value::Bytes(b.iter().skip(1).take(usize::from(raw[0] % 32)).copied().collect()),
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let Ok(fmt) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let rest = data.get(split + 1..).unwrap_or_default();
    let size = calcsize(fmt);
    let Ok(st) = Struct::new(fmt) else {
        assert!(size.is_err(), "calcsize accepts what Struct::new rejects: {fmt:?}");
        return;
    };
    assert_eq!(size.ok(), Some(st.size()));
    if st.size() > 1 << 16 {
        return;
    }
    let values: Vec<Value> = rest.chunks(17).take(64).map(value).collect();
    for n in [values.len(), values.len().min(st.count())] {
        if let Ok(bytes) = st.pack(&values[..n]) {
            assert_eq!(bytes.len(), st.size());
            // CPython cannot unpack a `0p` item either (it raises SystemError).
            match st.unpack(&bytes) {
                Ok(back) => assert_eq!(back.len(), n),
                Err(PackError::ZeroPascal { .. }) => {}
                Err(e) => panic!("packed bytes do not unpack: {e:?}"),
            }
            let mut buf = vec![0u8; st.size() + 3];
            st.pack_into(&mut buf, 3, &values[..n]).expect("pack_into fits");
            assert_eq!(&buf[3..], &bytes[..]);
        }
    }
    let _ = st.unpack(rest);
    let _ = st.unpack_from(rest, -1);
});
