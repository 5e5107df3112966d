//! Durations and byte sizes as people write them (`250us`, `500ms`, `1.5s`, `2m`, `1h`;
//! `65536`, `64k`, `64KiB`, `1MiB`, `2KB`): the DUR and BYTES forms every option of
//! the `netkit` command takes, with errors that say what form was expected, plus the
//! formatting of a duration back into that form.
//!
//! Errors are messages fit for a command line's "invalid value" error. Range checks
//! that depend on the option (a positive duration, a size cap) live with the option,
//! not here. Out of scope: combined forms like `1m30s`, exponents, fractional sizes.
//!
//! ```
//! use std::time::Duration;
//! use netkit::net::units;
//! assert_eq!(units::parse_duration("1.5s")?, Duration::from_millis(1500));
//! assert_eq!(units::parse_size("64KiB")?, 65536);
//! assert_eq!(units::format_duration(Duration::from_millis(500)), "500ms");
//! # Ok::<(), netkit::net::units::UnitError>(())
//! ```

use std::time::Duration;

use thiserror::Error;

/// Why a duration or size was rejected; each message quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UnitError {
    /// Not a number followed by a duration unit.
    #[error(
        "invalid duration `{0}`: expected a number with a unit, e.g. 500ms, 30s, 2m, 1h \
         (a bare number is seconds)"
    )]
    BadDuration(String),
    /// A well-formed duration beyond what a `Duration` holds.
    #[error("invalid duration `{0}`: too large")]
    DurationTooLarge(String),
    /// Not a whole number followed by a size unit.
    #[error("invalid size `{0}`: expected bytes, e.g. 65536, 64KiB, 1MiB, 64k")]
    BadSize(String),
    /// A well-formed size beyond 64 bits (or the platform's `usize`).
    #[error("invalid size `{0}`: too large")]
    SizeTooLarge(String),
}

/// Nanoseconds in one second.
const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Most fraction digits a duration may carry (a nanosecond is 9; more are truncated
/// away, but a longer string is rather a typo).
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a duration: a number (decimals allowed) followed by `us` (or `µs`), `ms`,
/// `s`, `m` or `h`; a bare number is seconds (`3` is `3s`, `0.5` is `500ms`), as
/// for `sleep`, `timeout`, curl's `--max-time` and ncat's `-w`.
///
/// # Errors
///
/// [`UnitError::BadDuration`] for anything else, [`UnitError::DurationTooLarge`] beyond
/// `Duration::MAX`.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::BadDuration(s.to_string());
    let (num, unit) = split_number(s.trim());
    let nanos_per_unit: u128 = match unit {
        "" | "s" => NANOS_PER_SEC,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        _ => return Err(bad()),
    };
    let (whole, fraction) = match num.split_once('.') {
        Some((w, f)) => (w, f),
        None => (num, ""),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > MAX_FRACTION_DIGITS
    {
        return Err(bad());
    }
    let too_large = || UnitError::DurationTooLarge(s.to_string());
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut nanos = whole.checked_mul(nanos_per_unit).ok_or_else(too_large)?;
    if !fraction.is_empty() {
        // Both factors are below 10^18 and 3.6·10^12, so the product fits in u128.
        let scale = 10u128.pow(fraction.len() as u32);
        let frac: u128 = fraction.parse().map_err(|_| bad())?;
        nanos = nanos
            .checked_add(frac * nanos_per_unit / scale)
            .ok_or_else(too_large)?;
    }
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| too_large())?;
    // The remainder is below 10^9, so it fits in u32.
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, sub))
}

/// Parses a size in bytes: a whole number, optionally followed by a unit, in any
/// case: `B`; `k`, `KiB` (1024); `m`, `MiB` (1024²); `g`, `GiB` (1024³); `KB`, `MB`,
/// `GB` (powers of 1000).
///
/// # Errors
///
/// [`UnitError::BadSize`] for anything else, [`UnitError::SizeTooLarge`] beyond `usize`.
pub fn parse_size(s: &str) -> Result<usize, UnitError> {
    let n = parse_size_u64(s)?;
    usize::try_from(n).map_err(|_| UnitError::SizeTooLarge(s.to_string()))
}

/// Parses a size in bytes like [`parse_size`], as a `u64`.
///
/// # Errors
///
/// [`UnitError::BadSize`] for anything but a size, [`UnitError::SizeTooLarge`] beyond
/// `u64`.
pub fn parse_size_u64(s: &str) -> Result<u64, UnitError> {
    let (num, unit) = split_number(s.trim());
    let bad = || UnitError::BadSize(s.to_string());
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let too_large = || UnitError::SizeTooLarge(s.to_string());
    let n: u64 = num.parse().map_err(|_| too_large())?;
    n.checked_mul(mul).ok_or_else(too_large)
}

/// Splits `text` into its leading number (digits and dots) and the unit after it.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Formats a duration the way the options accept it: whole milliseconds below a
/// second as `500ms`, anything else in seconds (`10s`, `1.5s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1000.0 && ms.fract() == 0.0 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
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
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0.1ms"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 7s "), Ok(Duration::from_secs(7)));
        for bad in [
            "",
            "s",
            ".s",
            ".",
            "x",
            "10 sec",
            "-1s",
            "5x",
            "5y",
            "1..2s",
            "ms5",
            "1e9999s",
            "nan",
            "99999999999999999999h",
            "999999999999999999999999999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = parse_duration("5y").unwrap_err().to_string();
        assert!(
            err.contains("invalid duration") && err.contains("30s"),
            "{err}"
        );
        // A bare number is seconds, for every option that takes a duration.
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64B"), Ok(64));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("16kib"), Ok(16 * 1024));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2KB"), Ok(2000));
        assert_eq!(parse_size("3MB"), Ok(3_000_000));
        assert_eq!(parse_size_u64("5GB"), Ok(5_000_000_000));
        for bad in [
            "",
            "KiB",
            "1.5k",
            "12 parsecs",
            "12XB",
            "-1",
            "99999999999999999999",
            "20000000000GiB",
        ] {
            assert!(parse_size_u64(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_size("lots")
            .unwrap_err()
            .to_string()
            .contains("64KiB"));
    }

    #[test]
    fn duration_display() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
