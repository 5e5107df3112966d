//! Criterion benches for `netkit::pack`: the ZIP local-header case (`<IIIHH`) through
//! `unpack_from` (its `Values` moved into a local, and used in place), the
//! allocation-free `unpack_ints_from` and a hand-written `from_le_bytes` baseline;
//! `pack("!I", n)`; and `!HHI` records over 64 MiB through `iter_unpack` (a `for` loop,
//! and `for_each`), `unpack_ints_from`, `iter_records` and `for_each_ints`, next to a
//! hand-written `from_be_bytes` loop. Every 64 MiB pass sums all fields of every record.
//!
//! `bench/pack.sh` runs these next to `bench/pack_cpython.py` and prints the ratios.
//!
//! With `PACK_CALLGRIND=CASE:N` set, the binary skips criterion and runs one case `N`
//! times (per-call cases) or `N` passes over 1 MiB (record cases), so that
//! `valgrind --tool=callgrind` at two values of `N` gives instructions per call or per
//! record from the difference. `PACK_CALLGRIND=list` prints the case names.

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use netkit::pack::{self, Struct, Value};

/// A ZIP local file header followed by its name, as the seed reads it (fields at 14).
fn zip_header() -> Vec<u8> {
    let mut h = b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00".to_vec();
    h.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
    h.extend_from_slice(&1234_u32.to_le_bytes());
    h.extend_from_slice(&5678_u32.to_le_bytes());
    h.extend_from_slice(&8_u16.to_le_bytes());
    h.extend_from_slice(&0_u16.to_le_bytes());
    h.extend_from_slice(b"name.txt");
    h
}

/// The hand-written baseline: the same five fields with `from_le_bytes`.
#[inline(never)]
fn by_hand(buf: &[u8], at: usize) -> Option<(u32, u32, u32, u16, u16)> {
    let b = buf.get(at..at + 16)?;
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    Some((u32_at(0), u32_at(4), u32_at(8), u16_at(12), u16_at(14)))
}

/// A buffer of `len` bytes of `!HHI` records.
fn records(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// The per-call cases, each `#[inline(never)]` so callgrind counts whole calls.
mod call {
    use super::*;

    /// As a caller writes it: `let v = st.unpack_from(..)?;`, which moves the
    /// values out of the `Result`.
    #[inline(never)]
    pub fn unpack_from(st: &Struct, buf: &[u8]) {
        let v = st.unpack_from(black_box(buf), black_box(14)).unwrap();
        black_box(&v);
    }

    /// The values used where `unpack_from` put them, inside the `Result`.
    #[inline(never)]
    pub fn unpack_from_in_place(st: &Struct, buf: &[u8]) {
        let r = st.unpack_from(black_box(buf), black_box(14));
        black_box(r.as_ref().unwrap());
    }

    #[inline(never)]
    pub fn unpack_ints_from(st: &Struct, buf: &[u8], out: &mut [i128; 5]) {
        st.unpack_ints_from(black_box(buf), black_box(14), out)
            .unwrap();
        black_box(out);
    }

    #[inline(never)]
    pub fn from_le_bytes(buf: &[u8]) -> (u32, u32, u32, u16, u16) {
        by_hand(black_box(buf), black_box(14)).unwrap()
    }

    #[inline(never)]
    pub fn pack_fn(v: &[Value]) -> Vec<u8> {
        pack::pack(black_box("!I"), black_box(v)).unwrap()
    }

    #[inline(never)]
    pub fn struct_pack(st: &Struct, v: &[Value]) -> Vec<u8> {
        st.pack(black_box(v)).unwrap()
    }
}

/// The 64 MiB cases: each sums every field of every record of `buf`.
mod pass {
    use super::*;

    #[inline(never)]
    pub fn iter_unpack(st: &Struct, buf: &[u8]) -> i128 {
        let mut sum = 0i128;
        for rec in st.iter_unpack(buf).unwrap() {
            for v in &rec {
                if let Value::Int(i) = v {
                    sum += i;
                }
            }
        }
        sum
    }

    #[inline(never)]
    pub fn iter_unpack_for_each(st: &Struct, buf: &[u8]) -> i128 {
        let mut sum = 0i128;
        st.iter_unpack(buf).unwrap().for_each(|rec| {
            for v in &rec {
                if let Value::Int(i) = v {
                    sum += i;
                }
            }
        });
        sum
    }

    #[inline(never)]
    pub fn unpack_ints(st: &Struct, buf: &[u8]) -> i128 {
        let mut out = [0i128; 3];
        let mut sum = 0i128;
        for rec in buf.chunks_exact(st.size()) {
            st.unpack_ints_from(rec, 0, &mut out).unwrap();
            sum += out[0] + out[1] + out[2];
        }
        sum
    }

    #[inline(never)]
    pub fn iter_records(st: &Struct, buf: &[u8]) -> i128 {
        let mut out = [0i128; 3];
        let mut sum = 0i128;
        for rec in st.iter_records(buf).unwrap() {
            rec.ints_into(&mut out).unwrap();
            sum += out[0] + out[1] + out[2];
        }
        sum
    }

    #[inline(never)]
    pub fn for_each_ints(st: &Struct, buf: &[u8]) -> i128 {
        let mut sum = 0i128;
        st.for_each_ints(buf, |f| sum += f.iter().sum::<i128>())
            .unwrap();
        sum
    }

    #[inline(never)]
    pub fn from_be_bytes(buf: &[u8]) -> i128 {
        let mut sum = 0i128;
        for rec in buf.chunks_exact(8) {
            let a = u16::from_be_bytes([rec[0], rec[1]]);
            let b = u16::from_be_bytes([rec[2], rec[3]]);
            let c = u32::from_be_bytes([rec[4], rec[5], rec[6], rec[7]]);
            sum += i128::from(a) + i128::from(b) + i128::from(c);
        }
        sum
    }
}

fn zip_header_benches(c: &mut Criterion) {
    let buf = zip_header();
    let st = Struct::new("<IIIHH").unwrap();
    let mut g = c.benchmark_group("pack");
    g.bench_function("unpack_from_IIIHH", |b| {
        b.iter(|| {
            let v = st.unpack_from(black_box(&buf), black_box(14)).unwrap();
            black_box(&v);
        })
    });
    g.bench_function("unpack_from_in_place_IIIHH", |b| {
        b.iter(|| {
            let r = st.unpack_from(black_box(&buf), black_box(14));
            black_box(r.as_ref().unwrap());
        })
    });
    g.bench_function("unpack_ints_from_IIIHH", |b| {
        let mut out = [0i128; 5];
        b.iter(|| {
            st.unpack_ints_from(black_box(&buf), black_box(14), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    g.bench_function("from_le_bytes_IIIHH", |b| {
        b.iter(|| by_hand(black_box(&buf), black_box(14)).unwrap())
    });
    g.bench_function("pack_fn_I", |b| {
        let v = [Value::Int(20)];
        b.iter(|| pack::pack(black_box("!I"), black_box(&v)).unwrap())
    });
    let st_i = Struct::new("!I").unwrap();
    g.bench_function("struct_pack_I", |b| {
        let v = [Value::Int(20)];
        b.iter(|| st_i.pack(black_box(&v)).unwrap())
    });
    g.finish();
}

fn iter_unpack_bench(c: &mut Criterion) {
    const LEN: usize = 64 << 20;
    let buf = records(LEN);
    let st = Struct::new("!HHI").unwrap();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(10);
    g.bench_function("iter_unpack_HHI_64MiB", |b| {
        b.iter(|| pass::iter_unpack(&st, black_box(&buf)))
    });
    g.bench_function("iter_unpack_for_each_HHI_64MiB", |b| {
        b.iter(|| pass::iter_unpack_for_each(&st, black_box(&buf)))
    });
    g.bench_function("iter_ints_HHI_64MiB", |b| {
        b.iter(|| pass::unpack_ints(&st, black_box(&buf)))
    });
    g.bench_function("iter_records_HHI_64MiB", |b| {
        b.iter(|| pass::iter_records(&st, black_box(&buf)))
    });
    g.bench_function("for_each_ints_HHI_64MiB", |b| {
        b.iter(|| pass::for_each_ints(&st, black_box(&buf)))
    });
    g.bench_function("from_be_bytes_HHI_64MiB", |b| {
        b.iter(|| pass::from_be_bytes(black_box(&buf)))
    });
    g.finish();
}

criterion_group!(benches, zip_header_benches, iter_unpack_bench);

/// Names accepted by `PACK_CALLGRIND`.
const CASES: &[&str] = &[
    "unpack_from_IIIHH",
    "unpack_from_in_place_IIIHH",
    "unpack_ints_from_IIIHH",
    "from_le_bytes_IIIHH",
    "pack_fn_I",
    "struct_pack_I",
    "iter_unpack_HHI",
    "iter_unpack_for_each_HHI",
    "iter_ints_HHI",
    "iter_records_HHI",
    "for_each_ints_HHI",
    "from_be_bytes_HHI",
];

/// Runs `case` `n` times (or `n` passes over 1 MiB) for callgrind.
fn callgrind(case: &str, n: usize) {
    let header = zip_header();
    let zip = Struct::new("<IIIHH").unwrap();
    let st_i = Struct::new("!I").unwrap();
    let hhi = Struct::new("!HHI").unwrap();
    let recs = records(1 << 20);
    let v = [Value::Int(20)];
    let mut out = [0i128; 5];
    let mut sum = 0i128;
    // One loop per case, so the loop itself costs a few instructions.
    macro_rules! repeat {
        ($e:expr) => {
            for _ in 0..n {
                $e;
            }
        };
    }
    match case {
        "unpack_from_IIIHH" => repeat!(call::unpack_from(&zip, &header)),
        "unpack_from_in_place_IIIHH" => repeat!(call::unpack_from_in_place(&zip, &header)),
        "unpack_ints_from_IIIHH" => repeat!(call::unpack_ints_from(&zip, &header, &mut out)),
        "from_le_bytes_IIIHH" => repeat!(black_box(call::from_le_bytes(&header))),
        "pack_fn_I" => repeat!(drop(black_box(call::pack_fn(&v)))),
        "struct_pack_I" => repeat!(drop(black_box(call::struct_pack(&st_i, &v)))),
        "iter_unpack_HHI" => repeat!(sum += pass::iter_unpack(&hhi, black_box(&recs))),
        "iter_unpack_for_each_HHI" => {
            repeat!(sum += pass::iter_unpack_for_each(&hhi, black_box(&recs)))
        }
        "iter_ints_HHI" => repeat!(sum += pass::unpack_ints(&hhi, black_box(&recs))),
        "iter_records_HHI" => repeat!(sum += pass::iter_records(&hhi, black_box(&recs))),
        "for_each_ints_HHI" => repeat!(sum += pass::for_each_ints(&hhi, black_box(&recs))),
        "from_be_bytes_HHI" => repeat!(sum += pass::from_be_bytes(black_box(&recs))),
        _ => panic!("unknown case {case:?}; PACK_CALLGRIND=list prints them"),
    }
    black_box(sum);
}

fn main() {
    if let Ok(spec) = std::env::var("PACK_CALLGRIND") {
        if spec == "list" {
            println!("{}", CASES.join("\n"));
            return;
        }
        let (case, n) = spec.split_once(':').unwrap_or((&spec, "1"));
        callgrind(case, n.parse().expect("PACK_CALLGRIND=CASE:N"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
