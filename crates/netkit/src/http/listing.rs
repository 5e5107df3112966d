//! Directory listings in the shape of Python's `http.server`: names sorted
//! case-insensitively, HTML-escaped, links percent-encoded, directories with a
//! trailing `/`, symlinks marked `@`, and file sizes.

use std::fmt::Write as _;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// Bytes kept as they are in links: unreserved characters (RFC 3986) and `/`.
const LINK: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attributes.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes raw name bytes for an `href`.
fn encode_link(name: &[u8]) -> String {
    percent_encoding::percent_encode(name, LINK).to_string()
}

struct Entry {
    name: Vec<u8>,
    display: String,
    is_dir: bool,
    is_link: bool,
    size: Option<u64>,
}

/// Renders the listing page of directory `dir`, shown at URL path `url_path`.
pub(crate) fn render(url_path: &str, dir: &Path) -> io::Result<Vec<u8>> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().as_bytes().to_vec();
        let is_link = e.file_type().is_ok_and(|t| t.is_symlink());
        let meta = std::fs::metadata(e.path()).ok();
        let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
        let size = meta.filter(|m| m.is_file()).map(|m| m.len());
        let display = String::from_utf8_lossy(&name).into_owned();
        entries.push(Entry {
            name,
            display,
            is_dir,
            is_link,
            size,
        });
    }
    entries.sort_by(|a, b| {
        a.display
            .to_lowercase()
            .cmp(&b.display.to_lowercase())
            .then_with(|| a.name.cmp(&b.name))
    });
    let title = html_escape(&format!("Directory listing for {url_path}"));
    let mut page = String::new();
    page.push_str("<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = write!(
        page,
        "<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<hr>\n<ul>\n"
    );
    for e in &entries {
        let mut link = encode_link(&e.name);
        let mut display = e.display.clone();
        if e.is_dir {
            link.push('/');
            display.push('/');
        }
        if e.is_link {
            display.push('@');
        }
        let _ = write!(
            page,
            "<li><a href=\"{}\">{}</a>",
            html_escape(&link),
            html_escape(&display)
        );
        if let Some(size) = e.size {
            let _ = write!(page, " {size}");
        }
        page.push_str("</li>\n");
    }
    page.push_str("</ul>\n<hr>\n</body>\n</html>\n");
    Ok(page.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("b.txt"), "12345").unwrap();
        std::fs::write(d.join("A <x>&\".txt"), "").unwrap();
        std::fs::write(d.join("c d#?%.txt"), "1").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("link")).unwrap();
        let page = String::from_utf8(render("/x <y>/", d).unwrap()).unwrap();
        assert!(page.contains("<title>Directory listing for /x &lt;y&gt;/</title>"));
        let a = page.find("A &lt;x&gt;&amp;&quot;.txt").unwrap();
        let b = page.find(">b.txt</a> 5</li>").unwrap();
        let c = page
            .find("<a href=\"c%20d%23%3F%25.txt\">c d#?%.txt</a> 1")
            .unwrap();
        let l = page.find("<a href=\"link/\">link/@</a></li>").unwrap();
        let s = page.find("<a href=\"sub/\">sub/</a></li>").unwrap();
        assert!(a < b && b < c && c < l && l < s, "{page}");
        assert!(page.contains("href=\"A%20%3Cx%3E%26%22.txt\""));
    }

    #[test]
    fn escape_table() {
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
