//! Peer-controlled text made safe for a log line: control characters cannot end a
//! line early, forge another one, or move a terminal's cursor.
//!
//! The escaping is Python's `http.server` (3.12 and later): every C0 control
//! character, DEL and the C1 controls become `\xNN`, and a backslash becomes `\\`,
//! so an escaped line can be told apart from one that merely contains `\x0a`.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is written escaped.
fn needs_escape(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\\')
}

/// `text` with control characters written as `\xNN` and `\` as `\\`; borrowed
/// when nothing needs escaping (the common case).
///
/// ```
/// use netkit::net::escape_log;
/// assert_eq!(escape_log("a.txt"), "a.txt");
/// assert_eq!(escape_log("x\nERROR forged"), "x\\x0aERROR forged");
/// assert_eq!(escape_log("C:\\dir"), "C:\\\\dir");
/// ```
pub fn escape_log(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape_log`] for bytes that may not be UTF-8: invalid sequences are
/// replaced (U+FFFD) before escaping.
pub fn escape_log_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(s) => escape_log(s),
        Cow::Owned(s) => Cow::Owned(escape_log(&s).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_backslash_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_log("plain/path ü"), "plain/path ü");
        assert_eq!(escape_log("\r\n\t\x1b[2J"), "\\x0d\\x0a\\x09\\x1b[2J");
        assert_eq!(escape_log("\x7f\u{85}"), "\\x7f\\x85");
        assert_eq!(escape_log("a\\x0a"), "a\\\\x0a");
        assert!(matches!(escape_log("ok"), Cow::Borrowed(_)));
        assert_eq!(escape_log_bytes(b"a\xffb\n"), "a\u{fffd}b\\x0a");
    }
}
