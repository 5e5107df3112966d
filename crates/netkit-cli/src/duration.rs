//! Parsing the CLI's durations (`500ms`, `30s`, `2m`, `1h`) and sizes (`65536`,
//! `64KiB`, `1MiB`, `64k`), with errors that say what was expected.
//!
//! Out of scope: anything beyond what the options take (no fractions, no
//! combined forms like `1m30s`).

use std::time::Duration;

/// Parses a duration: a whole number followed by `ms`, `s`, `m` or `h`.
/// A bare `0` is accepted (zero in any unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!("invalid duration `{s}`: expected a number with a unit, e.g. 500ms, 30s, 2m, 1h")
    };
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{s}`: number too large"))?;
    let secs = |mul: u64| {
        n.checked_mul(mul)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("invalid duration `{s}`: too large"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "" if n == 0 => Ok(Duration::ZERO),
        _ => Err(bad()),
    }
}

/// Parses a size in bytes: a whole number, optionally followed by `k`/`KiB`/`K`
/// (1024), `m`/`MiB`/`M` (1024²) or `g`/`GiB`/`G` (1024³); `B` is allowed.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("invalid size `{s}`: expected bytes, e.g. 65536, 64KiB, 1MiB, 64k");
    if num.is_empty() {
        return Err(bad());
    }
    let n: usize = num
        .parse()
        .map_err(|_| format!("invalid size `{s}`: number too large"))?;
    let mul: usize = match unit {
        "" | "B" | "b" => 1,
        "k" | "K" | "KiB" | "kiB" | "KB" | "kB" => 1 << 10,
        "m" | "M" | "MiB" | "MB" => 1 << 20,
        "g" | "G" | "GiB" | "GB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("invalid size `{s}`: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "10",
            "1.5s",
            "10 sec",
            "-1s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("10").unwrap_err().contains("500ms"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        for bad in ["", "KiB", "1.5k", "12 parsecs", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
