//! Directory listings, produced a bounded step at a time.
//!
//! A [`Listing`] keeps the directory open (`std::fs::ReadDir`) and is advanced by
//! [`Listing::step`], which reads or renders at most a fixed number of entries and
//! appends the HTML it made; the connection sends each step's output under the
//! same write-queue back-pressure as any other body. So a huge directory neither
//! stalls the event loop nor costs memory beyond a fixed bound per connection.
//!
//! Order: a directory of up to [`SORT_LIMIT`] entries is listed sorted by name,
//! case-insensitively (as Python's `http.server` sorts); a larger one is listed in
//! directory order, with a note saying so, because sorting it would need every
//! name in memory at once.
//!
//! The page: a `../` link (below the root), then one row per entry with its name
//! (directories end in `/`, symlinks are marked `@`, as Python marks them), its
//! modification time (UTC) and, for files, a human-readable size whose exact byte
//! count is the cell's `title`. Names are HTML-escaped and links percent-encoded
//! from the raw name bytes. Only what the service would serve is listed: dotfiles
//! are hidden unless asked for (as nginx's autoindex hides them), and symlinks
//! that leave the root, broken symlinks, and entries that are neither regular
//! files nor directories are left out.
//!
//! Out of scope: sending (the connection frames and queues the bytes), index files.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::fs::ReadDir;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use super::log::{civil_from_days, push_u64};

/// Directories with at most this many entries are listed sorted by name; larger
/// ones in directory order.
pub const SORT_LIMIT: usize = 10_000;

/// Directory entries read per [`Listing::step`] while collecting names.
const READ_BATCH: usize = 1024;

/// Entries rendered (each costs an `lstat`, and a `stat` and `realpath` for a
/// symlink) per [`Listing::step`].
const RENDER_BATCH: usize = 128;

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
    push_escaped(&mut out, s);
    out
}

/// Appends `s` to `out`, HTML-escaped.
fn push_escaped(out: &mut String, s: &str) {
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
}

/// Names collected from the directory, packed in one buffer.
#[derive(Debug, Default)]
struct Names {
    bytes: Vec<u8>,
    /// `(start, end)` of each name in `bytes`.
    spans: Vec<(u32, u32)>,
}

impl Names {
    fn push(&mut self, name: &[u8]) {
        let start = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(name);
        let end = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        self.spans.push((start, end));
    }

    fn get(&self, i: usize) -> &[u8] {
        self.spans
            .get(i)
            .and_then(|&(s, e)| self.bytes.get(s as usize..e as usize))
            .unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    /// Sorts by name, case-insensitively, then by the raw bytes.
    fn sort(&mut self) {
        let Names { bytes, spans } = self;
        let name = |&(s, e): &(u32, u32)| bytes.get(s as usize..e as usize).unwrap_or_default();
        spans.sort_unstable_by(|a, b| compare_names(name(a), name(b)));
    }
}

/// Python's listing order (`name.lower()`), with the raw bytes breaking ties.
fn compare_names(a: &[u8], b: &[u8]) -> Ordering {
    let folded = if a.is_ascii() && b.is_ascii() {
        a.iter()
            .map(u8::to_ascii_lowercase)
            .cmp(b.iter().map(u8::to_ascii_lowercase))
    } else {
        let (x, y) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
        x.chars()
            .flat_map(char::to_lowercase)
            .cmp(y.chars().flat_map(char::to_lowercase))
    };
    folded.then_with(|| a.cmp(b))
}

/// Where a listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading names, to sort them if the directory is small enough.
    Collect,
    /// Rendering the collected names (and, for a large directory, reading more).
    Render,
    /// The page is complete.
    Done,
}

/// One directory's listing page, produced a bounded step at a time.
#[derive(Debug)]
pub(crate) struct Listing {
    /// The canonical directory listed.
    dir: PathBuf,
    /// The canonical root: symlinks resolving outside it are not listed.
    root: PathBuf,
    /// The decoded URL path of the directory (`/a b/`).
    url_path: String,
    show_hidden: bool,
    /// The open directory; `None` once every entry has been read.
    entries: Option<ReadDir>,
    names: Names,
    /// The next collected name to render.
    next: usize,
    /// Whether the names are listed sorted (known once collecting ends).
    sorted: bool,
    phase: Phase,
}

impl Listing {
    /// Opens `dir` (canonical, under the canonical `root`) for listing at `url_path`.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub(crate) fn open(
        dir: &Path,
        root: &Path,
        url_path: &str,
        show_hidden: bool,
    ) -> io::Result<Listing> {
        Ok(Listing {
            entries: Some(std::fs::read_dir(dir)?),
            dir: dir.to_path_buf(),
            root: root.to_path_buf(),
            url_path: url_path.to_string(),
            show_hidden,
            names: Names::default(),
            next: 0,
            sorted: true,
            phase: Phase::Collect,
        })
    }

    /// Whether the whole page has been produced.
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Does a bounded amount of work and appends the HTML it produced to `out`
    /// (possibly nothing, while names are being collected). Returns whether the
    /// page is complete.
    pub(crate) fn step(&mut self, out: &mut String) -> bool {
        match self.phase {
            Phase::Collect => {
                if self.collect(READ_BATCH) {
                    self.sorted = self.entries.is_none();
                    if self.sorted {
                        self.names.sort();
                    }
                    self.phase = Phase::Render;
                    self.preamble(out);
                    self.render(out);
                }
            }
            Phase::Render => self.render(out),
            Phase::Done => {}
        }
        self.is_done()
    }

    /// Reads up to `max` more names. Returns whether collecting is over: the
    /// directory ended or [`SORT_LIMIT`] names are held.
    fn collect(&mut self, max: usize) -> bool {
        let Some(entries) = self.entries.as_mut() else {
            return true;
        };
        for _ in 0..max {
            if self.names.len() >= SORT_LIMIT {
                return true;
            }
            match entries.next() {
                Some(Ok(e)) => self.names.push(e.file_name().as_bytes()),
                // A failing read ends the listing with what was read so far.
                Some(Err(_)) | None => {
                    self.entries = None;
                    return true;
                }
            }
        }
        false
    }

    /// Renders up to [`RENDER_BATCH`] entries, reading the next batch of a large
    /// directory when the collected names run out, and the footer at the end.
    fn render(&mut self, out: &mut String) {
        let mut rendered = 0;
        while rendered < RENDER_BATCH {
            if self.next >= self.names.len() {
                if self.entries.is_none() {
                    self.footer(out);
                    self.phase = Phase::Done;
                    return;
                }
                // A large directory: render the next names in directory order.
                self.names.clear();
                self.next = 0;
                self.collect(RENDER_BATCH);
                continue;
            }
            let name = self.names.get(self.next).to_vec();
            self.next += 1;
            rendered += 1;
            self.row(&name, out);
        }
    }

    /// The head of the page, down to the `../` row.
    fn preamble(&self, out: &mut String) {
        out.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
        );
        let title = format!("Index of {}", self.url_path);
        push_escaped(out, &title);
        out.push_str(
            "</title>\n<style>\n\
             body { font-family: system-ui, sans-serif; margin: 1.5em 2em; }\n\
             table { border-collapse: collapse; }\n\
             th, td { padding: 0.2em 2em 0.2em 0; text-align: left; white-space: nowrap; }\n\
             th { border-bottom: 1px solid #ccc; }\n\
             .m, .s { font-variant-numeric: tabular-nums; }\n\
             .s { text-align: right; padding-right: 0; }\n\
             a { text-decoration: none; }\n\
             a:hover { text-decoration: underline; }\n\
             </style>\n</head>\n<body>\n<h1>",
        );
        push_escaped(out, &title);
        out.push_str("</h1>\n");
        if !self.sorted {
            out.push_str("<p>More than ");
            push_grouped(out, SORT_LIMIT as u64);
            out.push_str(" entries: listed in directory order.</p>\n");
        }
        out.push_str(
            "<table>\n<thead><tr><th>Name</th><th>Last modified (UTC)</th>\
             <th class=\"s\">Size</th></tr></thead>\n<tbody>\n",
        );
        if self.url_path != "/" {
            out.push_str(
                "<tr><td><a href=\"../\">../</a></td><td></td><td class=\"s\"></td></tr>\n",
            );
        }
    }

    fn footer(&self, out: &mut String) {
        out.push_str("</tbody>\n</table>\n<hr>\n</body>\n</html>\n");
    }

    /// One entry's row, if it is listed.
    fn row(&self, name: &[u8], out: &mut String) {
        if name.is_empty() || (!self.show_hidden && name.first() == Some(&b'.')) {
            return;
        }
        let path = self.dir.join(OsStr::from_bytes(name));
        let Ok(lmeta) = std::fs::symlink_metadata(&path) else {
            return; // gone since it was read
        };
        let is_link = lmeta.file_type().is_symlink();
        let meta = if is_link {
            // Only a link that resolves inside the root can be fetched.
            let inside = std::fs::canonicalize(&path).is_ok_and(|p| p.starts_with(&self.root));
            match std::fs::metadata(&path) {
                Ok(m) if inside => m,
                _ => return,
            }
        } else {
            lmeta
        };
        let is_dir = meta.is_dir();
        if !is_dir && !meta.is_file() {
            return;
        }
        let display = String::from_utf8_lossy(name);
        out.push_str("<tr><td><a href=\"");
        out.push_str(&percent_encoding::percent_encode(name, LINK).to_string());
        if is_dir {
            out.push('/');
        }
        out.push_str("\">");
        push_escaped(out, &display);
        if is_dir {
            out.push('/');
        }
        if is_link {
            out.push('@');
        }
        out.push_str("</a></td><td class=\"m\">");
        if let Some(secs) = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        {
            push_time(out, secs.as_secs());
        }
        if is_dir {
            out.push_str("</td><td class=\"s\">-</td></tr>\n");
        } else {
            out.push_str("</td><td class=\"s\" title=\"");
            push_u64(out, meta.len());
            out.push_str(" bytes\">");
            push_size(out, meta.len());
            out.push_str("</td></tr>\n");
        }
    }
}

/// Appends `n` with its digits grouped by three (`10,000`).
fn push_grouped(out: &mut String, n: u64) {
    let digits = n.to_string();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
}

/// Appends `secs` since the epoch as `2026-12-07 19:48` (UTC).
fn push_time(out: &mut String, secs: u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    push_u64(out, u64::try_from(y).unwrap_or(0));
    for (sep, n) in [
        ('-', u64::from(m)),
        ('-', u64::from(d)),
        (' ', rem / 3600),
        (':', rem % 3600 / 60),
    ] {
        out.push(sep);
        if n < 10 {
            out.push('0');
        }
        push_u64(out, n);
    }
}

/// Appends a size for people: bytes below 1 KiB, then KiB, MiB, ... with one
/// decimal below 10 (`512 B`, `1.5 KiB`, `12 KiB`, `3.4 MiB`), rounded to nearest.
fn push_size(out: &mut String, n: u64) {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        push_u64(out, n);
        out.push_str(" B");
        return;
    }
    // Integer arithmetic in the unit's scale, so no float formatting is needed;
    // move up while the value would round to 1024 or more of the unit.
    let mut unit = 0;
    let mut scale: u128 = 1024;
    while unit + 1 < UNITS.len() && (u128::from(n) + scale / 2) / scale >= 1024 {
        unit += 1;
        scale *= 1024;
    }
    let tenths = (u128::from(n) * 10 + scale / 2) / scale;
    if tenths < 100 {
        push_u64(out, u64::try_from(tenths / 10).unwrap_or(0));
        out.push('.');
        push_u64(out, u64::try_from(tenths % 10).unwrap_or(0));
    } else {
        let whole = (u128::from(n) + scale / 2) / scale;
        push_u64(out, u64::try_from(whole).unwrap_or(u64::MAX));
    }
    out.push(' ');
    out.push_str(UNITS.get(unit).unwrap_or(&"EiB"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole page, stepping until done (bounded).
    fn page(dir: &Path, url: &str, hidden: bool) -> String {
        let root = dir.canonicalize().unwrap();
        let mut l = Listing::open(&root, &root, url, hidden).unwrap();
        let mut out = String::new();
        for _ in 0..100_000 {
            if l.step(&mut out) {
                return out;
            }
        }
        panic!("listing did not finish");
    }

    #[test]
    fn escapes_sorts_and_marks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("b.txt"), "12345").unwrap();
        std::fs::write(d.join("A <x>&\".txt"), "").unwrap();
        std::fs::write(d.join("c d#?%.txt"), vec![0u8; 1536]).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("link")).unwrap();
        let page = page(d, "/x <y>/", false);
        assert!(page.contains("<title>Index of /x &lt;y&gt;/</title>"));
        let up = page.find("<a href=\"../\">../</a>").unwrap();
        let a = page.find(">A &lt;x&gt;&amp;&quot;.txt</a>").unwrap();
        let b = page.find(">b.txt</a></td><td class=\"m\">").expect("b.txt");
        let c = page
            .find("<a href=\"c%20d%23%3F%25.txt\">c d#?%.txt</a>")
            .unwrap();
        let l = page.find("<a href=\"link/\">link/@</a>").unwrap();
        let s = page.find("<a href=\"sub/\">sub/</a>").unwrap();
        assert!(up < a && a < b && b < c && c < l && l < s, "{page}");
        assert!(page.contains("href=\"A%20%3Cx%3E%26%22.txt\""));
        assert!(page.contains("title=\"5 bytes\">5 B</td>"), "{page}");
        assert!(page.contains("title=\"1536 bytes\">1.5 KiB</td>"), "{page}");
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn sizes_for_people() {
        let size = |n| {
            let mut s = String::new();
            push_size(&mut s, n);
            s
        };
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(10 * 1024 - 1), "10 KiB");
        assert_eq!(size(12 * 1024 + 100), "12 KiB");
        assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(size(3_565_158), "3.4 MiB");
        assert_eq!(size(209_715_200), "200 MiB");
        assert_eq!(size(u64::MAX), "16 EiB");
    }

    #[test]
    fn grouped_digits() {
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (10_000, "10,000"),
            (1_234_567, "1,234,567"),
        ] {
            let mut s = String::new();
            push_grouped(&mut s, n);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn times_are_utc_minutes() {
        let mut s = String::new();
        push_time(&mut s, 1_795_307_346);
        assert_eq!(s, "2026-11-22 00:29");
    }

    #[test]
    fn order_folds_case_and_breaks_ties_by_bytes() {
        let mut names: Vec<&[u8]> = vec![b"b", b"B", b"a", "É".as_bytes(), "é1".as_bytes()];
        names.sort_by(|a, b| compare_names(a, b));
        assert_eq!(
            names,
            vec![b"a" as &[u8], b"B", b"b", "É".as_bytes(), "é1".as_bytes()]
        );
    }

    #[test]
    fn escape_table() {
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
