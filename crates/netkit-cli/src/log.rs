//! Everything the command writes to stderr: log records (`tracing`), the
//! `listening on` lines, access-log lines and error messages.
//!
//! stderr can stop taking writes while a server runs: a closed pipe
//! (`netkit serve 2>&1 | head -1`), a closed terminal. Rust ignores SIGPIPE, so
//! such a write fails with `EPIPE` or `EIO`; `eprintln!` would then panic and
//! take a thread (or the server) down with it. Every stderr write of the command
//! goes through [`Stderr`] instead: a failed write drops the line and returns
//! as if it had succeeded, so logging can never
//! stop a server or its shutdown. Out of scope: the `logger` service's own
//! output (stdout, see `netkit::services::LogSink`) and dumps to a file.

use std::fmt;
use std::io::{self, IsTerminal, Write};

/// A writer to the process's stderr that never fails: a refused write is
/// dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A refused line is dropped: stderr being gone must not stop the server.
        let _ = io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

/// Writes one line (a newline is added) to stderr in one `write`, dropping it
/// if stderr refuses it.
pub fn line(args: fmt::Arguments<'_>) {
    let mut text = args.to_string();
    text.push('\n');
    let _ = Stderr.write(text.as_bytes());
}

/// [`line`], but only if stderr can take it at once (`poll(2)` says it is
/// writable): for the last words of a process that must exit even when
/// stderr is a pipe nobody reads.
pub fn line_if_ready(args: fmt::Arguments<'_>) {
    let mut fd = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll(2) on one pollfd we own, with no timeout.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) } == 1 && fd.revents & libc::POLLOUT != 0;
    if ready {
        line(args);
    }
}

/// `eprintln!` that can neither panic nor fail: see [`line`].
macro_rules! say {
    ($($arg:tt)*) => {
        crate::log::line(format_args!($($arg)*))
    };
}

/// The relays' [`netkit::relay::Log`]: each line through [`line`].
pub fn relay_log() -> netkit::relay::Log {
    std::sync::Arc::new(|text: &str| line(format_args!("{text}")))
}

/// Sends `tracing` records to stderr through [`Stderr`]; the level comes from
/// `NETKIT_LOG` or `RUST_LOG` (default info). Calling it again does nothing.
pub fn init() {
    let filter = std::env::var("NETKIT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .log_internal_errors(false)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}
