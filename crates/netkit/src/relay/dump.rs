//! Traffic dumps (`netkit`'s `--dump hex|text [--dump-file F]`): every chunk that
//! crosses a session, with a UTC timestamp, the connection id and the direction, as a
//! `hexdump -C`-style offset/hex/ASCII listing or as escaped text.
//!
//! Only formatting and writing live here; the relay's copy loops call
//! [`Dumper::chunk`], and a server taps its services' connections through
//! [`ServiceTap`] (a [`Tap`]).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::tap::Tap;
use crate::protocol::{CloseReason, ConnInfo};
use crate::services::daytime::civil_from_days;

/// Dumps a server's connections: `<` from the client, `>` to it, and notes
/// for accepted, end-of-file, file bodies and closed.
#[derive(Debug)]
pub struct ServiceTap(pub Arc<Dumper>);

impl Tap for ServiceTap {
    fn opened(&self, conn: u64, info: &ConnInfo) {
        self.0.note(conn, &format!("accepted from {}", info.peer));
    }
    fn received(&self, conn: u64, data: &[u8]) {
        self.0.chunk(conn, "<", data);
    }
    fn sent(&self, conn: u64, data: &[u8]) {
        self.0.chunk(conn, ">", data);
    }
    fn sent_file(&self, conn: u64, offset: u64, len: u64) {
        self.0
            .note(conn, &format!("> file, {len} bytes from offset {offset}"));
    }
    fn peer_eof(&self, conn: u64) {
        self.0.note(conn, "< end of file");
    }
    fn closed(&self, conn: u64, reason: &CloseReason) {
        self.0.note(conn, &format!("closed ({reason})"));
    }
}

/// How chunks are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// Offset, 16 hex bytes, ASCII column (like `hexdump -C`).
    Hex,
    /// The bytes as text, non-printables escaped (`\r`, `\n`, `\xNN`).
    Text,
}

/// Writes dumps of chunks to stderr or a file; shared by all connections.
pub struct Dumper {
    format: DumpFormat,
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Dumper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dumper")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Dumper {
    /// A dumper to `file`, or stderr when `None`.
    pub fn open(format: DumpFormat, file: Option<&Path>) -> io::Result<Dumper> {
        let out: Box<dyn Write + Send> = match file {
            Some(p) => Box::new(File::create(p)?),
            None => Box::new(io::stderr()),
        };
        Ok(Dumper {
            format,
            out: Mutex::new(out),
        })
    }

    /// Dumps one chunk of connection `conn` going in `direction` (e.g. `>`).
    pub fn chunk(&self, conn: u64, direction: &str, data: &[u8]) {
        let mut text = format!(
            "{} conn {conn} {direction} {} bytes\n",
            timestamp(SystemTime::now()),
            data.len()
        );
        match self.format {
            DumpFormat::Hex => hex(&mut text, data),
            DumpFormat::Text => escaped(&mut text, data),
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    /// Writes one free-form line (e.g. a connection opening or closing).
    pub fn note(&self, conn: u64, what: &str) {
        let line = format!("{} conn {conn} {what}\n", timestamp(SystemTime::now()));
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Appends the `hexdump -C` layout of `data`: offset, two groups of eight hex
/// bytes, and the printable ASCII between bars.
pub fn hex(out: &mut String, data: &[u8]) {
    for (row, line) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", row * 16);
        for i in 0..16 {
            match line.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        for &b in line {
            out.push(if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    let _ = writeln!(out, "{:08x}", data.len());
}

/// Appends `data` as text: printable ASCII as is, `\n` as `\n` plus a line break,
/// other bytes escaped; ends with a line break.
pub fn escaped(out: &mut String, data: &[u8]) {
    for &b in data {
        match b {
            b'\n' => out.push_str("\\n\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(char::from(b)),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

/// `2026-11-22T01:23:52.123456Z` for a time after the epoch.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hex_matches_hexdump_c() {
        let mut s = String::new();
        hex(&mut s, b"hello, world\n\x00\x01\xffABCDEFGH");
        assert_eq!(
            s,
            "00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a 00 01 ff  |hello, world....|\n\
             00000010  41 42 43 44 45 46 47 48                           |ABCDEFGH|\n\
             00000018\n"
        );
    }

    #[test]
    fn text_escapes_non_printables() {
        let mut s = String::new();
        escaped(&mut s, b"GET / HTTP/1.0\r\n\x00\\");
        assert_eq!(s, "GET / HTTP/1.0\\r\\n\n\\x00\\\\\n");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400) + Duration::from_micros(5);
        assert_eq!(timestamp(t), "2000-02-29T00:00:00.000005Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_311_832);
        assert_eq!(timestamp(t), "2026-11-22T01:43:52.000000Z");
    }
}
