//! The `Range` request header (RFC 9110 §14): one byte range is served as 206; several
//! ranges, other units or bad syntax are ignored (the whole file is served as 200);
//! a range that starts past the end is unsatisfiable (416).

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// Serve the whole file (no usable range: absent, malformed, multi-range).
    Full,
    /// Serve `len` bytes from `start` (206).
    Part {
        /// First byte.
        start: u64,
        /// Number of bytes (at least 1).
        len: u64,
    },
    /// No byte of the range exists (416).
    Unsatisfiable,
}

/// Interprets a `Range` header value for a file of `size` bytes.
///
/// ```
/// use netkit::http::{parse_range, RangeSpec};
/// assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Part { start: 0, len: 10 });
/// assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Part { start: 90, len: 10 });
/// assert_eq!(parse_range("bytes=-5", 100), RangeSpec::Part { start: 95, len: 5 });
/// assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
/// assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Full);
/// ```
pub fn parse_range(value: &str, size: u64) -> RangeSpec {
    let Some(spec) = strip_prefix_ignore_case(value.trim(), "bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last n bytes.
        let Some(n) = digits(b) else {
            return RangeSpec::Full;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        let len = n.min(size);
        return RangeSpec::Part {
            start: size - len,
            len,
        };
    }
    let Some(start) = digits(a) else {
        return RangeSpec::Full;
    };
    let end = if b.is_empty() {
        None
    } else {
        match digits(b) {
            Some(e) if e >= start => Some(e),
            _ => return RangeSpec::Full,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    let last = end.map_or(size - 1, |e| e.min(size - 1));
    RangeSpec::Part {
        start,
        len: last - start + 1,
    }
}

/// A non-empty run of ASCII digits that fits in a u64.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::RangeSpec::*;
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, u64, RangeSpec)] = &[
            ("bytes=0-0", 10, Part { start: 0, len: 1 }),
            ("bytes=0-9", 10, Part { start: 0, len: 10 }),
            ("bytes=0-100", 10, Part { start: 0, len: 10 }),
            ("bytes=9-", 10, Part { start: 9, len: 1 }),
            ("bytes=-3", 10, Part { start: 7, len: 3 }),
            ("bytes=-30", 10, Part { start: 0, len: 10 }),
            ("BYTES = 2-3", 10, Full),
            ("Bytes=2-3", 10, Part { start: 2, len: 2 }),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=5-2", 10, Full),
            ("bytes=a-b", 10, Full),
            ("bytes=-", 10, Full),
            ("bytes=+1-2", 10, Full),
            ("bytes=0-1,3-4", 10, Full),
            ("items=0-1", 10, Full),
            ("bytes=99999999999999999999999-", 10, Full),
            ("", 10, Full),
        ];
        for (v, size, want) in cases {
            assert_eq!(parse_range(v, *size), *want, "{v:?} of {size}");
        }
    }
}
