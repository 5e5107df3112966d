//! `logger`: prints each connection, each line it sends, and its departure.
//!
//! Answers seed 003's loggers (`select_logger.py`, `poll_logger.py`,
//! `twisted_logger.py`). Output matches theirs: `Got connection from ('127.0.0.1',
//! 50000)`, then each line as text (invalid UTF-8 replaced, as Python's
//! `decode(errors="replace")` does), then `('127.0.0.1', 50000) disconnected`. Addresses
//! are printed the way Python prints a socket address tuple; a Unix peer prints as
//! its path. Output goes to a [`LogSink`] (stdout by default), one flushed write per
//! line, so lines from concurrent connections never interleave mid-line.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::protocol::PeerAddr;

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
