//! `logger`: prints each connection, each line it sends, and its departure.
//!
//! Answers seed 003's loggers (`select_logger.py`, `poll_logger.py`,
//! `twisted_logger.py`). Output matches theirs: `Got connection from ('127.0.0.1',
//! 50000)`, then each line as text (invalid UTF-8 replaced, as Python's
//! `decode(errors="replace")` does, and control characters escaped as `\xNN` so a
//! client cannot forge or rewrite log lines), then `('127.0.0.1', 50000) disconnected`. Addresses
//! are printed the way Python prints a socket address tuple; a Unix peer prints as
//! its path. Output goes to a [`LogSink`] (stdout by default), one flushed write per
//! line, so lines from concurrent connections never interleave mid-line.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::net::escape_log_bytes;
use crate::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use crate::protocol::{CloseReason, PeerAddr, Transport};

use super::last_line::{KeepLastLine, LastLine};

/// Where the logger's lines go: a shared, lockable writer (stdout by default).
///
/// ```
/// use netkit::services::LogSink;
/// let (sink, captured) = LogSink::capture();
/// sink.line("hello");
/// assert_eq!(captured.text(), "hello\n");
/// ```
#[derive(Clone)]
pub struct LogSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogSink(..)")
    }
}

impl Default for LogSink {
    fn default() -> Self {
        LogSink::stdout()
    }
}

impl LogSink {
    /// A sink writing to the process's standard output.
    pub fn stdout() -> Self {
        LogSink::new(io::stdout())
    }

    /// A sink writing to `w`.
    pub fn new(w: impl Write + Send + 'static) -> Self {
        LogSink(Arc::new(Mutex::new(Box::new(w))))
    }

    /// A sink writing to memory, and the handle to read what was written.
    pub fn capture() -> (LogSink, Captured) {
        let captured = Captured::default();
        (LogSink::new(captured.clone()), captured)
    }

    /// Writes `text` and a newline in one write, then flushes. A failing writer
    /// (say, stdout closed) loses the line; the service goes on.
    pub fn line(&self, text: &str) {
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.write_all(&buf).and_then(|()| w.flush()) {
            tracing::debug!(error = %e, "log line lost");
        }
    }
}

/// Bytes written to a [`LogSink::capture`] sink.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Formats an address as Python prints a socket address: `('127.0.0.1', 50000)`,
/// `('::1', 50000, 0, 0)`; a Unix peer as its path (or `unix:(unnamed)`).
pub fn python_addr(peer: &PeerAddr) -> String {
    match peer {
        PeerAddr::Inet(SocketAddr::V4(a)) => format!("('{}', {})", a.ip(), a.port()),
        PeerAddr::Inet(SocketAddr::V6(a)) => format!(
            "('{}', {}, {}, {})",
            a.ip(),
            a.port(),
            a.flowinfo(),
            a.scope_id()
        ),
        PeerAddr::Unix(_) => peer.to_string(),
    }
}

/// The logging line protocol; [`Logger::receiver`] makes a runnable one. It never
/// writes to the peer.
///
/// ```
/// use netkit::protocol::testing::Script;
/// use netkit::services::{LogSink, Logger};
///
/// let (sink, captured) = LogSink::capture();
/// let out = Script::new().data(b"hello\nworld\n").eof().run(Logger::receiver(sink, 1024));
/// assert!(out.written.is_empty());
/// assert_eq!(
///     captured.text(),
///     "Got connection from ('127.0.0.1', 50000)\nhello\nworld\n('127.0.0.1', 50000) disconnected\n"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Logger {
    sink: LogSink,
    peer: Option<String>,
}

impl Logger {
    /// A logger printing to `sink` (use [`Logger::receiver`] to get a runnable one).
    pub fn new(sink: LogSink) -> Self {
        Logger { sink, peer: None }
    }

    /// `Logger` in a [`LineReceiver`] splitting on `"\n"`, refusing lines longer than
    /// `max_line` bytes, and printing an unterminated last line at EOF.
    pub fn receiver(sink: LogSink, max_line: usize) -> KeepLastLine<Logger> {
        KeepLastLine::new(
            LineReceiver::new(Logger::new(sink))
                .with_delimiter(b"\n")
                .with_max_length(max_line),
        )
    }

    fn log_line(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.sink.line(&escape_log_bytes(line));
    }
}

impl LineProtocol for Logger {
    fn connection_made(&mut self, t: &mut LineTransport<'_>) {
        let peer = python_addr(t.peer_addr());
        self.sink.line(&format!("Got connection from {peer}"));
        self.peer = Some(peer);
    }

    fn line_received(&mut self, line: &[u8], _t: &mut LineTransport<'_>) {
        self.log_line(line);
    }

    fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
        tracing::warn!(
            peer = %t.peer_addr(),
            seen = partial.len(),
            "logger: line longer than the limit; closing the connection"
        );
        t.close();
    }

    fn connection_lost(&mut self, _reason: &CloseReason) {
        if let Some(peer) = self.peer.take() {
            self.sink.line(&format!("{peer} disconnected"));
        }
    }
}

impl LastLine for Logger {
    /// The select and poll seeds print whatever arrived: so is a last line.
    fn last_line(&mut self, line: &[u8], _t: &mut dyn Transport) {
        self.log_line(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;

    fn run(script: Script, max: usize) -> (crate::protocol::testing::Outcome, String) {
        let (sink, captured) = LogSink::capture();
        let out = script.run(Logger::receiver(sink, max));
        (out, captured.text())
    }

    #[test]
    fn prints_connection_lines_and_departure_like_the_seed() {
        let input = b"first line\r\nsecond\n\nbad \xff utf8\n";
        for size in [1, 3, 100] {
            let script = input
                .chunks(size)
                .fold(Script::new(), |s, c| s.data(c))
                .eof();
            let (out, text) = run(script, 1024);
            assert!(out.written.is_empty(), "the logger never answers");
            assert!(out.closed);
            assert_eq!(
                text,
                "Got connection from ('127.0.0.1', 50000)\nfirst line\nsecond\n\nbad \u{fffd} utf8\n('127.0.0.1', 50000) disconnected\n",
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn partial_last_line_is_printed_at_eof() {
        let (_, text) = run(Script::new().data(b"a\nno newline").eof(), 1024);
        assert_eq!(
            text,
            "Got connection from ('127.0.0.1', 50000)\na\nno newline\n('127.0.0.1', 50000) disconnected\n"
        );
    }

    #[test]
    fn ipv6_and_unix_peers() {
        let v6 = PeerAddr::Inet("[::1]:4242".parse().unwrap());
        let (_, text) = run(Script::new().peer(v6).eof(), 1024);
        assert_eq!(
            text,
            "Got connection from ('::1', 4242, 0, 0)\n('::1', 4242, 0, 0) disconnected\n"
        );
        let unix = PeerAddr::Unix(Some("/tmp/x.sock".into()));
        let (_, text) = run(Script::new().peer(unix), 1024);
        assert_eq!(
            text,
            "Got connection from /tmp/x.sock\n/tmp/x.sock disconnected\n"
        );
    }

    #[test]
    fn over_long_line_closes_without_printing_it() {
        let mut input = b"fine\n".to_vec();
        input.extend(std::iter::repeat(b'z').take(50));
        input.extend_from_slice(b"\nafter\n");
        let (out, text) = run(Script::new().data(&input), 10);
        assert!(out.closed);
        assert_eq!(
            text,
            "Got connection from ('127.0.0.1', 50000)\nfine\n('127.0.0.1', 50000) disconnected\n"
        );
    }

    #[test]
    fn lines_from_threads_never_interleave() {
        let (sink, captured) = LogSink::capture();
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let line = n.to_string().repeat(500);
                    for _ in 0..50 {
                        sink.line(&line);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = captured.text();
        assert_eq!(text.lines().count(), 200);
        for l in text.lines() {
            assert_eq!(l.len(), 500);
            assert!(l.bytes().all(|b| b == l.as_bytes()[0]), "mixed line");
        }
    }

    #[test]
    fn a_failing_writer_loses_lines_but_not_the_service() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Script::new()
            .data(b"x\n")
            .eof()
            .run(Logger::receiver(LogSink::new(Broken), 1024));
        assert!(out.closed);
    }
}
