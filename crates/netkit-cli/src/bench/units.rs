//! Parsing of the human units on `netkit bench`'s command line: durations (`500ms`,
//! `30s`, `2m`) and byte sizes (`64`, `16KiB`, `1MiB`).
//!
//! Both parsers return a message fit for clap's "invalid value" error, so a bad value
//! exits 2 with the reason. Range checks that depend on the option (a positive
//! duration, a size cap) live with the option, not here.

use std::time::Duration;

/// Parses a duration: a number (decimals allowed) and a unit among `us`, `ms`, `s`,
/// `m`, `h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration '{text}': expected a number and a unit, like 500ms, 30s or 2m")
    };
    let (number, unit) = split_number(text.trim());
    let seconds_per_unit = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| bad())
}

/// Parses a byte count: an integer and an optional unit among `B`, `KB`, `MB`, `GB`
/// (powers of 1000) and `KiB`, `MiB`, `GiB` (powers of 1024), case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid size '{text}': expected a byte count like 64, 16KiB or 1MiB");
    let (number, unit) = split_number(text.trim());
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value: u64 = number.parse().map_err(|_| bad())?;
    value.checked_mul(multiplier).ok_or_else(bad)
}

/// Splits `text` into its leading number (digits and dots) and the unit after it.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Formats a duration the way the options accept it, for the human report.
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
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "5x", "-1s", "1..2s", "ms5", "1e9999s", "nan"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("64B"), Ok(64));
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("16kib"), Ok(16 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2KB"), Ok(2000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        for bad in [
            "",
            "KiB",
            "1.5KiB",
            "-1",
            "12XB",
            "99999999999999999999",
            "20000000000GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn duration_display() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
