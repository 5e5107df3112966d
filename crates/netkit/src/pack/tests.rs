//! Table-driven tests of [`Struct`] against bytes, values and errors produced by
//! CPython 3.11's `struct` on x86_64 Linux (native mode assumes that platform's C
//! sizes; the vectors were generated with python3 and pasted here).

use super::*;

/// Short constructors for the vector tables.
#[derive(Debug, Clone, Copy)]
enum V {
    I(i128),
    F(f64),
    B(bool),
    Y(&'static [u8]),
}
use V::*;

impl V {
    fn value(self) -> Value {
        match self {
            I(i) => Value::Int(i),
            F(f) => Value::Float(f),
            B(b) => Value::Bool(b),
            Y(b) => Value::Bytes(b.to_vec()),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Python's `repr(tuple)`.
fn tuple_repr(values: &[Value]) -> String {
    let items: Vec<String> = values.iter().map(ToString::to_string).collect();
    match items.len() {
        1 => format!("({},)", items[0]),
        _ => format!("({})", items.join(", ")),
    }
}

include!("tests_vectors.rs");

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn pack_matches_cpython() {
    for (fmt, args, want) in PACK_VECTORS {
        let values: Vec<Value> = args.iter().map(|v| v.value()).collect();
        let got = pack(fmt, &values);
        match want {
            Some(w) => assert_eq!(hex(&got.unwrap()), *w, "pack({fmt:?}, {args:?})"),
            None => assert!(
                got.is_err(),
                "pack({fmt:?}, {args:?}) = {got:?}, CPython fails"
            ),
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn unpack_matches_cpython() {
    for (fmt, h, want) in UNPACK_VECTORS {
        let got = unpack(fmt, &unhex(h));
        match want {
            Some(w) => assert_eq!(tuple_repr(&got.unwrap()), *w, "unpack({fmt:?}, {h})"),
            None => assert!(
                got.is_err(),
                "unpack({fmt:?}, {h}) = {got:?}, CPython fails"
            ),
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn packed_vectors_unpack_back() {
    // Every successful pack vector unpacks to values that pack to the same bytes.
    for (fmt, args, want) in PACK_VECTORS {
        // `p` normalises its length byte (a 257p holds at most 255 bytes).
        let (Some(w), false) = (want, fmt.contains('p')) else {
            continue;
        };
        let s = Struct::new(fmt).unwrap();
        let values = s.unpack(&unhex(w)).unwrap();
        assert_eq!(values.len(), args.len());
        assert_eq!(hex(&s.pack(&values).unwrap()), *w, "{fmt:?}");
    }
}

#[test]
fn error_variants_say_what_and_where() {
    let i = Value::Int;
    let cases: Vec<(&str, Vec<Value>, PackError)> = vec![
        (
            "<H",
            vec![i(65536)],
            PackError::OutOfRange {
                index: 0,
                code: 'H',
                min: 0,
                max: 65535,
            },
        ),
        (
            "<bB",
            vec![i(0), i(-1)],
            PackError::OutOfRange {
                index: 1,
                code: 'B',
                min: 0,
                max: 255,
            },
        ),
        (
            "<q",
            vec![i(1 << 63)],
            PackError::OutOfRange {
                index: 0,
                code: 'q',
                min: -(1 << 63),
                max: (1 << 63) - 1,
            },
        ),
        (
            "<i",
            vec![Value::Float(1.0)],
            PackError::NotAnInteger {
                index: 0,
                code: 'i',
            },
        ),
        (
            "<d",
            vec![Value::Bytes(vec![])],
            PackError::NotAFloat {
                index: 0,
                code: 'd',
            },
        ),
        (
            "4s",
            vec![i(1)],
            PackError::NotBytes {
                index: 0,
                code: 's',
            },
        ),
        (
            "c",
            vec![Value::Bytes(b"ab".to_vec())],
            PackError::CharLength { index: 0 },
        ),
        (
            "<e",
            vec![Value::Float(65520.0)],
            PackError::FloatTooLarge {
                index: 0,
                code: 'e',
            },
        ),
        (
            "<f",
            vec![Value::Float(1e300)],
            PackError::FloatTooLarge {
                index: 0,
                code: 'f',
            },
        ),
        (
            "2i",
            vec![i(1)],
            PackError::WrongCount {
                expected: 2,
                got: 1,
            },
        ),
    ];
    for (fmt, values, want) in cases {
        assert_eq!(pack(fmt, &values), Err(want), "{fmt}");
    }
    let msg = |fmt: &str, v: Vec<Value>| pack(fmt, &v).unwrap_err().to_string();
    assert_eq!(
        msg("<HH", vec![i(1), i(70000)]),
        "argument 1 out of range for 'H' (0..=65535)"
    );
    assert_eq!(
        msg("2i", vec![i(1)]),
        "pack expected 2 items for packing (got 1)"
    );
    assert_eq!(
        calcsize("ii y").unwrap_err().to_string(),
        "bad char in struct format at 3: 'y'"
    );
    assert_eq!(
        calcsize("4").unwrap_err().to_string(),
        "repeat count given without format specifier at 0"
    );
    assert_eq!(
        calcsize("99999999999999999999s").unwrap_err().to_string(),
        "total struct size too long"
    );
    assert_eq!(
        unpack("<4I", &[0; 15]).unwrap_err().to_string(),
        "unpack requires a buffer of 16 bytes, got 15"
    );
    assert_eq!(
        pack("<e", &[Value::Float(1e6)]).unwrap_err().to_string(),
        "float too large to pack with e format (argument 0)"
    );
}

#[test]
fn pack_into_offsets_like_cpython() {
    let s = Struct::new("<I").unwrap();
    let one = [Value::Int(1)];
    let mut buf = [0u8; 16];
    assert_eq!(
        s.pack_into(&mut buf, -20, &one),
        Err(PackError::OffsetOutOfRange {
            offset: -20,
            len: 16
        })
    );
    assert_eq!(
        s.pack_into(&mut buf, -20, &one).unwrap_err().to_string(),
        "offset -20 out of range for 16-byte buffer"
    );
    assert_eq!(
        s.pack_into(&mut buf, -2, &one),
        Err(PackError::NoSpace {
            size: 4,
            offset: -2
        })
    );
    assert_eq!(
        s.pack_into(&mut buf, -2, &one).unwrap_err().to_string(),
        "no space to pack 4 bytes at offset -2"
    );
    let err = s.pack_into(&mut buf, 14, &one).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pack_into requires a buffer of at least 18 bytes for packing 4 bytes at offset 14 (actual buffer size is 16)"
    );
    assert!(s.pack_into(&mut buf, 17, &one).is_err());
    assert!(s.pack_into(&mut buf, isize::MAX, &one).is_err());
    assert!(s.pack_into(&mut buf, isize::MIN, &one).is_err());

    let mut buf = [0xaau8; 8];
    Struct::new("<H")
        .unwrap()
        .pack_into(&mut buf, -4, &[Value::Int(0x1234)])
        .unwrap();
    assert_eq!(buf, *b"\xaa\xaa\xaa\xaa\x34\x12\xaa\xaa");

    // A failing value leaves earlier items written and the record zeroed, as CPython.
    let mut buf = [0xaau8; 8];
    let vals = [Value::Int(1), Value::Int(300), Value::Int(3)];
    assert!(Struct::new("<BBB")
        .unwrap()
        .pack_into(&mut buf, 2, &vals)
        .is_err());
    assert_eq!(buf, *b"\xaa\xaa\x01\x00\x00\xaa\xaa\xaa");

    // `0p` writes 0xff at its own offset, even past the record (CPython quirk).
    let mut buf = [0xaau8; 4];
    Struct::new("0p")
        .unwrap()
        .pack_into(&mut buf, 1, &[Value::Bytes(vec![])])
        .unwrap();
    assert_eq!(buf, *b"\xaa\xff\xaa\xaa");
    let mut buf = [0xaau8; 4];
    let vals = [Value::Bytes(b"z".to_vec()), Value::Bytes(vec![])];
    Struct::new("c0p")
        .unwrap()
        .pack_into(&mut buf, 1, &vals)
        .unwrap();
    assert_eq!(buf, *b"\xaaz\xff\xaa");

    // Size 0: offsets up to the end are fine.
    let empty = Struct::new("").unwrap();
    let mut buf = [0u8; 8];
    assert!(empty.pack_into(&mut buf, 8, &[]).is_ok());
    assert!(empty.pack_into(&mut buf, -8, &[]).is_ok());
    assert!(empty.pack_into(&mut buf, 9, &[]).is_err());
    assert!(empty.pack_into(&mut buf, -9, &[]).is_err());
}

#[test]
fn unpack_from_offsets_like_cpython() {
    let s = Struct::new("<I").unwrap();
    let data: Vec<u8> = (0..8).collect();
    assert_eq!(s.unpack_from(&data, -4).unwrap(), [Value::Int(117835012)]);
    assert_eq!(s.unpack_from(&data, 4).unwrap(), [Value::Int(117835012)]);
    assert_eq!(s.unpack_from(&data, 0).unwrap(), [Value::Int(0x03020100)]);
    assert_eq!(
        s.unpack_from(&[0; 16], -20).unwrap_err().to_string(),
        "offset -20 out of range for 16-byte buffer"
    );
    assert_eq!(
        s.unpack_from(&[0; 19], 16).unwrap_err().to_string(),
        "unpack_from requires a buffer of at least 20 bytes for unpacking 4 bytes at offset 16 (actual buffer size is 19)"
    );
    assert_eq!(
        s.unpack_from(&[0; 19], -3),
        Err(PackError::NotEnoughData {
            size: 4,
            offset: -3
        })
    );
    assert!(s.unpack_from(&data, 30).is_err());
    assert!(s.unpack_from(&data, isize::MAX).is_err());
    assert!(s.unpack_from(&data, isize::MIN).is_err());
    let empty = Struct::new("").unwrap();
    assert_eq!(empty.unpack_from(&data, 8).unwrap(), []);
    assert!(empty.unpack_from(&data, 9).is_err());
}

#[test]
fn iter_unpack_like_cpython() {
    let s = Struct::new("<h").unwrap();
    let it = s.iter_unpack(&[1, 0, 0xff, 0xff, 3, 0]).unwrap();
    assert_eq!(it.len(), 3);
    let all: Vec<String> = it.map(|v| tuple_repr(&v)).collect();
    assert_eq!(all, ["(1,)", "(-1,)", "(3,)"]);
    assert_eq!(
        s.iter_unpack(&[0; 5]).unwrap_err(),
        PackError::IterNotMultiple { size: 2, len: 5 }
    );
    assert_eq!(
        Struct::new("0s").unwrap().iter_unpack(&[]).unwrap_err(),
        PackError::IterZeroSize
    );
    assert_eq!(
        Struct::new("").unwrap().iter_unpack(&[]).unwrap_err(),
        PackError::IterZeroSize
    );
    let zp = Struct::new("c0p").unwrap();
    assert_eq!(zp.iter_unpack(&[]).unwrap().count(), 0);
    assert_eq!(
        zp.iter_unpack(b"a").unwrap_err(),
        PackError::ZeroPascal { pos: 2 }
    );
    assert_eq!(s.iter_unpack(&[]).unwrap().count(), 0);
}

#[test]
fn struct_accessors() {
    let s = Struct::new("<IIIHH").unwrap();
    assert_eq!((s.size(), s.format(), s.count()), (16, "<IIIHH", 5));
    assert!(format!("{s:?}").contains("<IIIHH"));
    assert_eq!(calcsize("@ic").unwrap(), 5);
    assert_eq!(calcsize("=ic").unwrap(), 5);
}

#[test]
fn unpack_into_reuses_output() {
    let s = Struct::new("<IIIHH").unwrap();
    let data = unhex("efbeadde640000002c01000005000000");
    let mut out = Vec::with_capacity(8);
    let cap = out.capacity();
    for _ in 0..3 {
        s.unpack_into(&data, 0, &mut out).unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(out.capacity(), cap);
    }
    assert_eq!(tuple_repr(&out), "(3735928559, 100, 300, 5, 0)");
}

#[test]
fn unpack_ints_fast_path() {
    let s = Struct::new("<IIIHH").unwrap();
    let mut data = vec![0u8; 14];
    data.extend(unhex("efbeadde640000002c01000005000000"));
    let mut out = [0i128; 5];
    assert_eq!(s.unpack_ints_from(&data, 14, &mut out), Ok(5));
    assert_eq!(out, [0xdeadbeef, 100, 300, 5, 0]);
    assert_eq!(s.unpack_ints_from(&data, -16, &mut out), Ok(5));
    assert_eq!(
        s.unpack_ints_from(&data, 15, &mut out),
        Err(PackError::UnpackFromTooSmall {
            required: 31,
            size: 16,
            offset: 15,
            len: 30
        })
    );
    let mut short = [0i128; 4];
    assert_eq!(
        s.unpack_ints_from(&data, 14, &mut short),
        Err(PackError::OutputTooSmall { needed: 5, got: 4 })
    );

    // Signed, big-endian, native alignment, bools and pads; agrees with unpack().
    for (fmt, h) in [
        (
            ">bhiqBHIQ",
            "ff".to_owned()
                + "fffe"
                + "fffffffd"
                + "fffffffffffffffc"
                + "ff"
                + "fffe"
                + "fffffffd"
                + "fffffffffffffffc",
        ),
        ("@c", "61".to_owned()),
        (
            "@bxhlq?P",
            "ff00feff00000000".to_owned()
                + "fdffffffffffffff"
                + "fcffffffffffffff"
                + "0200000000000000"
                + "ffffffffffffffff",
        ),
        ("=3H2x?", "010002000300aaaa07".to_owned()),
    ] {
        let s = Struct::new(fmt).unwrap();
        let bytes = unhex(&h);
        let mut out = vec![0i128; s.count()];
        match s.unpack_ints_from(&bytes, 0, &mut out) {
            Ok(n) => {
                let slow: Vec<i128> = s
                    .unpack(&bytes)
                    .unwrap()
                    .iter()
                    .map(|v| v.as_int().unwrap())
                    .collect();
                assert_eq!(out[..n], slow[..], "{fmt}");
            }
            Err(e) => assert!(
                matches!(e, PackError::NotIntegerFormat { .. }) && fmt.contains('c'),
                "{fmt}: {e}"
            ),
        }
    }
    assert_eq!(
        Struct::new("<Hf")
            .unwrap()
            .unpack_ints_from(&[0; 6], 0, &mut [0; 2]),
        Err(PackError::NotIntegerFormat { pos: 2, code: 'f' })
    );
}

#[test]
fn zero_pascal_cannot_unpack() {
    let s = Struct::new("c0p").unwrap();
    assert_eq!(s.size(), 1);
    assert_eq!(s.unpack(b"a"), Err(PackError::ZeroPascal { pos: 2 }));
    assert_eq!(
        s.pack(&[Value::from(&b"a"[..]), Value::from(&b"xyz"[..])])
            .unwrap(),
        b"a"
    );
}

#[test]
fn half_float_round_trip_through_struct() {
    for x in [
        0.0,
        -0.0,
        1.0,
        0.5,
        65504.0,
        -65504.0,
        6.103515625e-05,
        5.960464477539063e-08,
        f64::INFINITY,
    ] {
        let b = pack("<e", &[Value::Float(x)]).unwrap();
        let back = unpack("<e", &b).unwrap()[0].as_float().unwrap();
        assert_eq!(back.to_bits(), x.to_bits(), "{x}");
        let b = pack(">e", &[Value::Float(x)]).unwrap();
        assert_eq!(
            unpack(">e", &b).unwrap()[0].as_float().unwrap().to_bits(),
            x.to_bits()
        );
    }
    let nan = unpack("<e", &pack("<e", &[Value::Float(-f64::NAN)]).unwrap()).unwrap();
    assert!(nan[0].as_float().unwrap().is_nan() && nan[0].as_float().unwrap().is_sign_negative());
}

#[test]
fn huge_counts_never_allocate_or_panic() {
    // Sizes up to isize::MAX compile; buffers are checked before anything is read.
    let s = Struct::new("9223372036854775807s").unwrap();
    assert!(s.unpack(&[0; 4]).is_err());
    assert!(s.unpack_from(&[0; 4], 0).is_err());
    assert!(s.iter_unpack(&[0; 4]).is_err());
    assert!(matches!(
        s.pack(&[Value::Bytes(vec![])]),
        Err(PackError::Alloc { .. })
    ));
    let s = Struct::new("1152921504606846975q").unwrap();
    assert!(s.pack(&[]).is_err());
    assert!(s.unpack_ints_from(&[0; 8], 0, &mut [0; 1]).is_err());
    for fmt in [
        "99999999999999999999x",
        "9223372036854775807x1x",
        "4611686018427387904H",
        "@c9223372036854775807q",
    ] {
        assert_eq!(calcsize(fmt), Err(PackError::TooLong), "{fmt}");
    }
}

/// A small deterministic generator for the no-panic sweep.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn arbitrary_formats_and_buffers_never_panic() {
    const ALPHABET: &[u8] = b"xcbB?hHiIlLqQnNefdspP@=<>! 0123456789\t\0y";
    let mut rng = Lcg(0x5eed);
    let mut compared = 0;
    for _ in 0..20_000 {
        let len = (rng.next() % 10) as usize;
        let fmt: String = (0..len)
            .map(|_| char::from(ALPHABET[(rng.next() as usize) % ALPHABET.len()]))
            .collect();
        let Ok(s) = Struct::new(&fmt) else { continue };
        let buf: Vec<u8> = (0..(rng.next() % 64)).map(|_| rng.next() as u8).collect();
        let offset = (rng.next() % 80) as isize - 40;
        let _ = s.unpack(&buf);
        let mut out = Vec::new();
        let _ = s.unpack_into(&buf, offset, &mut out);
        let _ = s.unpack_ints_from(&buf, offset, &mut [0; 16]);
        if let Ok(it) = s.iter_unpack(&buf) {
            it.for_each(drop);
        }
        if let Ok(values) = s.unpack_from(&buf, offset) {
            // Whatever unpacks packs back to the same bytes, except where CPython
            // normalises: `p` length bytes, `?` to 0/1, pads and native alignment
            // to 0, NaN payloads.
            let start = if offset < 0 {
                offset + buf.len() as isize
            } else {
                offset
            } as usize;
            let packed = s.pack(&values).unwrap();
            let standard = fmt.starts_with(['<', '>', '!', '=']);
            if standard && !fmt.contains(['p', '?', 'x', 'e', 'f']) {
                assert_eq!(packed, buf[start..start + s.size()], "{fmt:?}");
                compared += 1;
            }
            let mut scratch = buf.clone();
            s.pack_into(&mut scratch, offset, &values).unwrap();
        }
        let vals = vec![Value::Int(1); s.count().min(64)];
        let _ = s.pack(&vals);
    }
    assert!(compared > 100, "only {compared} round trips compared");
}

#[test]
fn unpack_ints_agrees_with_unpack_from_everywhere() {
    // Every plan (fixed windows of each span, plain loads, loads near the end,
    // per-item for `?` and long formats) at every position of the buffer and with
    // trailing bytes, against the general per-item decoder.
    let formats = [
        "<IIIHH",
        ">IIIHH",
        "<bhiq",
        ">bhiq",
        "<BHIQ",
        "!HHI",
        ">hhi",
        "<3Qb",
        ">3Qb",
        "<4QH",
        ">4qh",
        "<8Qb",
        ">16B",
        "<16b",
        "<17B",
        "<9h",
        "@bhilqnNP",
        "=?3x?",
        ">20Q",
        "<9q",
        "<q100xb",
        "b",
        ">H",
        "<4x",
        ">Qq",
        "<qQ",
        ">7b",
        "!3B",
        ">H62xB",
        "<B63xQ",
        "",
        "@c",
    ];
    let mut rng = Lcg(7);
    for fmt in formats {
        let s = Struct::new(fmt).unwrap();
        let mut out = vec![0i128; s.count()];
        for extra in [
            0, 1, 2, 7, 8, 9, 15, 16, 23, 24, 39, 40, 56, 63, 64, 71, 72, 80,
        ] {
            for lead in [0, 1, 2, 7, 8, 9, 17] {
                let buf: Vec<u8> = (0..lead + s.size() + extra)
                    .map(|_| rng.next() as u8)
                    .collect();
                let mut reference = Vec::new();
                codec::unpack_record(&s.layout, &buf[lead..], &mut reference).unwrap();
                let fast = s.unpack_ints_from(&buf, lead as isize, &mut out);
                if fmt == "@c" {
                    assert!(matches!(
                        fast,
                        Err(PackError::NotIntegerFormat { pos: 1, code: 'c' })
                    ));
                    continue;
                }
                assert_eq!(
                    s.unpack_from(&buf, lead as isize).unwrap(),
                    reference,
                    "{fmt}"
                );
                let slow: Vec<i128> = reference.iter().map(|v| v.as_int().unwrap()).collect();
                assert_eq!(fast, Ok(slow.len()), "{fmt}");
                assert_eq!(out, slow, "{fmt} lead {lead} extra {extra}");
                let rec = s.iter_records(&buf[lead..lead + s.size()]).ok();
                if let Some(rec) = rec.and_then(|mut r| r.next()) {
                    for (i, v) in slow.iter().enumerate() {
                        assert_eq!(rec.int(i), Some(*v), "{fmt} field {i}");
                    }
                    assert_eq!(rec.int(slow.len()), None);
                }
            }
        }
    }
}

#[test]
fn record_iterators_agree_with_the_item_decoder() {
    // Every way through a buffer of records (`iter_unpack` by `next` and by
    // `fold`, `for_each_ints`, `iter_records`) against the general per-item
    // decoder on each record: little- and big-endian, unsigned, signed within
    // `i64` and next to `Q`, 1 to 17 values, records of 1 to 101 bytes, buffers
    // long enough for the windowed loop and short enough for none of it.
    let mut rng = Lcg(11);
    for fmt in [
        "!HHI", "<IIIHH", ">IIIHH", ">bhiq", "<bhiq", "<3Qb", ">3Qb", "<4QH", "<8Qb", ">8q", "<8b",
        ">16B", "<16h", "<17B", "=?3x?", "<q100xb", "<h", ">h", "b", "B", "!3B", "<3b", ">7x",
        "!Qq", "<qQ", ">H62xB", "<B63xQ", "<Hf", "@c", "<3s", "", "@hi", "@bq", "!5I", ">6H",
        "<7i",
    ] {
        let s = Struct::new(fmt).unwrap();
        for records in [0, 1, 2, 3, 9, 10, 40, 77] {
            let buf: Vec<u8> = (0..records * s.size()).map(|_| rng.next() as u8).collect();
            let iter = s.iter_unpack(&buf);
            let recs = s.iter_records(&buf);
            let mut seen = Vec::new();
            let each = s.for_each_ints(&buf, |f| seen.push(f.to_vec()));
            let it = match iter {
                Err(e) => {
                    assert_eq!(each.as_ref().unwrap_err(), &e, "{fmt}");
                    assert_eq!(recs.as_ref().unwrap_err(), &e, "{fmt}");
                    continue;
                }
                Ok(it) => it,
            };
            let mut want = Vec::new();
            for rec in buf.chunks_exact(s.size()) {
                let mut one = Vec::new();
                codec::unpack_record(&s.layout, rec, &mut one).unwrap();
                want.push(tuple_repr(&one));
            }
            assert_eq!(it.len(), want.len(), "{fmt}");
            let by_next: Vec<String> = it.clone().map(|v| tuple_repr(&v)).collect();
            let by_fold = it.fold(Vec::new(), |mut all, v| {
                all.push(tuple_repr(&v));
                all
            });
            // Through reprs: NaNs compare equal.
            assert_eq!(by_next, want, "{fmt} x{records} by next");
            assert_eq!(by_fold, want, "{fmt} x{records} by fold");
            // The integer readers give `?` as 0 or 1.
            let want_ints: Vec<String> = want
                .iter()
                .map(|w| w.replace("True", "1").replace("False", "0"))
                .collect();
            let recs = recs.unwrap();
            assert_eq!(recs.len(), want.len());
            let mut out = vec![0i128; s.count()];
            for ((rec, w), wi) in recs.zip(&want).zip(&want_ints) {
                assert_eq!(rec.bytes().len(), s.size());
                assert_eq!(tuple_repr(&rec.unpack().unwrap()), *w, "{fmt}");
                match rec.ints_into(&mut out) {
                    Ok(n) => assert_eq!(ints_repr(&out[..n]), *wi, "{fmt}"),
                    Err(e) => {
                        assert!(matches!(e, PackError::NotIntegerFormat { .. }), "{fmt}")
                    }
                }
            }
            match each {
                Ok(n) => {
                    assert_eq!(n, want.len(), "{fmt}");
                    let seen: Vec<String> = seen.iter().map(|v| ints_repr(v)).collect();
                    assert_eq!(seen, want_ints, "{fmt} x{records} by for_each_ints");
                }
                Err(e) => assert!(
                    matches!(e, PackError::NotIntegerFormat { .. }),
                    "{fmt}: {e}"
                ),
            }
        }
    }
}

#[test]
fn random_integer_formats_agree_with_the_item_decoder() {
    // Random integer formats (every prefix, pads, 1 to 12 values) over random
    // buffers: every integer reader, at every offset, against the per-item decoder.
    const CODES: &[u8] = b"bBhHiIlLqQ";
    let mut rng = Lcg(0xf00d);
    for _ in 0..400 {
        let mut fmt = String::from(["<", ">", "!", "=", "@", ""][(rng.next() % 6) as usize]);
        for _ in 0..1 + rng.next() % 12 {
            if rng.next() % 5 == 0 {
                fmt.push_str(&format!("{}x", rng.next() % 9));
            }
            fmt.push(char::from(CODES[(rng.next() as usize) % CODES.len()]));
        }
        let s = Struct::new(&fmt).unwrap();
        let records = (rng.next() % 40) as usize;
        let buf: Vec<u8> = (0..records * s.size()).map(|_| rng.next() as u8).collect();
        let mut want = Vec::new();
        for rec in buf.chunks_exact(s.size()) {
            let mut one = Vec::new();
            codec::unpack_record(&s.layout, rec, &mut one).unwrap();
            want.push(one);
        }
        let it = s.iter_unpack(&buf).unwrap();
        let by_next: Vec<Vec<Value>> = it.clone().map(Values::into_vec).collect();
        assert_eq!(by_next, want, "{fmt} by next");
        let by_fold = it.fold(Vec::new(), |mut all, v| {
            all.push(v.into_vec());
            all
        });
        assert_eq!(by_fold, want, "{fmt} by fold");
        let mut seen = Vec::new();
        let n = s
            .for_each_ints(&buf, |f| {
                seen.push(f.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>())
            })
            .unwrap();
        assert_eq!((n, &seen), (records, &want), "{fmt} by for_each_ints");
        let mut out = [0i128; 16];
        for (k, w) in want.iter().enumerate() {
            let at = (k * s.size()) as isize;
            assert_eq!(s.unpack_from(&buf, at).unwrap(), *w, "{fmt} at {at}");
            assert_eq!(s.unpack_ints_from(&buf, at, &mut out), Ok(w.len()), "{fmt}");
            let got: Vec<Value> = out[..w.len()].iter().map(|&i| Value::Int(i)).collect();
            assert_eq!(got, *w, "{fmt} ints at {at}");
            let rec = &buf[k * s.size()..(k + 1) * s.size()];
            assert_eq!(s.unpack(rec).unwrap(), *w, "{fmt} unpack");
        }
    }
}

/// [`tuple_repr`] of integers.
fn ints_repr(v: &[i128]) -> String {
    tuple_repr(&v.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>())
}

#[test]
fn module_functions_share_a_format_cache() {
    // More formats than the cache holds, revisited: results never depend on it.
    for round in 0..3 {
        for n in 1..=(CACHE_ENTRIES as u32 + 3) {
            let fmt = format!("<{n}B");
            let values: Vec<Value> = (0..n).map(|i| Value::from(i + round)).collect();
            let b = pack(&fmt, &values).unwrap();
            assert_eq!(calcsize(&fmt), Ok(n as usize));
            assert_eq!(unpack(&fmt, &b).unwrap(), values);
        }
    }
    assert_eq!(pack("<y", &[]), Err(PackError::BadChar { pos: 1, ch: 'y' }));
    assert_eq!(pack("<y", &[]), Err(PackError::BadChar { pos: 1, ch: 'y' }));
}

/// Encodes a value for the Python side of the differential test.
fn encode_for_python(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("i:{i}"),
        Value::Float(f) => format!("f:{:016x}", f.to_bits()),
        Value::Bool(b) => format!("b:{}", u8::from(*b)),
        Value::Bytes(b) => format!("y:{}", hex(b)),
    }
}

const PY_DIFF: &str = r#"
import struct, sys
def dec(t):
    k, v = t.split(':', 1)
    if k == 'i': return int(v)
    if k == 'f': return struct.unpack('<d', bytes.fromhex(v)[::-1])[0]
    if k == 'b': return v == '1'
    return bytes.fromhex(v)
for line in sys.stdin:
    fmt, vals, buf = line.rstrip('\n').split('\t')
    vals = [dec(t) for t in vals.split(' ') if t]
    try: p = struct.pack(fmt, *vals).hex()
    except Exception: p = 'E'
    try: u = repr(struct.unpack(fmt, bytes.fromhex(buf)))
    except Exception: u = 'E'
    print(p + '\t' + u)
"#;

fn random_value(rng: &mut Lcg) -> Value {
    const INTS: &[i128] = &[
        0,
        1,
        -1,
        127,
        128,
        -128,
        -129,
        255,
        256,
        32767,
        32768,
        -32768,
        -32769,
        65535,
        65536,
        2147483647,
        2147483648,
        -2147483648,
        -2147483649,
        4294967295,
        4294967296,
        9223372036854775807,
        9223372036854775808,
        -9223372036854775808,
        -9223372036854775809,
        18446744073709551615,
        18446744073709551616,
        1 << 100,
    ];
    const FLOATS: &[f64] = &[
        0.0,
        -0.0,
        1.5,
        -2.25,
        0.1,
        65504.0,
        65519.99,
        65520.0,
        1e300,
        -1e300,
        3.4028234663852886e38,
        3.4028235677973366e38,
        1e-8,
        5.960464477539063e-08,
        2.9802322387695312e-08,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e16,
        1e-5,
        123456789.125,
    ];
    match rng.next() % 10 {
        0..=3 => Value::Int(INTS[(rng.next() as usize) % INTS.len()]),
        4..=5 => Value::Float(FLOATS[(rng.next() as usize) % FLOATS.len()]),
        6 => Value::Float(f64::from_bits(rng.next() << 33 ^ rng.next())),
        7 => Value::Bool(rng.next() % 2 == 0),
        _ => {
            let n = (rng.next() % 5) as usize;
            Value::Bytes(
                (0..n)
                    .map(|_| [b'\'', b'"', 0, 0xff, b'a', b'\\'][(rng.next() % 6) as usize])
                    .collect(),
            )
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn differential_against_python3() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    const PREFIXES: &[&str] = &["", "@", "=", "<", ">", "!"];
    const CODES: &[u8] = b"xcbB?hHiIlLqQnNefdspP";
    let mut rng = Lcg(2024);
    let mut cases = Vec::new();
    for _ in 0..3000 {
        let mut fmt = PREFIXES[(rng.next() as usize) % PREFIXES.len()].to_string();
        for _ in 0..=(rng.next() % 4) {
            if rng.next() % 3 == 0 {
                fmt.push_str(&(rng.next() % 4).to_string());
            }
            fmt.push(char::from(CODES[(rng.next() as usize) % CODES.len()]));
            if rng.next() % 8 == 0 {
                fmt.push(' ');
            }
        }
        let count = Struct::new(&fmt).map(|s| s.count()).unwrap_or(1);
        let count = if rng.next() % 20 == 0 {
            count + 1
        } else {
            count
        };
        let values: Vec<Value> = (0..count).map(|_| random_value(&mut rng)).collect();
        let size = Struct::new(&fmt).map(|s| s.size()).unwrap_or(3);
        let size = if rng.next() % 20 == 0 { size + 1 } else { size };
        let buf: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
        cases.push((fmt, values, buf));
    }
    let mut input = String::new();
    for (fmt, values, buf) in &cases {
        let vals: Vec<String> = values.iter().map(encode_for_python).collect();
        input.push_str(&format!("{fmt}\t{}\t{}\n", vals.join(" "), hex(buf)));
    }
    let mut child = Command::new("python3")
        .args(["-c", PY_DIFF])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len());
    let (mut packed, mut unpacked) = (0, 0);
    for ((fmt, values, buf), line) in cases.iter().zip(lines) {
        let (want_pack, want_unpack) = line.split_once('\t').unwrap();
        let got_pack = match pack(fmt, values) {
            Ok(b) => {
                packed += 1;
                hex(&b)
            }
            Err(_) => "E".to_string(),
        };
        assert_eq!(got_pack, want_pack, "pack({fmt:?}, {values:?})");
        let got_unpack = match unpack(fmt, buf) {
            Ok(v) => {
                unpacked += 1;
                tuple_repr(&v)
            }
            Err(_) => "E".to_string(),
        };
        assert_eq!(got_unpack, want_unpack, "unpack({fmt:?}, {})", hex(buf));
    }
    // The generator must reach the success paths, not only errors.
    assert!(
        packed > 200 && unpacked > 1000,
        "packed {packed}, unpacked {unpacked}"
    );
}

#[test]
fn float_repr_differential_against_python3() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let mut rng = Lcg(99);
    let mut xs: Vec<f64> = Vec::new();
    for i in 0..4000 {
        xs.push(match i % 4 {
            0 => f64::from_bits(rng.next() << 33 ^ rng.next() << 2 ^ rng.next()),
            1 => (rng.next() % 100_000) as f64 / [10.0, 100.0, 1e3, 1e7][(rng.next() % 4) as usize],
            2 => 2f64.powi((rng.next() % 2000) as i32 - 1074),
            _ => f64::from(f32::from_bits(
                rng.next() as u32 ^ (rng.next() as u32) << 16,
            )),
        });
    }
    let input: String = xs
        .iter()
        .map(|x| format!("{:016x}\n", x.to_bits()))
        .collect();
    let script = "import sys,struct\nfor l in sys.stdin: print(repr(struct.unpack('>d', bytes.fromhex(l.strip()))[0]))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), xs.len());
    for (x, want) in xs.iter().zip(lines) {
        assert_eq!(
            Value::Float(*x).to_string(),
            want,
            "bits {:016x}",
            x.to_bits()
        );
    }
}
