//! [`Value`]: one packed or unpacked item, and its Python `repr` (`Display`).
//!
//! Values mirror the Python objects `struct` works with: `int`, `float`, `bool` and
//! `bytes`. `Display` writes exactly what Python's `repr` writes, so a tuple printed
//! from Rust can be pasted into Python. Conversions between values and bytes are in
//! `codec.rs`, not here.

use std::fmt;

/// One value packed by or unpacked from a [`Struct`](super::Struct).
///
/// Integer codes unpack to [`Value::Int`], `?` to [`Value::Bool`], `e f d` to
/// [`Value::Float`] and `c s p` to [`Value::Bytes`]. For packing, integer codes
/// accept `Int` and `Bool`; float codes accept `Float`, `Int` and `Bool`; `?` accepts
/// anything (its truthiness), as in Python.
///
/// ```
/// use netkit::pack::Value;
/// assert_eq!(Value::from(1.5).to_string(), "1.5");
/// assert_eq!(Value::from(1e16).to_string(), "1e+16");
/// assert_eq!(Value::from(&b"ab\x00"[..]).to_string(), r"b'ab\x00'");
/// assert_eq!(Value::from(true).to_string(), "True");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A Python `int`; `i128` holds the full range of every integer code.
    Int(i128),
    /// A Python `float`.
    Float(f64),
    /// A Python `bool`.
    Bool(bool),
    /// A Python `bytes`.
    Bytes(Vec<u8>),
}

impl Value {
    /// The integer, for `Int` and `Bool` (`True` is 1, as in Python); `None` otherwise.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    /// The float, for `Float`, and for `Int` / `Bool` converted as Python's
    /// `float(x)` does (nearest, ties to even); `None` for bytes.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Bytes(_) => None,
        }
    }

    /// The bytes, for `Bytes`; `None` otherwise.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Python truthiness: nonzero numbers, `True` and non-empty bytes are true.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Bytes(b) => !b.is_empty(),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::Int(i128::from(v))
            }
        }
    )*};
}
from_int!(i8, u8, i16, u16, i32, u32, i64, u64);

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Float(f64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Bytes(v.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Value {
    fn from(v: &[u8; N]) -> Value {
        Value::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

impl fmt::Display for Value {
    /// Writes Python's `repr` of the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&float_repr(*x)),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Bytes(b) => f.write_str(&bytes_repr(b)),
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation when the
/// decimal exponent is below -4 or at least 16.
pub(crate) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits as `-d.ddde-x`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 8);
    out.push_str(sign);
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
        return out;
    }
    // Position of the decimal point relative to the digit string.
    let point = exp + 1;
    let n = digits.len() as i32;
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else if point >= n {
        out.push_str(&digits);
        out.push_str(&"0".repeat((point - n) as usize));
        out.push_str(".0");
    } else {
        let (int_part, frac) = digits.split_at(point as usize);
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Python's `repr(bytes)`: `b'...'`, double quotes when the bytes contain `'` and
/// no `"`, `\t \n \r \\` and the quote escaped, other non-printables as `\xhh`.
pub(crate) fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(char::from(quote));
    for &c in b {
        match c {
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\\' => out.push_str("\\\\"),
            _ if c == quote => {
                out.push('\\');
                out.push(char::from(c));
            }
            0x20..=0x7e => out.push(char::from(c)),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(char::from(quote));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Expected strings from python3 -c 'print(repr(x))'.
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (0.00012345, "0.00012345"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (123456789012345.0, "123456789012345.0"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1.2345678901234568e16, "1.2345678901234568e+16"),
            (1.5, "1.5"),
            (-2.5e-10, "-2.5e-10"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1.0 / 3.0, "0.3333333333333333"),
            (100.0, "100.0"),
            (65504.0, "65504.0"),
            (3.4028234663852886e38, "3.4028234663852886e+38"),
            (-123.456, "-123.456"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(*x), *want, "repr of {x:?}");
        }
    }

    #[test]
    fn bytes_repr_matches_python() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "b''"),
            (b"ab\x00", r"b'ab\x00'"),
            (b"it's", r#"b"it's""#),
            (b"it's \"x\"", r#"b'it\'s "x"'"#),
            (b"\t\n\r\\", r"b'\t\n\r\\'"),
            (b"\x7f\x80\xff", r"b'\x7f\x80\xff'"),
            (b"PK\x03\x04", r"b'PK\x03\x04'"),
            (b"\"", r#"b'"'"#),
        ];
        for (b, want) in cases {
            assert_eq!(bytes_repr(b), *want);
        }
    }

    #[test]
    fn display_and_accessors() {
        assert_eq!(Value::from(42i32).to_string(), "42");
        assert_eq!(Value::from(-1i64).to_string(), "-1");
        assert_eq!(Value::from(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(Value::from(false).to_string(), "False");
        assert_eq!(Value::Bool(true).as_int(), Some(1));
        assert_eq!(Value::Int(3).as_float(), Some(3.0));
        assert_eq!(Value::Float(3.0).as_int(), None);
        assert_eq!(Value::from(vec![1u8]).as_bytes(), Some(&[1u8][..]));
        assert_eq!(Value::Int(1).as_bytes(), None);
        assert!(Value::Float(f64::NAN).is_truthy());
        assert!(!Value::Bytes(vec![]).is_truthy());
    }
}
