//! Response heads and the small bodies the service writes itself (error pages,
//! redirects). File bodies are queued by the connection.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::log::{civil_from_days, push_u64};
use super::SERVER;

/// The reason phrase for a status the service sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// How the connection goes on after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persist {
    /// Keep-alive; `Connection: keep-alive` is sent to an HTTP/1.0 client.
    KeepAlive { http10: bool },
    /// `Connection: close`, and the connection closes after the response.
    Close,
}

/// A response head: status line, the common headers (`Server`, `Date`,
/// `Content-Length`, `Connection`) and `extra`. Built by appending (no
/// formatting machinery: this runs once per request), with room for `body`
/// more bytes after it, so a small body joins it without growing the buffer.
pub(crate) fn head(
    status: u16,
    content_length: u64,
    extra: &[(&str, &str)],
    persist: Persist,
    body: usize,
) -> Vec<u8> {
    build_head(status, Some(content_length), extra, persist, body)
}

/// A response head for a body of unknown length: no `Content-Length`, so `extra`
/// says how the body ends (`Transfer-Encoding: chunked`), or `persist` is
/// [`Persist::Close`] and the body ends with the connection.
pub(crate) fn head_streamed(status: u16, extra: &[(&str, &str)], persist: Persist) -> Vec<u8> {
    build_head(status, None, extra, persist, 0)
}

fn build_head(
    status: u16,
    content_length: Option<u64>,
    extra: &[(&str, &str)],
    persist: Persist,
    body: usize,
) -> Vec<u8> {
    let mut s = String::with_capacity(256 + body);
    s.push_str("HTTP/1.1 ");
    push_u64(&mut s, u64::from(status));
    s.push(' ');
    s.push_str(reason(status));
    s.push_str("\r\nServer: ");
    s.push_str(SERVER);
    s.push_str("\r\nDate: ");
    push_date(&mut s);
    s.push_str("\r\n");
    for (name, value) in extra {
        s.push_str(name);
        s.push_str(": ");
        s.push_str(value);
        s.push_str("\r\n");
    }
    if let Some(len) = content_length.filter(|_| status != 304) {
        s.push_str("Content-Length: ");
        push_u64(&mut s, len);
        s.push_str("\r\n");
    }
    match persist {
        Persist::KeepAlive { http10: true } => s.push_str("Connection: keep-alive\r\n"),
        Persist::KeepAlive { http10: false } => {}
        Persist::Close => s.push_str("Connection: close\r\n"),
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// Appends the current time as an HTTP date, formatted at most once a second per thread.
fn push_date(s: &mut String) {
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            cache.1 = http_date(secs);
            cache.0 = secs;
        }
        s.push_str(&cache.1);
    });
}

/// `secs` since the epoch as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// the form `Date` and `Last-Modified` use.
pub(crate) fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    let mut s = String::with_capacity(29);
    // 1970-01-01 was a Thursday.
    s.push_str(DAYS.get(((days + 4) % 7) as usize).unwrap_or(&"Thu"));
    s.push_str(", ");
    push_2(&mut s, u64::from(d));
    s.push(' ');
    s.push_str(MONTHS.get(m.saturating_sub(1) as usize).unwrap_or(&"Jan"));
    s.push(' ');
    push_u64(&mut s, u64::try_from(y).unwrap_or(0));
    s.push(' ');
    push_2(&mut s, rem / 3600);
    s.push(':');
    push_2(&mut s, rem % 3600 / 60);
    s.push(':');
    push_2(&mut s, rem % 60);
    s.push_str(" GMT");
    s
}

/// Appends a number below 100 as two digits.
fn push_2(s: &mut String, n: u64) {
    s.push(char::from(b'0' + (n / 10 % 10) as u8));
    s.push(char::from(b'0' + (n % 10) as u8));
}

/// Appends `n` in lowercase hex.
pub(crate) fn push_hex(s: &mut String, n: u64) {
    let mut started = false;
    for shift in (0..16).rev() {
        let digit = (n >> (shift * 4)) & 0xf;
        if digit != 0 || started || shift == 0 {
            started = true;
            s.push(char::from(b"0123456789abcdef"[digit as usize]));
        }
    }
}

/// The HTML body of an error response, in the shape of `http.server`'s.
pub(crate) fn error_page(status: u16, message: &str) -> Vec<u8> {
    format!(
        "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Error response</title>\n</head>\n<body>\n<h1>Error response</h1>\n\
         <p>Error code: {status}</p>\n<p>Message: {}.</p>\n</body>\n</html>\n",
        super::listing::html_escape(message)
    )
    .into_bytes()
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, `*` matches).
pub(crate) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = bare(etag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = String::from_utf8(head(200, 5, &[("ETag", "\"1\"")], Persist::Close, 0)).unwrap();
        assert!(h.starts_with("HTTP/1.1 200 OK\r\nServer: netkit/"));
        assert!(h.contains("\r\nETag: \"1\"\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"));
        let h =
            String::from_utf8(head(304, 0, &[], Persist::KeepAlive { http10: true }, 0)).unwrap();
        assert!(!h.contains("Content-Length"));
        assert!(h.ends_with("Connection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn dates_and_hex_match_the_reference_formatters() {
        for secs in [0u64, 784_111_777, 951_782_400, 1_795_307_346, 4_102_444_799] {
            let t = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(http_date(secs), httpdate::fmt_http_date(t), "{secs}");
        }
        for n in [0u64, 1, 0xf, 0x10, 0xdead_beef, u64::MAX] {
            let mut s = String::new();
            push_hex(&mut s, n);
            assert_eq!(s, format!("{n:x}"));
        }
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"a-1\"", "\"a-1\""));
        assert!(etag_matches("W/\"a-1\"", "\"a-1\""));
        assert!(etag_matches("\"x\", \"a-1\"", "\"a-1\""));
        assert!(etag_matches("*", "\"a-1\""));
        assert!(!etag_matches("\"a-2\"", "\"a-1\""));
    }
}
