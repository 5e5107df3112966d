//! Request heads: push parsing with httparse (complete, need more, or an error
//! status), with the limits of [`HttpOptions`](super::HttpOptions) checked before
//! anything grows past them.

use super::HttpOptions;

/// The parts of a request head the file service uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor: u8,
    pub(crate) keep_alive: bool,
    pub(crate) content_length: u64,
    pub(crate) expect: bool,
    pub(crate) if_none_match: Option<String>,
    pub(crate) if_modified_since: Option<String>,
    pub(crate) range: Option<String>,
    pub(crate) if_range: Option<String>,
}

impl Head {
    /// `GET /x HTTP/1.1`, for the access log.
    pub(crate) fn request_line(&self) -> String {
        let mut line = String::with_capacity(self.method.len() + self.target.len() + 10);
        line.push_str(&self.method);
        line.push(' ');
        line.push_str(&self.target);
        line.push_str(" HTTP/1.");
        line.push(char::from(b'0' + self.minor % 10));
        line
    }
}

/// The outcome of parsing the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The head is not complete yet (and within the limits).
    Partial,
    /// A complete head, and how many bytes it took.
    Complete(Head, usize),
    /// The request is refused with this status; the reason is logged.
    Error(u16, &'static str),
}

/// Header slots kept on the stack for a first parse.
const STACK_HEADERS: usize = 24;

/// Parses a request head at the start of `buf`.
pub(crate) fn parse(buf: &[u8], opts: &HttpOptions) -> Parsed {
    match memchr::memchr(b'\n', buf) {
        Some(i) if i > opts.max_request_line => return Parsed::Error(414, "request line too long"),
        None if buf.len() > opts.max_request_line => {
            return Parsed::Error(414, "request line too long")
        }
        _ => {}
    }
    // Most requests fit the header slots on the stack; one with more headers is
    // parsed again with the configured limit.
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = stack
        .get_mut(..opts.max_headers.min(STACK_HEADERS))
        .unwrap_or_default();
    let mut req = httparse::Request::new(slots);
    let mut result = req.parse(buf);
    if matches!(result, Err(httparse::Error::TooManyHeaders)) && opts.max_headers > STACK_HEADERS {
        heap.resize(opts.max_headers, httparse::EMPTY_HEADER);
        req = httparse::Request::new(&mut heap);
        result = req.parse(buf);
    }
    let n = match result {
        Ok(httparse::Status::Partial) if buf.len() > opts.max_header_bytes => {
            return Parsed::Error(431, "request head too large")
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Ok(httparse::Status::Complete(n)) if n > opts.max_header_bytes => {
            return Parsed::Error(431, "request head too large")
        }
        Ok(httparse::Status::Complete(n)) => n,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(431, "too many headers"),
        Err(httparse::Error::Version) => return Parsed::Error(505, "unsupported HTTP version"),
        Err(_) => return Parsed::Error(400, "malformed request"),
    };
    match head_from(&req) {
        Ok(head) => Parsed::Complete(head, n),
        Err(reason) => Parsed::Error(400, reason),
    }
}

fn head_from(req: &httparse::Request<'_, '_>) -> Result<Head, &'static str> {
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err("malformed request");
    };
    let mut head = Head {
        method: method.to_string(),
        target: target.to_string(),
        minor,
        ..Head::default()
    };
    let mut close = false;
    let mut keep = false;
    let mut length: Option<u64> = None;
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = h.name;
        let value = || {
            std::str::from_utf8(h.value)
                .map(str::trim)
                .map_err(|_| "header not UTF-8")
        };
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !h.value.trim_ascii().iter().all(|&b| is_host_byte(b)) {
                return Err("invalid Host header");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value()?.split(',') {
                close |= token.trim().eq_ignore_ascii_case("close");
                keep |= token.trim().eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let v = value()?;
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err("bad Content-Length");
            }
            let n: u64 = v.parse().map_err(|_| "bad Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length");
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("request bodies with Transfer-Encoding are not accepted");
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect = true;
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = Some(value()?.to_string());
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            head.if_modified_since = Some(value()?.to_string());
        } else if name.eq_ignore_ascii_case("range") {
            head.range = Some(value()?.to_string());
        } else if name.eq_ignore_ascii_case("if-range") {
            head.if_range = Some(value()?.to_string());
        }
    }
    // RFC 9112, section 3.2: an HTTP/1.1 request must carry exactly one Host.
    if hosts > 1 {
        return Err("more than one Host header");
    }
    if hosts == 0 && minor == 1 {
        return Err("HTTP/1.1 request without Host header");
    }
    head.content_length = length.unwrap_or(0);
    head.keep_alive = if minor == 1 { !close } else { keep && !close };
    Ok(head)
}

/// Whether `b` may appear in a Host value: `uri-host [ ":" port ]`, where a host
/// is a reg-name (unreserved, sub-delims, percent-encoding) or an IP literal.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> HttpOptions {
        HttpOptions::default()
    }

    #[test]
    fn complete_and_partial() {
        let req = b"GET /a?b HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\nrest";
        let Parsed::Complete(h, n) = parse(req, &opts()) else {
            panic!("not complete");
        };
        assert_eq!(n, req.len() - 4);
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/a?b");
        assert!(h.keep_alive);
        assert_eq!(h.range.as_deref(), Some("bytes=0-1"));
        for cut in 0..n {
            assert_eq!(parse(&req[..cut], &opts()), Parsed::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |r: &[u8]| match parse(r, &opts()) {
            Parsed::Complete(h, _) => h.keep_alive,
            other => panic!("{other:?}"),
        };
        assert!(ka(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn errors() {
        let e = |r: &[u8]| match parse(r, &opts()) {
            Parsed::Error(s, _) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(e(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(e(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"), 400);
        assert_eq!(e(b"GET  HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(e(b"\x00\x01\x02\r\n\r\n"), 400);
        assert_eq!(e(b"GET / HTTP/2.0\r\n\r\n"), 505);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
        assert_eq!(e(long.as_bytes()), 414);
        assert_eq!(e(&long.as_bytes()[..8500]), 414);
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(e(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), 431);
        // More headers than the stack slots, within the limit: parsed.
        let some: String = (0..98).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\nHost: h\r\n{some}Range: bytes=1-2\r\n\r\n");
        match parse(req.as_bytes(), &HttpOptions::default()) {
            Parsed::Complete(head, n) => {
                assert_eq!(n, req.len());
                assert_eq!(head.range.as_deref(), Some("bytes=1-2"));
            }
            other => panic!("{other:?}"),
        }
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(8400));
        assert_eq!(e(big.as_bytes()), 431);
        assert_eq!(e(&big.as_bytes()[..8300]), 431);
    }

    #[test]
    fn host_rules() {
        let parse = |r: &[u8]| parse(r, &opts());
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a.example:80\r\n\r\n"),
            Parsed::Complete(..)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"),
            Parsed::Complete(..)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
            Parsed::Complete(..)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.0\r\n\r\n"),
            Parsed::Complete(..)
        ));
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Error(400, _)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
