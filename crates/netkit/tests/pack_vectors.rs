//! Replays the CPython `struct` vectors in `tests/data/pack_vectors.jsonl` against
//! `netkit::pack`: same bytes, same values (floats bitwise, NaN by NaN-ness), same
//! Python reprs, and an error wherever CPython raises.
//!
//! Regenerate the vectors with
//! `python3 tools/gen_pack_vectors.py > crates/netkit/tests/data/pack_vectors.jsonl`.

use netkit::pack::{self, Struct, Value};
use serde_json::Value as Json;

const VECTORS: &str = include_str!("data/pack_vectors.jsonl");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn value(j: &Json) -> Value {
    let tag = j[0].as_str().unwrap();
    match tag {
        "int" => Value::Int(j[1].as_str().unwrap().parse().unwrap()),
        "float" => Value::Float(f64::from_bits(
            u64::from_str_radix(j[1].as_str().unwrap(), 16).unwrap(),
        )),
        "bool" => Value::Bool(j[1].as_bool().unwrap()),
        "bytes" => Value::Bytes(hex(j[1].as_str().unwrap())),
        other => panic!("unknown value tag {other}"),
    }
}

fn values(j: &Json) -> Vec<Value> {
    j.as_array().unwrap().iter().map(value).collect()
}

/// Equality as the vectors define it: floats bitwise, except that any NaN matches any NaN
/// (CPython's NaN payloads differ between versions and platforms).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        _ => false,
    }
}

fn same_all(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

/// Checks unpacked values (a `Vec<Value>` or a `Values`) against an expectation.
fn check_values<V, E>(got: Result<V, E>, expect: &Json) -> Result<(), String>
where
    V: std::ops::Deref<Target = [Value]> + std::fmt::Debug,
    E: std::fmt::Debug,
{
    match (got, expect) {
        (Err(_), Json::String(s)) if s == "error" => Ok(()),
        (Ok(v), Json::String(_)) => Err(format!("expected an error, got {v:?}")),
        (Err(e), _) => Err(format!("expected {expect}, got error {e:?}")),
        (Ok(v), _) => {
            let want = values(&expect["values"]);
            if !same_all(&v, &want) {
                return Err(format!("values {v:?}, want {want:?}"));
            }
            Ok(())
        }
    }
}

fn check_bytes<E: std::fmt::Debug>(got: Result<Vec<u8>, E>, expect: &Json) -> Result<(), String> {
    match (got, expect) {
        (Err(_), Json::String(s)) if s == "error" => Ok(()),
        (Ok(b), Json::String(_)) => Err(format!("expected an error, got {}", to_hex(&b))),
        (Err(e), _) => Err(format!("expected {expect}, got error {e:?}")),
        (Ok(b), _) => {
            let want = expect["bytes"].as_str().unwrap();
            if to_hex(&b) == want {
                Ok(())
            } else {
                Err(format!("bytes {}, want {want}", to_hex(&b)))
            }
        }
    }
}

fn is_error(expect: &Json) -> bool {
    expect.as_str() == Some("error")
}

/// Whether every item of `fmt` is an integer code, `?` or `x` (the formats the
/// allocation-free path takes).
fn int_only(fmt: &str) -> bool {
    fmt.trim_start_matches(['@', '=', '<', '>', '!'])
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_whitespace() || "bBhHiIlLqQnNP?x".contains(c))
}

/// Checks the allocation-free path against the expected values (bools as 0 and 1).
/// It must succeed on integer-only formats, fail where CPython fails or where a value
/// is not an integer, and may take formats whose only non-integer items repeat 0 times.
fn check_ints(s: &Struct, fmt: &str, buf: &[u8], off: isize, expect: &Json) -> Result<(), String> {
    let mut ints = vec![0i128; s.count() + 1];
    let got = s.unpack_ints_from(buf, off, &mut ints);
    if is_error(expect) {
        return match got {
            Err(_) => Ok(()),
            Ok(n) => Err(format!(
                "unpack_ints_from: expected an error, got {:?}",
                &ints[..n]
            )),
        };
    }
    let want: Option<Vec<i128>> = values(&expect["values"])
        .iter()
        .map(|v| match v {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        })
        .collect();
    match (got, want) {
        (Err(_), None) => Ok(()),
        (Ok(_), None) => Err("unpack_ints_from accepted a format with non-integer values".into()),
        (Err(e), Some(_)) if int_only(fmt) => Err(format!("unpack_ints_from failed: {e:?}")),
        (Err(_), Some(_)) => Ok(()),
        (Ok(n), Some(want)) if ints[..n] == want[..] => Ok(()),
        (Ok(n), Some(want)) => Err(format!("unpack_ints_from {:?}, want {want:?}", &ints[..n])),
    }
}

fn run(line: &str) -> Result<(), String> {
    let rec: Json = serde_json::from_str(line).unwrap();
    let op = rec["op"].as_str().unwrap();
    let fmt = rec["fmt"].as_str().unwrap();
    let expect = &rec["expect"];
    let parsed = Struct::new(fmt);
    if op == "calcsize" {
        return match (pack::calcsize(fmt), expect) {
            (Err(_), e) if is_error(e) => {
                if parsed.is_ok() {
                    Err("Struct::new accepts a format calcsize rejects".into())
                } else {
                    Ok(())
                }
            }
            (Ok(n), e) if is_error(e) => Err(format!("expected an error, got size {n}")),
            (Err(e), _) => Err(format!("expected {expect}, got error {e:?}")),
            (Ok(n), e) => {
                let want = e["size"].as_u64().unwrap() as usize;
                let s = parsed.map_err(|e| format!("Struct::new failed: {e:?}"))?;
                if n != want || s.size() != want {
                    Err(format!("size {n} / {}, want {want}", s.size()))
                } else if s.format() != fmt {
                    Err(format!("format() {:?}", s.format()))
                } else {
                    Ok(())
                }
            }
        };
    }
    let s = match parsed {
        Ok(s) => s,
        Err(_) if is_error(expect) => return Ok(()),
        Err(e) => return Err(format!("Struct::new failed: {e:?}")),
    };
    match op {
        "pack" => {
            let vals = values(&rec["values"]);
            check_bytes(s.pack(&vals), expect)?;
            check_bytes(pack::pack(fmt, &vals), expect)
        }
        "unpack" => {
            let buf = hex(rec["buf"].as_str().unwrap());
            check_values(s.unpack(&buf), expect)?;
            check_values(pack::unpack(fmt, &buf), expect)
        }
        "unpack_from" => {
            let buf = hex(rec["buf"].as_str().unwrap());
            let off = rec["offset"].as_i64().unwrap() as isize;
            check_values(s.unpack_from(&buf, off), expect)?;
            let mut out = vec![Value::Int(99)];
            let r = s.unpack_into(&buf, off, &mut out).map(|_| out);
            check_values(r, expect)?;
            check_ints(&s, fmt, &buf, off, expect)?;
            Ok(())
        }
        "pack_into" => {
            let mut buf = hex(rec["buf"].as_str().unwrap());
            let off = rec["offset"].as_i64().unwrap() as isize;
            let vals = values(&rec["values"]);
            let r = s.pack_into(&mut buf, off, &vals).map(|_| buf);
            check_bytes(r, expect)
        }
        "iter_unpack" => {
            let buf = hex(rec["buf"].as_str().unwrap());
            // `next` (collect) and internal iteration (fold) take different paths.
            let got: Result<Vec<Vec<Value>>, String> = match s.iter_unpack(&buf) {
                Err(e) => Err(format!("{e:?}")),
                Ok(it) => {
                    let mut by_next = Vec::new();
                    for r in it.clone() {
                        by_next.push(r.into_vec());
                    }
                    let by_fold = it.fold(Vec::new(), |mut all, r| {
                        all.push(r.into_vec());
                        all
                    });
                    if by_next.len() == by_fold.len()
                        && by_next.iter().zip(&by_fold).all(|(a, b)| same_all(a, b))
                    {
                        Ok(by_next)
                    } else {
                        return Err(format!("next gives {by_next:?}, fold {by_fold:?}"));
                    }
                }
            };
            match (got, expect) {
                (Err(_), e) if is_error(e) => Ok(()),
                (Ok(r), e) if is_error(e) => Err(format!("expected an error, got {r:?}")),
                (Err(e), _) => Err(format!("expected {expect}, got error {e}")),
                (Ok(r), e) => {
                    let want: Vec<Vec<Value>> = e["records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(values)
                        .collect();
                    if r.len() == want.len() && r.iter().zip(&want).all(|(a, b)| same_all(a, b)) {
                        Ok(())
                    } else {
                        Err(format!("records {r:?}, want {want:?}"))
                    }
                }
            }
        }
        other => panic!("unknown op {other}"),
    }
}

#[test]
fn every_cpython_vector_matches() {
    let mut total = 0;
    let mut failures = Vec::new();
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        total += 1;
        if let Err(why) = run(line) {
            failures.push(format!("{line}\n    -> {why}"));
        }
    }
    assert!(total > 10_000, "only {total} vectors");
    if !failures.is_empty() {
        for f in failures.iter().take(40) {
            eprintln!("{f}");
        }
        panic!("{} of {total} CPython vectors failed", failures.len());
    }
}

/// `Value`'s Display is Python's repr: every value CPython unpacked in the vectors
/// displays as CPython printed it.
#[test]
fn display_is_python_repr() {
    let mut total = 0;
    let mut failures = Vec::new();
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let rec: Json = serde_json::from_str(line).unwrap();
        let Some(reprs) = rec["expect"].get("repr").and_then(Json::as_array) else {
            continue;
        };
        for (v, r) in values(&rec["expect"]["values"]).iter().zip(reprs) {
            total += 1;
            let want = r.as_str().unwrap();
            if v.to_string() != want {
                failures.push(format!("{v:?} displays as {v}, Python repr is {want}"));
            }
        }
    }
    assert!(total > 5_000, "only {total} values");
    failures.sort();
    failures.dedup();
    if !failures.is_empty() {
        for f in failures.iter().take(40) {
            eprintln!("{f}");
        }
        panic!(
            "{} of {total} values display unlike Python's repr",
            failures.len()
        );
    }
}
