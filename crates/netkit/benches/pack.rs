//! Criterion benches for `netkit::pack`: the ZIP local-header case (`<IIIHH`) through
//! `unpack_from`, the allocation-free `unpack_ints_from` and a hand-written
//! `from_le_bytes` baseline; `pack("!I", n)`; and `iter_unpack("!HHI")` over 64 MiB
//! (and the same records through `unpack_ints_from`).
//! `bench/pack.sh` runs these next to `bench/pack_cpython.py` and prints the ratios.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
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

fn zip_header_benches(c: &mut Criterion) {
    let buf = zip_header();
    let st = Struct::new("<IIIHH").unwrap();
    let mut g = c.benchmark_group("pack");
    g.bench_function("unpack_from_IIIHH", |b| {
        b.iter(|| st.unpack_from(black_box(&buf), black_box(14)).unwrap())
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
    let buf: Vec<u8> = (0..LEN).map(|i| (i * 31 + 7) as u8).collect();
    let st = Struct::new("!HHI").unwrap();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(10);
    g.bench_function("iter_unpack_HHI_64MiB", |b| {
        b.iter(|| {
            let mut sum = 0i128;
            for rec in st.iter_unpack(black_box(&buf)).unwrap() {
                if let Some(Value::Int(v)) = rec.first() {
                    sum += v;
                }
            }
            sum
        })
    });
    g.bench_function("iter_ints_HHI_64MiB", |b| {
        let mut out = [0i128; 3];
        b.iter(|| {
            let mut sum = 0i128;
            for rec in black_box(&buf).chunks_exact(st.size()) {
                st.unpack_ints_from(rec, 0, &mut out).unwrap();
                sum += out[0];
            }
            sum
        })
    });
    g.finish();
}

criterion_group!(benches, zip_header_benches, iter_unpack_bench);
criterion_main!(benches);
