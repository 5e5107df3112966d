//! `daytime` (RFC 867): one line with the current date and time, then close.
//!
//! The line reads `Sunday, November 22, 2026 00:29:06-UTC` followed by `"\r\n"`.
//! Civil time is computed here from [`SystemTime`], in UTC, with no time-zone
//! database. The UDP form is [`UdpDaytime`](super::UdpDaytime).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::{Protocol, Transport};

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Sends [`daytime_line`] for the current time and closes.
///
/// ```
/// use netkit::protocol::testing::Script;
/// use netkit::services::Daytime;
///
/// let out = Script::new().run(Daytime);
/// assert!(out.text().ends_with("-UTC\r\n"));
/// assert!(out.closed);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Daytime;

impl Protocol for Daytime {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        t.write(daytime_line(SystemTime::now()).as_bytes());
        t.close();
    }

    fn data_received(&mut self, _data: &[u8], _t: &mut dyn Transport) {}
}

/// The daytime answer for `now`, `"\r\n"` included.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_795_307_346);
/// assert_eq!(netkit::services::daytime_line(t), "Sunday, November 22, 2026 00:29:06-UTC\r\n");
/// ```
pub fn daytime_line(now: SystemTime) -> String {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Before 1970: count backwards, rounding down to the whole second.
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    };
    let mut line = format_utc(secs);
    line.push_str("\r\n");
    line
}

/// Formats seconds since the Unix epoch as `Weekday, Month D, YYYY HH:MM:SS-UTC`.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4 counting from Sunday).
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let month = MONTHS[(month - 1) as usize];
    format!(
        "{weekday}, {month} {day}, {year} {:02}:{:02}:{:02}-UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month 1..=12,
/// day 1..=31), by Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let cases: &[(i64, &str)] = &[
            (0, "Thursday, January 1, 1970 00:00:00-UTC"),
            (1_795_307_346, "Sunday, November 22, 2026 00:29:06-UTC"),
            (951_782_400, "Tuesday, February 29, 2000 00:00:00-UTC"),
            (951_868_799, "Tuesday, February 29, 2000 23:59:59-UTC"),
            (4_107_542_400, "Monday, March 1, 2100 00:00:00-UTC"),
            (1_709_251_199, "Thursday, February 29, 2024 23:59:59-UTC"),
            (-1, "Wednesday, December 31, 1969 23:59:59-UTC"),
            (-86_400 * 365, "Wednesday, January 1, 1969 00:00:00-UTC"),
            (253_402_300_799, "Friday, December 31, 9999 23:59:59-UTC"),
        ];
        for &(secs, want) in cases {
            assert_eq!(format_utc(secs), want, "secs {secs}");
        }
    }

    #[test]
    fn every_day_of_a_leap_cycle_is_consecutive() {
        // Walk 400 years one day at a time: dates advance by exactly one day.
        let mut prev = civil_from_days(-1);
        for days in 0..146_097 {
            let cur = civil_from_days(days);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} -> {cur:?}"
            );
            prev = cur;
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        assert!(format_utc(i64::MAX).ends_with("-UTC"));
        assert!(format_utc(i64::MIN).ends_with("-UTC"));
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(
            daytime_line(before),
            "Wednesday, December 31, 1969 23:59:58-UTC\r\n"
        );
    }

    #[test]
    fn sends_current_time_then_closes() {
        let before = SystemTime::now();
        let out = Script::new().data(b"ignored").run(Daytime);
        let after = SystemTime::now();
        assert!(out.closed);
        assert_eq!(out.writes.len(), 1);
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let text = out.text();
        let matches =
            (secs(before)..=secs(after)).any(|s| text == format!("{}\r\n", format_utc(s)));
        assert!(matches, "{text:?}");
    }
}
