//! URLs and names for the client: parsing a URL (the `url` crate; scheme,
//! credentials, redirects and origins), the local
//! file name a URL suggests (sanitized so it never leaves the directory), the
//! `.part` path beside a target, `Content-Range` values, and base64 for basic auth.
//! Pure functions; no I/O.

use std::path::{Path, PathBuf};

use super::FetchError;

/// `NAME.part` beside `path`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// A safe local file name: the last path component, without separators, control
/// characters or leading dots; `index.html` when nothing is left.
///
/// ```
/// use netkit::http::fetch::sanitize_name;
/// assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
/// assert_eq!(sanitize_name("..\\..\\x.exe"), "x.exe");
/// assert_eq!(sanitize_name(".."), "index.html");
/// assert_eq!(sanitize_name(".bashrc"), "bashrc");
/// ```
pub fn sanitize_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_string();
    if cleaned.is_empty() {
        "index.html".to_string()
    } else {
        cleaned
    }
}

/// The file name a URL suggests: its last path segment, percent-decoded, sanitized.
///
/// ```
/// use netkit::http::fetch::name_from_url;
/// assert_eq!(name_from_url("http://h/a/b%20c.tar.gz?x=1#y"), "b c.tar.gz");
/// assert_eq!(name_from_url("http://h/"), "index.html");
/// assert_eq!(name_from_url("http://h"), "index.html");
/// assert_eq!(name_from_url("http://h/x/..%2f..%2fetc%2fpasswd"), "passwd");
/// ```
pub fn name_from_url(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    sanitize_name(&decoded)
}

/// `bytes START-END/SIZE` → (START, SIZE if known).
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, size) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let size = size.trim().parse().ok();
    Some((start, size))
}

/// A URL checked for the client: an absolute `http`, `https` or `file` URL
/// (parsed by the `url` crate, WHATWG rules), its credentials taken out.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// The URL without user and password.
    pub(crate) url: ::url::Url,
    /// `user:password` from the URL, percent-decoded.
    pub(crate) userinfo: Option<(String, String)>,
}

impl Parsed {
    pub(crate) fn is_file(&self) -> bool {
        self.url.scheme() == "file"
    }
}

/// Checks `url` as the client does before any request, and returns it
/// normalized and without its credentials.
///
/// ```
/// use netkit::http::fetch::check_url;
/// assert_eq!(check_url("HTTP://u:p@Example.COM:80/a b").unwrap(), "http://example.com/a%20b");
/// assert!(check_url("http://127.0.0.1:99999/").is_err());
/// ```
///
/// # Errors
/// [`FetchError::InvalidUrl`] or [`FetchError::UnsupportedScheme`].
pub fn check_url(url: &str) -> Result<String, FetchError> {
    parse_url(url).map(|p| p.url.into())
}

/// Parses `url` (the text the user gave).
pub(crate) fn parse_url(url: &str) -> Result<Parsed, FetchError> {
    let invalid = |reason: String| FetchError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let parsed = ::url::Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
    check_scheme(url, &parsed)?;
    // WHATWG parsing reads `http:///x` as host `x`; curl refuses it, as we do.
    if parsed.scheme() != "file" {
        let after = url.trim().split_once(':').map_or("", |(_, r)| r);
        if after.starts_with(":///") || after.starts_with("///") {
            return Err(invalid("no host".into()));
        }
    }
    Ok(split_userinfo(parsed))
}

/// Resolves a redirect's `Location` against the URL it came from.
pub(crate) fn join(base: &::url::Url, location: &str) -> Result<Parsed, FetchError> {
    let next = base.join(location).map_err(|e| FetchError::Http {
        url: base.to_string(),
        reason: format!("redirect to an invalid Location {location:?}: {e}"),
    })?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(FetchError::UnsupportedScheme {
            url: next.to_string(),
            scheme: next.scheme().to_string(),
        });
    }
    Ok(split_userinfo(next))
}

/// Whether two URLs have the same scheme, host and port (the port a scheme
/// implies counts as given): credentials go only where they were given.
pub(crate) fn same_origin(a: &::url::Url, b: &::url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn check_scheme(text: &str, url: &::url::Url) -> Result<(), FetchError> {
    if matches!(url.scheme(), "http" | "https" | "file") {
        Ok(())
    } else {
        Err(FetchError::UnsupportedScheme {
            url: text.to_string(),
            scheme: url.scheme().to_string(),
        })
    }
}

fn split_userinfo(mut url: ::url::Url) -> Parsed {
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let userinfo = (!url.username().is_empty() || url.password().is_some())
        .then(|| (dec(url.username()), dec(url.password().unwrap_or(""))));
    if userinfo.is_some() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    Parsed { url, userinfo }
}

/// Standard base64 with padding, for basic auth.
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_differ_by_scheme_host_or_port() {
        let u = |s: &str| ::url::Url::parse(s).unwrap();
        assert!(same_origin(&u("http://h/a"), &u("http://h:80/b")));
        assert!(!same_origin(&u("http://h:8080/"), &u("http://h:8081/")));
        assert!(!same_origin(&u("http://h/"), &u("https://h/")));
        assert!(!same_origin(&u("http://h/"), &u("http://g/")));
    }

    use super::*;

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn urls() {
        let u = parse_url("http://us%40er:p%3Ass@host:8080/p?q").unwrap();
        assert_eq!(u.userinfo, Some(("us@er".into(), "p:ss".into())));
        assert_eq!(u.url.as_str(), "http://host:8080/p?q");
        for bad in [
            "http://127.0.0.1:99999/x",
            "http://127.0.0.1:65536/x",
            "http://127.0.0.1:abc/x",
            "http://[::1/x",
            "http://exa mple.com/",
        ] {
            assert!(
                matches!(parse_url(bad), Err(FetchError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_url("ftp://x/"),
            Err(FetchError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            parse_url("nonsense"),
            Err(FetchError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_url("http:///x"),
            Err(FetchError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 10-19/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, None)));
        assert_eq!(parse_content_range("bytes */100"), None);
    }

    #[test]
    fn part_paths() {
        assert_eq!(
            part_path(Path::new("/a/b.iso")),
            PathBuf::from("/a/b.iso.part")
        );
    }
}
