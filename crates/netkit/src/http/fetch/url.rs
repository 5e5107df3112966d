//! URLs and names for the client: splitting a URL (scheme, credentials), the local
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

/// A URL split for our purposes.
#[derive(Debug)]
pub(crate) struct Url {
    pub(crate) scheme: String,
    /// Everything after `scheme://`.
    pub(crate) rest: String,
    pub(crate) userinfo: Option<(String, String)>,
    pub(crate) without_userinfo: String,
}

pub(crate) fn parse_url(url: &str) -> Result<Url, FetchError> {
    let invalid = |reason: &str| FetchError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("no scheme://"))?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "file") {
        return Err(FetchError::UnsupportedScheme {
            url: url.to_string(),
            scheme,
        });
    }
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((ui, host)) => {
            let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (Some((dec(u), dec(p))), host)
        }
        None => (None, authority),
    };
    if host.is_empty() && scheme != "file" {
        return Err(invalid("no host"));
    }
    Ok(Url {
        without_userinfo: format!("{scheme}://{host}{tail}"),
        rest: rest.to_string(),
        scheme,
        userinfo,
    })
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
        assert_eq!(u.without_userinfo, "http://host:8080/p?q");
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
