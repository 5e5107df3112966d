//! MIME types from file extensions: a table of the common ones, with
//! `application/octet-stream` for the rest. Text types carry `; charset=utf-8`.

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
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return OCTET_STREAM;
    };
    TABLE
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(OCTET_STREAM, |(_, t)| t)
}
