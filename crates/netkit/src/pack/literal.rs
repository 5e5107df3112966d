//! Python literals: parsing text such as the `VALUE` arguments of `netkit pack` into
//! [`Value`]s (the inverse of `Value`'s `Display`, which writes Python's `repr`), and
//! printing values as a Python tuple or a JSON array, plus the hex form of bytes.
//!
//! Accepted: integers (`42`, `-1`, `+7`, `0xff`, `0o17`, `0b101`, `1_000`), floats
//! (`1.5`, `-0.0`, `1e3`, `.5`, `5.`, `inf`, `-inf`, `nan`), `True`, `False`, and bytes
//! literals (`b'ab\x00'`, `b"..."`, raw `rb'...'`) with Python's escapes. It does not
//! evaluate expressions and does not own the pack format itself (the parent module does).
//!
//! ```
//! use netkit::pack::{literal, Value};
//! assert_eq!(literal::parse("0xff")?, Value::Int(255));
//! assert_eq!(literal::parse(r"b'a\x00'")?, Value::Bytes(b"a\0".to_vec()));
//! assert_eq!(literal::tuple(&[Value::Int(20)]), "(20,)");
//! # Ok::<(), netkit::pack::literal::LiteralError>(())
//! ```

use std::fmt::Write as _;

use thiserror::Error;

use super::Value;

/// Why a literal (or a hex string) was rejected; the message names the text and the
/// form that was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct LiteralError(String);

/// Parses one Python literal.
///
/// # Errors
///
/// Text that is not an `int`, `float`, `True`, `False` or bytes literal, or one that is
/// malformed (misplaced `_`, a bad escape, an integer beyond 128 bits).
pub fn parse(s: &str) -> Result<Value, LiteralError> {
    parse_str(s).map_err(LiteralError)
}

fn parse_str(s: &str) -> Result<Value, String> {
    let t = s.trim();
    match t {
        "" => return Err("empty value".into()),
        "True" => return Ok(Value::Bool(true)),
        "False" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(v) = parse_bytes(t)? {
        return Ok(Value::Bytes(v));
    }
    if t.starts_with(['\'', '"']) {
        return Err(format!(
            "{s:?} is a str literal; struct packs bytes: write b{t} instead"
        ));
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if let Some(mag) = parse_int(body).map_err(|e| format!("{s:?}: {e}"))? {
        let v = match (neg, i128::try_from(mag)) {
            (false, Ok(i)) => Some(i),
            (true, Ok(i)) => Some(-i),
            (true, Err(_)) if mag == 1u128 << 127 => Some(i128::MIN),
            _ => None,
        };
        return v
            .map(Value::Int)
            .ok_or_else(|| format!("{s:?}: integer out of range (more than 128 bits)"));
    }
    if let Some(f) = parse_float(body) {
        return Ok(Value::Float(if neg { -f } else { f }));
    }
    Err(format!(
        "{s:?} is not a Python literal (int, float, True, False or b'...')"
    ))
}

/// Removes `_` separators, which Python allows singly between digits (and after a
/// base prefix). Returns `None` when they are misplaced.
fn strip_underscores(digits: &str, allow_leading: bool) -> Option<String> {
    if digits.ends_with('_') || digits.contains("__") || (!allow_leading && digits.starts_with('_'))
    {
        return None;
    }
    Some(digits.replace('_', ""))
}

/// Parses an unsigned Python integer literal into its magnitude. `Ok(None)`: not an
/// integer literal at all.
fn parse_int(body: &str) -> Result<Option<u128>, String> {
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else {
        (10, lower.as_str())
    };
    let Some(clean) = strip_underscores(digits, radix != 10) else {
        return if radix == 10 {
            Ok(None)
        } else {
            Err("misplaced '_' in integer literal".into())
        };
    };
    if clean.is_empty() {
        return if radix == 10 {
            Ok(None)
        } else {
            Err("integer literal has no digits after its prefix".into())
        };
    }
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return if radix == 10 {
            Ok(None)
        } else {
            Err(format!("invalid digit for base {radix}"))
        };
    }
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0')
    {
        return Err(
            "leading zeros in decimal integer literals are not permitted; use 0o for octal".into(),
        );
    }
    // A u128 magnitude, so that -2**127 (whose magnitude is not an i128) works.
    u128::from_str_radix(&clean, radix)
        .map(Some)
        .map_err(|_| "integer out of range (more than 128 bits)".to_string())
}

/// Parses an unsigned Python float literal (`1.5`, `.5`, `5.`, `1e3`, `1_0.5`, `inf`, `nan`).
fn parse_float(body: &str) -> Option<f64> {
    match body {
        "inf" | "infinity" => return Some(f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    let lower = body.to_ascii_lowercase();
    let (mantissa, exp) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits_ok = |d: &str| {
        d.is_empty()
            || (strip_underscores(d, false).is_some()
                && d.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
    };
    if !digits_ok(int_part) || !frac.map_or(true, digits_ok) {
        return None;
    }
    if int_part.is_empty() && frac.map_or(true, str::is_empty) {
        return None;
    }
    if frac.is_none() && exp.is_none() {
        return None; // an integer, handled elsewhere
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits_ok(digits) {
            return None;
        }
    }
    lower.replace('_', "").parse().ok()
}

/// Parses a bytes literal (`b'..'`, `B".."`, `rb'..'`, `br".."`). `Ok(None)`: not one.
fn parse_bytes(t: &str) -> Result<Option<Vec<u8>>, String> {
    let lower: String = t.chars().take(2).flat_map(char::to_lowercase).collect();
    let (raw, rest) = if lower == "rb" || lower == "br" {
        (true, &t[2..])
    } else if lower.starts_with('b') && t.len() > 1 {
        (false, &t[1..])
    } else {
        return Ok(None);
    };
    let quote = match rest.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => return Ok(None),
    };
    let inner = if rest.len() >= 6 && (rest.starts_with("'''") || rest.starts_with("\"\"\"")) {
        let q3 = &rest[..3];
        rest[3..]
            .strip_suffix(q3)
            .ok_or_else(|| format!("unterminated bytes literal {t}"))?
    } else {
        rest[1..]
            .strip_suffix(quote)
            .filter(|_| rest.len() >= 2)
            .ok_or_else(|| format!("unterminated bytes literal {t}"))?
    };
    if !inner.is_ascii() {
        return Err(format!(
            "bytes can only contain ASCII literal characters: {t} (use \\xNN escapes)"
        ));
    }
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == quote as u8 && !is_triple(rest) {
            return Err(format!("unescaped {quote} inside bytes literal {t}"));
        }
        if c != b'\\' || raw {
            if raw && c == b'\\' && i + 1 < b.len() {
                // In a raw literal a backslash still keeps the next quote from ending it.
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                continue;
            }
            if raw && c == b'\\' {
                return Err(format!("bytes literal {t} ends with a backslash"));
            }
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = b.get(i + 1) else {
            return Err(format!("bytes literal {t} ends with a backslash"));
        };
        i += 2;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'x' => {
                let h = b.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                let v = h
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("invalid \\x escape in {t}: need two hex digits"))?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 {
                    match b.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                // Python keeps the low byte of octal escapes above \377 (with a warning).
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(Some(out))
}

fn is_triple(rest: &str) -> bool {
    rest.len() >= 6 && (rest.starts_with("'''") || rest.starts_with("\"\"\""))
}

/// Formats values as a Python tuple: `()`, `(20,)`, `(1, b'ab', 2.5, True)`.
pub fn tuple(values: &[Value]) -> String {
    let mut s = String::from("(");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{v}");
    }
    if values.len() == 1 {
        s.push(',');
    }
    s.push(')');
    s
}

/// Formats values as a JSON array. Ints and finite floats are JSON numbers (a float
/// keeps its Python repr, so `1.0` stays `1.0`), bools are `true`/`false`, bytes are
/// lowercase hex strings, and the non-finite floats are the strings `"nan"`, `"inf"`
/// and `"-inf"` (JSON has no such numbers).
pub fn json(values: &[Value]) -> String {
    let mut s = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        match v {
            Value::Int(n) => {
                let _ = write!(s, "{n}");
            }
            Value::Float(f) if f.is_nan() => s.push_str("\"nan\""),
            Value::Float(f) if f.is_infinite() => {
                s.push_str(if *f > 0.0 { "\"inf\"" } else { "\"-inf\"" })
            }
            Value::Float(_) => {
                let _ = write!(s, "{v}");
            }
            Value::Bool(b) => {
                let _ = write!(s, "{b}");
            }
            Value::Bytes(b) => {
                s.push('"');
                s.push_str(&hex::encode(b));
                s.push('"');
            }
        }
    }
    s.push(']');
    s
}

/// Hex encoding and decoding of bytes (lowercase out, either case in).
pub mod hex {
    /// Lowercase hex of `b`.
    pub fn encode(b: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(b.len() * 2);
        for &x in b {
            s.push(char::from(DIGITS[usize::from(x >> 4)]));
            s.push(char::from(DIGITS[usize::from(x & 15)]));
        }
        s
    }

    /// Decodes hex digits (either case); whitespace anywhere is ignored.
    ///
    /// # Errors
    ///
    /// A character that is neither a hex digit nor whitespace, or an odd number of
    /// digits.
    pub fn decode(s: &str) -> Result<Vec<u8>, super::LiteralError> {
        decode_str(s).map_err(super::LiteralError)
    }

    fn decode_str(s: &str) -> Result<Vec<u8>, String> {
        let mut digits = Vec::with_capacity(s.len());
        for (pos, c) in s.chars().enumerate() {
            if c.is_whitespace() {
                continue;
            }
            let d = c
                .to_digit(16)
                .ok_or_else(|| format!("invalid hex digit {c:?} at position {}", pos + 1))?;
            digits.push(d as u8);
        }
        if digits.len() % 2 != 0 {
            return Err(format!(
                "odd number of hex digits ({}): each byte needs two",
                digits.len()
            ));
        }
        Ok(digits.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(s: &str) -> i128 {
        match parse(s).unwrap() {
            Value::Int(i) => i,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn float(s: &str) -> f64 {
        match parse(s).unwrap() {
            Value::Float(f) => f,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn bytes(s: &str) -> Vec<u8> {
        match parse(s).unwrap() {
            Value::Bytes(b) => b,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn integers() {
        assert_eq!(int("42"), 42);
        assert_eq!(int("-1"), -1);
        assert_eq!(int("+7"), 7);
        assert_eq!(int("0"), 0);
        assert_eq!(int("000"), 0);
        assert_eq!(int("0xff"), 255);
        assert_eq!(int("0XFF"), 255);
        assert_eq!(int("-0x10"), -16);
        assert_eq!(int("0o17"), 15);
        assert_eq!(int("0b101"), 5);
        assert_eq!(int("0x_ff"), 255);
        assert_eq!(int("1_000"), 1000);
        assert_eq!(int("-170141183460469231731687303715884105728"), i128::MIN);
        assert_eq!(int("170141183460469231731687303715884105727"), i128::MAX);
        assert!(parse("+170141183460469231731687303715884105728").is_err());
        for bad in [
            "1__0", "1_", "_1", "0x", "0xg", "0b2", "0o8", "017", "0x__1", "--1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("170141183460469231731687303715884105728")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse("0x1_0000_0000_0000_0000_0000_0000_0000_0000")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn floats() {
        assert_eq!(float("1.5"), 1.5);
        assert_eq!(float("-0.0").to_bits(), (-0.0f64).to_bits());
        assert_eq!(float("1e3"), 1000.0);
        assert_eq!(float("1E-3"), 0.001);
        assert_eq!(float(".5"), 0.5);
        assert_eq!(float("5."), 5.0);
        assert_eq!(float("1_0.2_5"), 10.25);
        assert_eq!(float("inf"), f64::INFINITY);
        assert_eq!(float("-inf"), f64::NEG_INFINITY);
        assert!(float("nan").is_nan());
        assert!(float("-nan").is_sign_negative());
        for bad in [
            ".", "e3", "1e", "1e+", "1._5", "1.5.", "infinit", "1.5x", "0x1.5", "1__0.5",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bools_and_bytes() {
        assert!(matches!(parse("True").unwrap(), Value::Bool(true)));
        assert!(matches!(parse("False").unwrap(), Value::Bool(false)));
        assert!(parse("true").is_err());
        assert_eq!(bytes(r"b'ab\x00'"), b"ab\0");
        assert_eq!(bytes(r#"b"it's""#), b"it's");
        assert_eq!(
            bytes(r"B'\n\r\t\\\'\a\b\f\v'"),
            b"\n\r\t\\'\x07\x08\x0c\x0b"
        );
        assert_eq!(bytes(r"b'\0\101\1012'"), b"\0AA2");
        assert_eq!(bytes(r"b'\d'"), b"\\d");
        assert_eq!(bytes(r"rb'\x00'"), b"\\x00");
        assert_eq!(bytes("b''"), b"");
        assert_eq!(bytes("b'''a'b'''"), b"a'b");
        for bad in [
            r"b'\x0'",
            r"b'\xzz'",
            "b'abc",
            "b'\u{e9}'",
            r"b'a\'",
            "b'a'b'",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("'abc'").unwrap_err().to_string().contains("b'abc'"));
    }

    #[test]
    fn output_forms() {
        assert_eq!(tuple(&[]), "()");
        assert_eq!(tuple(&[Value::Int(20)]), "(20,)");
        let vals = [
            Value::Int(1),
            Value::Bytes(b"ab".to_vec()),
            Value::Float(2.5),
            Value::Bool(true),
        ];
        assert_eq!(tuple(&vals), "(1, b'ab', 2.5, True)");
        assert_eq!(json(&vals), r#"[1, "6162", 2.5, true]"#);
        let odd = [
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(-0.0),
        ];
        assert_eq!(json(&odd), r#"["nan", "inf", "-inf", -0.0]"#);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex::decode("00 Ff\n0a").unwrap(), [0, 255, 10]);
        assert_eq!(hex::encode(&[0, 255, 10]), "00ff0a");
        assert!(hex::decode("abc")
            .unwrap_err()
            .to_string()
            .contains("odd number"));
        assert!(hex::decode("0g")
            .unwrap_err()
            .to_string()
            .contains("'g' at position 2"));
        assert!(hex::decode("00:11")
            .unwrap_err()
            .to_string()
            .contains("':'"));
    }
}
