//! MIME types from file extensions: a table of the common ones, with
//! `application/octet-stream` for the rest. Text types carry `; charset=utf-8`.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Extension (lowercase) to MIME type, text types with their charset.
const TABLE: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("text", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "text/xml; charset=utf-8"),
    ("py", "text/x-python; charset=utf-8"),
    ("rs", "text/x-rust; charset=utf-8"),
    ("c", "text/x-c; charset=utf-8"),
    ("h", "text/x-c; charset=utf-8"),
    ("sh", "text/x-sh; charset=utf-8"),
    ("json", "application/json"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tgz", "application/gzip"),
    ("bz2", "application/x-bzip2"),
    ("xz", "application/x-xz"),
    ("zst", "application/zstd"),
    ("tar", "application/x-tar"),
    ("7z", "application/x-7z-compressed"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("ico", "image/vnd.microsoft.icon"),
    ("bmp", "image/bmp"),
    ("avif", "image/avif"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
    ("flac", "audio/flac"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
];

/// The default for unknown extensions.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The `Content-Type` for a file name, from its extension (case-insensitive).
///
/// ```
/// use netkit::http::content_type;
/// assert_eq!(content_type("a/INDEX.HTML".as_ref()), "text/html; charset=utf-8");
/// assert_eq!(content_type("x.png".as_ref()), "image/png");
/// assert_eq!(content_type("noext".as_ref()), "application/octet-stream");
/// ```
pub fn content_type(path: &Path) -> &'static str {
    // The extension as `Path::extension` sees it: after the last dot of the last
    // component, unless that dot starts the name (`.bashrc`).
    let bytes = path.as_os_str().as_bytes();
    let name = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    let ext = match memchr::memrchr(b'.', name) {
        Some(dot) if dot > 0 => name.get(dot + 1..).unwrap_or_default(),
        _ => return OCTET_STREAM,
    };
    let mut lower = [0u8; 8];
    let Some(slot) = lower.get_mut(..ext.len()) else {
        return OCTET_STREAM; // longer than any known extension
    };
    for (l, b) in slot.iter_mut().zip(ext) {
        *l = b.to_ascii_lowercase();
    }
    TABLE
        .iter()
        .find(|(e, _)| e.as_bytes() == &*slot)
        .map_or(OCTET_STREAM, |(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table lookup by `Path::extension`, as the reference.
    fn by_extension(path: &Path) -> &'static str {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            return OCTET_STREAM;
        };
        TABLE
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(ext))
            .map_or(OCTET_STREAM, |(_, t)| t)
    }

    #[test]
    fn extensions_are_found_as_path_extension_finds_them() {
        for p in [
            "a/INDEX.HTML",
            "x.png",
            "noext",
            ".bashrc",
            "dir.d/file",
            "archive.tar.gz",
            "file.",
            "..",
            "a/.hidden.css",
            "weird.WOFF2",
            "long.extension-name",
            "/abs/path/Photo.JPeG",
        ] {
            assert_eq!(content_type(p.as_ref()), by_extension(p.as_ref()), "{p}");
        }
    }
}
