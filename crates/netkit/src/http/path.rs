//! Mapping a request target to a file under the root, safely.
//!
//! The path is split on `/`, each segment percent-decoded exactly once, and then:
//! a `..` segment (however it was encoded), a segment that decodes to contain `/`,
//! `\` or NUL, or a raw `\` anywhere is refused ([`parse_target`]). The joined path
//! is then canonicalized (symlinks resolved) and must still lie under the canonical
//! root, so a symlink that leaves the root is refused too ([`resolve_target`]).
//! Nothing outside the root is ever named. The connection first tries the cheaper
//! kernel check (`openat2` beneath the root, in `sys.rs`) and comes here when that
//! cannot decide.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a request target is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The target is not an origin-form (`/...`) or absolute-form (`http://h/...`) URL (400).
    BadTarget,
    /// The target tries to leave the root or smuggle a separator (403); the reason is logged.
    Forbidden(&'static str),
    /// Nothing is there (404).
    NotFound,
}

/// A target that names something under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The canonical file system path (under the root).
    pub fs_path: PathBuf,
    /// The decoded URL path, for listings (`/a b/`).
    pub url_path: String,
    /// The path part of the target as received (still encoded), for redirects.
    pub raw_path: String,
    /// The query string, without `?`, if any.
    pub query: Option<String>,
}

/// A target that passed the lexical checks: a path relative to the root, not yet
/// looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The decoded segments joined with `/`, relative (empty for the root).
    pub(crate) rel: PathBuf,
    /// The decoded URL path, for listings (`/a b/`).
    pub(crate) url_path: String,
    /// The path part of the target as received (still encoded), for redirects.
    pub(crate) raw_path: String,
    /// The query string, without `?`, if any.
    pub(crate) query: Option<String>,
}

/// Resolves `target` (a request target as received) against the canonical `root`.
///
/// ```
/// use netkit::http::{resolve_target, Refusal};
/// let root = std::env::temp_dir().canonicalize().unwrap();
/// assert_eq!(resolve_target(&root, "/../etc/passwd"), Err(Refusal::Forbidden("dot-dot segment")));
/// assert_eq!(resolve_target(&root, "/%2e%2e/etc/passwd"), Err(Refusal::Forbidden("dot-dot segment")));
/// assert_eq!(resolve_target(&root, "/a%2fb"), Err(Refusal::Forbidden("encoded separator")));
/// assert!(resolve_target(&root, "/").is_ok());
/// ```
///
/// # Errors
/// A [`Refusal`] saying which status to answer.
pub fn resolve_target(root: &Path, target: &str) -> Result<Resolved, Refusal> {
    resolve_parsed(root, parse_target(target)?)
}

/// Splits and decodes `target`, refusing dot-dot segments, smuggled separators and
/// NUL bytes; nothing is looked up.
pub(crate) fn parse_target(target: &str) -> Result<Target, Refusal> {
    let path_and_query = origin_form(target).ok_or(Refusal::BadTarget)?;
    let without_fragment = path_and_query.split('#').next().unwrap_or("");
    let (raw_path, query) = match without_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (without_fragment, None),
    };
    if raw_path.contains('\\') {
        return Err(Refusal::Forbidden("backslash"));
    }
    let mut rel = PathBuf::with_capacity(raw_path.len());
    let mut url_path = String::with_capacity(raw_path.len() + 1);
    url_path.push('/');
    for seg in raw_path.split('/') {
        let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode_str(seg).into();
        match &*decoded {
            b"" | b"." => continue,
            b".." => return Err(Refusal::Forbidden("dot-dot segment")),
            d if d.contains(&b'/') || d.contains(&b'\\') => {
                return Err(Refusal::Forbidden("encoded separator"))
            }
            d if d.contains(&0) => return Err(Refusal::Forbidden("NUL byte")),
            d => {
                rel.push(OsStr::from_bytes(d));
                url_path.push_str(&String::from_utf8_lossy(d));
                url_path.push('/');
            }
        }
    }
    if !raw_path.ends_with('/') && url_path.len() > 1 {
        url_path.pop();
    }
    Ok(Target {
        rel,
        url_path,
        raw_path: raw_path.to_string(),
        query,
    })
}

/// The `Location` of the redirect from a directory named without its trailing
/// slash: the path as received (still encoded) with empty and `.` segments
/// dropped, then `/`, then the query. It always starts with exactly one `/`, so
/// a target such as `//host` can never turn into a redirect to another host.
///
/// ```text
/// //sub     -> /sub/
/// /a/./b?q  -> /a/b/?q
/// ```
pub(crate) fn dir_location(raw_path: &str, query: Option<&str>) -> String {
    let mut location = String::with_capacity(raw_path.len() + 2);
    for seg in raw_path.split('/').filter(|s| !s.is_empty() && *s != ".") {
        location.push('/');
        location.push_str(seg);
    }
    location.push('/');
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    location
}

/// Resolves a parsed target against the canonical `root` by canonicalizing it.
pub(crate) fn resolve_parsed(root: &Path, target: Target) -> Result<Resolved, Refusal> {
    let mut fs_path = root.to_path_buf();
    if !target.rel.as_os_str().is_empty() {
        fs_path.push(&target.rel);
    }
    let canonical = std::fs::canonicalize(&fs_path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Refusal::NotFound,
        _ if e.raw_os_error() == Some(libc::ENOTDIR) => Refusal::NotFound,
        _ => Refusal::Forbidden("cannot resolve"),
    })?;
    if !canonical.starts_with(root) {
        return Err(Refusal::Forbidden("symlink leaves the root"));
    }
    Ok(Resolved {
        fs_path: canonical,
        url_path: target.url_path,
        raw_path: target.raw_path,
        query: target.query,
    })
}

/// The `/path?query` part of an origin-form or absolute-form target.
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        target.get(7..)?
    } else if lower.starts_with("https://") {
        target.get(8..)?
    } else {
        return None;
    };
    Some(rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f.txt"), "x").unwrap();
        std::fs::write(root.join("a b.txt"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("updir")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/f.txt"), root.join("in")).unwrap();
        let canon = root.canonicalize().unwrap();
        (dir, canon)
    }

    #[test]
    fn serves_inside() {
        let (_d, r) = root();
        let x = resolve_target(&r, "/sub/f.txt?q=1#frag").unwrap();
        assert_eq!(x.fs_path, r.join("sub/f.txt"));
        assert_eq!(x.query.as_deref(), Some("q=1"));
        assert_eq!(x.url_path, "/sub/f.txt");
        let x = resolve_target(&r, "/a%20b.txt").unwrap();
        assert_eq!(x.url_path, "/a b.txt");
        let x = resolve_target(&r, "//sub/./f.txt").unwrap();
        assert_eq!(x.fs_path, r.join("sub/f.txt"));
        let x = resolve_target(&r, "http://example.com/sub/").unwrap();
        assert_eq!(x.url_path, "/sub/");
        assert_eq!(x.raw_path, "/sub/");
        assert_eq!(
            resolve_target(&r, "http://example.com").unwrap().url_path,
            "/"
        );
        // A symlink that stays inside is fine.
        assert_eq!(
            resolve_target(&r, "/in").unwrap().fs_path,
            r.join("sub/f.txt")
        );
    }

    #[test]
    fn directory_redirects_stay_on_this_host() {
        assert_eq!(dir_location("//sub", None), "/sub/");
        assert_eq!(dir_location("///a//b", Some("x=1")), "/a/b/?x=1");
        assert_eq!(dir_location("/./a/.", None), "/a/");
        assert_eq!(dir_location("/a%20b", None), "/a%20b/");
        assert_eq!(dir_location("", None), "/");
    }

    #[test]
    fn refuses_every_escape() {
        let (_d, r) = root();
        for t in [
            "/..",
            "/../secret",
            "/sub/../../secret",
            "/%2e%2e/secret",
            "/%2E%2E/secret",
            "/.%2e/secret",
            "/sub/%2e%2e/%2e%2e/secret",
            "/..%2fsecret",
            "/%2e%2e%2fsecret",
            "/sub%2f..%2f..%2fsecret",
            "/..\\secret",
            "/%5c..%5csecret",
            "/sub/f.txt%00.png",
            "/out",
            "/updir/secret",
            "/updir/",
        ] {
            let got = resolve_target(&r, t);
            assert!(matches!(got, Err(Refusal::Forbidden(_))), "{t}: {got:?}");
        }
        for t in ["*", "secret", "", "ftp://x/y", "../secret"] {
            assert_eq!(resolve_target(&r, t), Err(Refusal::BadTarget), "{t}");
        }
        assert_eq!(resolve_target(&r, "/nope"), Err(Refusal::NotFound));
        assert_eq!(resolve_target(&r, "/sub/f.txt/x"), Err(Refusal::NotFound));
        // `%2e%2e` decodes once: `%252e%252e` is a literal name, which does not exist.
        assert_eq!(
            resolve_target(&r, "/%252e%252e/secret"),
            Err(Refusal::NotFound)
        );
    }
}
