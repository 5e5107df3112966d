//! Response heads and the small bodies the service writes itself (error pages,
//! redirects). File bodies are queued by the connection.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

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
/// `Content-Length`, `Connection`) and `extra`.
pub(crate) fn head(
    status: u16,
    content_length: u64,
    extra: &[(&str, &str)],
    persist: Persist,
) -> Vec<u8> {
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "HTTP/1.1 {status} {}\r\nServer: {SERVER}\r\nDate: ",
        reason(status)
    );
    push_date(&mut s);
    s.push_str("\r\n");
    for (name, value) in extra {
        let _ = write!(s, "{name}: {value}\r\n");
    }
    if status != 304 {
        let _ = write!(s, "Content-Length: {content_length}\r\n");
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
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            cache.1 = httpdate::fmt_http_date(now);
            cache.0 = secs;
        }
        s.push_str(&cache.1);
    });
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
        let h = String::from_utf8(head(200, 5, &[("ETag", "\"1\"")], Persist::Close)).unwrap();
        assert!(h.starts_with("HTTP/1.1 200 OK\r\nServer: netkit/"));
        assert!(h.contains("\r\nETag: \"1\"\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"));
        let h = String::from_utf8(head(304, 0, &[], Persist::KeepAlive { http10: true })).unwrap();
        assert!(!h.contains("Content-Length"));
        assert!(h.ends_with("Connection: keep-alive\r\n\r\n"));
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
