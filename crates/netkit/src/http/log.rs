//! The access log: one [`AccessRecord`] per request, formatted like Python's
//! `http.server` and sent to a sink ([`AccessLog`]); by default `tracing::info!`.
//! Peer-controlled text (the request line, a unix client's address) is escaped
//! with [`escape_log`], so it can neither end the line nor forge another.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::net::escape_log;

/// One served request, as written to the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// The client's address (IP without port, or the unix socket path).
    pub client: String,
    /// The request line as received (`GET /x HTTP/1.1`), or what could be read of it.
    pub request_line: String,
    /// The response status.
    pub status: u16,
    /// Body bytes sent (0 for HEAD and bodiless responses). For a file or a
    /// listing, the bytes that actually went out: fewer than promised when the
    /// file shrank or the client went away.
    pub bytes: u64,
    /// Time from the complete request head to the queued response (for a file
    /// or a listing: to its last byte handed to the kernel).
    pub duration: Duration,
    /// When the request was answered.
    pub time: SystemTime,
}

impl AccessRecord {
    /// Appends the log line (without a newline) to `out`: the same text as
    /// [`Display`](fmt::Display), written without the formatting machinery, for
    /// sinks that log every request.
    pub fn write_to(&self, out: &mut String) {
        push_peer_text(out, &self.client);
        out.push_str(" - - [");
        push_log_date(out, self.time);
        out.push_str("] \"");
        push_peer_text(out, &self.request_line);
        out.push_str("\" ");
        push_u64(out, u64::from(self.status));
        out.push(' ');
        push_u64(out, self.bytes);
        out.push(' ');
        // Milliseconds with one decimal, rounded half up.
        let tenths = (self.duration.as_micros() + 50) / 100;
        push_u64(out, u64::try_from(tenths / 10).unwrap_or(u64::MAX));
        out.push('.');
        push_u64(out, (tenths % 10) as u64);
        out.push_str("ms");
    }
}

impl fmt::Display for AccessRecord {
    /// `127.0.0.1 - - [22/Nov/2026 00:29:06] "GET /x HTTP/1.1" 200 1234 0.3ms`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::with_capacity(96);
        self.write_to(&mut line);
        f.write_str(&line)
    }
}

/// Appends peer-controlled text escaped as [`escape_log`] escapes it (control
/// characters as `\xNN`, `\` as `\\`), and `"` as `\x22` so that the quoted
/// request line cannot be closed early.
fn push_peer_text(out: &mut String, text: &str) {
    let escaped = escape_log(text);
    if escaped.contains('"') {
        out.push_str(&escaped.replace('"', "\\x22"));
    } else {
        out.push_str(&escaped);
    }
}

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

type Sink = dyn Fn(&AccessRecord) + Send + Sync;

/// Where access log lines go: `tracing::info!` by default, or any function.
#[derive(Clone, Default)]
pub struct AccessLog(Option<Arc<Sink>>);

impl AccessLog {
    /// Sends each record to `f` instead of `tracing`.
    pub fn to_fn(f: impl Fn(&AccessRecord) + Send + Sync + 'static) -> AccessLog {
        AccessLog(Some(Arc::new(f)))
    }

    /// Logs one record.
    pub fn log(&self, rec: &AccessRecord) {
        match &self.0 {
            Some(f) => f(rec),
            None => tracing::info!(target: "netkit::http::access", "{rec}"),
        }
    }
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "AccessLog(fn)"
        } else {
            "AccessLog(tracing)"
        })
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `22/Nov/2026 00:29:06` (UTC), the date format of `http.server`'s log.
#[cfg(test)]
fn log_date(t: SystemTime) -> String {
    let mut s = String::new();
    push_log_date(&mut s, t);
    s
}

/// Appends `t` as `22/Nov/2026 00:29:06` (UTC), formatted at most once a second
/// per thread.
fn push_log_date(out: &mut String, t: SystemTime) {
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            let (days, rem) = (secs / 86_400, secs % 86_400);
            let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
            let month = MONTHS.get(m.saturating_sub(1) as usize).unwrap_or(&"Jan");
            cache.1 = format!(
                "{d:02}/{month}/{y} {:02}:{:02}:{:02}",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            );
            cache.0 = secs;
        }
        out.push_str(&cache.1);
    });
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_http_server() {
        let rec = AccessRecord {
            client: "127.0.0.1".into(),
            request_line: "GET /x HTTP/1.1".into(),
            status: 200,
            bytes: 1234,
            duration: Duration::from_micros(300),
            time: UNIX_EPOCH + Duration::from_secs(1_795_307_346),
        };
        assert_eq!(
            rec.to_string(),
            "127.0.0.1 - - [22/Nov/2026 00:29:06] \"GET /x HTTP/1.1\" 200 1234 0.3ms"
        );
    }

    #[test]
    fn durations_round_to_a_tenth_and_numbers_are_whole() {
        let mut rec = AccessRecord {
            client: "::1".into(),
            request_line: "HEAD / HTTP/1.0".into(),
            status: 304,
            bytes: 0,
            duration: Duration::from_micros(12_349),
            time: UNIX_EPOCH,
        };
        assert!(rec
            .to_string()
            .ends_with("\"HEAD / HTTP/1.0\" 304 0 12.3ms"));
        rec.duration = Duration::from_micros(12_350);
        rec.bytes = u64::MAX;
        assert!(rec.to_string().ends_with(" 18446744073709551615 12.4ms"));
    }

    #[test]
    fn dates() {
        assert_eq!(log_date(UNIX_EPOCH), "01/Jan/1970 00:00:00");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(log_date(leap), "29/Feb/2000 00:00:00");
    }

    #[test]
    fn control_characters_are_escaped() {
        let rec = AccessRecord {
            client: "c".into(),
            request_line: "GET /\x1b[31m HTTP/1.1".into(),
            status: 404,
            bytes: 0,
            duration: Duration::ZERO,
            time: UNIX_EPOCH,
        };
        assert!(rec.to_string().contains("GET /\\x1b[31m"));
        let quoted = AccessRecord {
            request_line: "GET /\"q\" HTTP/1.1".into(),
            ..rec
        };
        assert!(quoted.to_string().contains("\"GET /\\x22q\\x22 HTTP/1.1\""));
        let forged = AccessRecord {
            request_line: "GET /a\r\n1.2.3.4 - - [x] \"GET / HTTP/1.1\" 200 1 0.1ms".into(),
            client: "/tmp/s\n".into(),
            ..quoted
        };
        let line = forged.to_string();
        assert!(!line.contains(['\n', '\r']), "{line}");
        assert!(line.starts_with("/tmp/s\\x0a - - ["), "{line}");
    }
}
