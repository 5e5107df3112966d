//! Stopping a server: the [`ShutdownHandle`], the stop signal every connection
//! watches, the grace deadline, and the count of connections in flight.
//!
//! Stopping is a pipe that becomes readable and stays readable (nobody drains it):
//! [`ShutdownHandle::shutdown`] writes to it, and so does a SIGINT/SIGTERM handler
//! when the server was asked to install one ([`register_signals`]; a second
//! signal aborts the drain and ends the process with status 1). Every poll loop (accept loop,
//! connection runners, datagram loops, fork children, which inherit it) watches the
//! pipe, so nobody sleeps through a shutdown and nothing polls on a tick. Whoever
//! notices it first fixes the grace deadline. Out of scope: closing connections
//! (the runners do that when the deadline passes).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use signal_hook::SigId;

use crate::net::Stream;

use super::sys;

/// Stops a running server from any thread, a handler or Protocol included.
///
/// `shutdown` returns at once (it never waits for the server, so calling it from
/// inside a handler cannot deadlock, unlike Python's `socketserver.shutdown`). The
/// server stops accepting, lets connections in flight finish for the grace
/// period, closes the rest, and `serve_forever` returns.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use netkit::server::{Conn, Server};
///
/// // The first client stops the server, from inside its own handler.
/// let server = Server::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .handler(|c: &mut Conn| {
///         c.shutdown_handle().shutdown();
///         c.write_all(b"bye")
///     })
///     .build()?;
/// let addr = server.local_addresses()[0].clone();
/// let t = std::thread::spawn(move || server.serve_forever());
/// let mut s = netkit::net::connect(&addr, Duration::from_secs(5))?;
/// let mut reply = String::new();
/// s.read_to_string(&mut reply)?;
/// assert_eq!(reply, "bye");
/// t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ShutdownHandle {
    pub(crate) inner: Arc<Lifecycle>,
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl ShutdownHandle {
    /// Asks the server to stop gracefully; returns immediately.
    pub fn shutdown(&self) {
        self.inner.begin();
        let _ = (&self.inner.stop_tx).write(b"s");
    }

    /// Whether a shutdown was asked for (by this handle, another, or a signal).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.stopping()
    }
}

/// The state shared by everything a server runs: stop pipe, accept-loop wakeups,
/// the grace deadline and the connections in flight.
pub(crate) struct Lifecycle {
    stopping: AtomicBool,
    deadline: OnceLock<Instant>,
    grace: Duration,
    stop_rx: UnixStream,
    stop_tx: UnixStream,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
    active: AtomicUsize,
    next_id: AtomicU64,
    blocking: Mutex<HashMap<u64, Stream>>,
}

impl Lifecycle {
    /// Makes the pipes; `grace` is how long connections may run after a shutdown.
    pub(crate) fn new(grace: Duration) -> io::Result<Lifecycle> {
        let (stop_rx, stop_tx) = UnixStream::pair()?;
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        for s in [&stop_rx, &stop_tx, &wake_rx, &wake_tx] {
            s.set_nonblocking(true)?;
        }
        Ok(Lifecycle {
            stopping: AtomicBool::new(false),
            deadline: OnceLock::new(),
            grace,
            stop_rx,
            stop_tx,
            wake_rx,
            wake_tx,
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            blocking: Mutex::new(HashMap::new()),
        })
    }

    /// Marks the server as stopping and fixes the grace deadline (idempotent).
    pub(crate) fn begin(&self) -> Instant {
        self.stopping.store(true, Ordering::SeqCst);
        *self.deadline.get_or_init(|| sys::after(self.grace))
    }

    /// The grace deadline, once stopping began (a cheap read, no system call).
    pub(crate) fn grace_deadline(&self) -> Option<Instant> {
        self.deadline.get().copied()
    }

    /// Whether stopping began; notices a signal that wrote the stop pipe.
    pub(crate) fn stopping(&self) -> bool {
        if self.stopping.load(Ordering::SeqCst) {
            return true;
        }
        let mut fds = [sys::PollFd::new(self.stop_fd(), sys::READ)];
        if matches!(sys::poll(&mut fds, Some(Instant::now())), Ok(1)) {
            self.begin();
            return true;
        }
        false
    }

    /// The read end of the stop pipe: readable once stopping began.
    pub(crate) fn stop_fd(&self) -> RawFd {
        self.stop_rx.as_raw_fd()
    }

    /// A clone of the stop pipe's write end, for a signal handler to write to.
    pub(crate) fn stop_writer(&self) -> io::Result<UnixStream> {
        self.stop_tx.try_clone()
    }

    /// A clone of the accept loop's wake pipe's write end (for SIGCHLD).
    pub(crate) fn wake_writer(&self) -> io::Result<UnixStream> {
        self.wake_tx.try_clone()
    }

    /// The read end of the accept loop's wake pipe.
    pub(crate) fn wake_fd(&self) -> RawFd {
        self.wake_rx.as_raw_fd()
    }

    /// Wakes the accept loop (a connection ended, a slot freed).
    pub(crate) fn wake(&self) {
        let _ = (&self.wake_tx).write(b"w");
    }

    /// Empties the accept loop's wake pipe.
    pub(crate) fn drain_wake(&self) {
        let mut buf = [0u8; 256];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Connections in flight.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Counts a new connection in flight; the guard uncounts it and wakes the
    /// accept loop when dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard {
            life: self.clone(),
            id: None,
        }
    }

    fn blocking(&self) -> MutexGuard<'_, HashMap<u64, Stream>> {
        // The map only holds socket clones: still usable after a panic elsewhere.
        self.blocking.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shuts down every blocking handler's socket (the grace period is over), so
    /// reads in progress return end-of-file and the handlers finish.
    pub(crate) fn close_blocking(&self) -> usize {
        let map = self.blocking();
        for s in map.values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        map.len()
    }
}

/// One connection in flight (see [`Lifecycle::enter`]).
pub(crate) struct ActiveGuard {
    life: Arc<Lifecycle>,
    id: Option<u64>,
}

impl ActiveGuard {
    /// Remembers a clone of a blocking handler's socket so the server can shut it
    /// down when the grace period ends.
    pub(crate) fn track(&mut self, stream: &Stream) {
        if let Ok(clone) = stream.try_clone() {
            let id = self.life.next_id.fetch_add(1, Ordering::SeqCst);
            self.life.blocking().insert(id, clone);
            self.id = Some(id);
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.life.blocking().remove(&id);
        }
        self.life.active.fetch_sub(1, Ordering::SeqCst);
        self.life.wake();
    }
}

/// What stderr is told when a second signal aborts the drain.
const ABORT_LINE: &[u8] = b"netkit: second signal: drain aborted, exiting with status 1\n";

/// Installs SIGINT and SIGTERM handlers for a server: the first signal writes
/// the stop pipe (a graceful stop: stop accepting, drain for the grace period);
/// any later one aborts the drain at once, as nginx and most servers do: it
/// writes [`ABORT_LINE`] to stderr (when stderr can take it without waiting)
/// and ends the process with `_exit(1)`. The
/// listeners (and their socket files) are already closed by then: the blocking
/// modes close them before the drain begins.
pub(crate) fn register_signals(life: &Lifecycle) -> io::Result<Vec<SigId>> {
    let stop: Arc<OwnedFd> = Arc::new(life.stop_writer()?.into());
    let seen = Arc::new(AtomicUsize::new(0));
    let mut ids = Vec::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let (stop, seen) = (stop.clone(), seen.clone());
        let action = move || on_signal(&seen, stop.as_raw_fd());
        // SAFETY: `on_signal` does only what is async-signal-safe: an atomic
        // add, write(2) on descriptors it owns or inherits, and _exit(2); it
        // neither allocates nor takes a lock, and the closure owns what it uses.
        ids.push(unsafe { signal_hook::low_level::register(sig, action) }?);
    }
    Ok(ids)
}

/// The signal handler's action: stop on the first signal, abort on the next.
fn on_signal(seen: &AtomicUsize, stop_fd: RawFd) {
    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
        // SAFETY: write(2) from a buffer we own, to the non-blocking stop pipe;
        // a full pipe (already readable) loses nothing.
        unsafe { libc::write(stop_fd, b"s".as_ptr().cast(), 1) };
        return;
    }
    let mut err = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll(2) without a timeout on one pollfd we own; then write(2) of
    // a static buffer to stderr only if it can take the line at once (a pipe
    // nobody reads must not keep the process from exiting; a closed one just
    // fails), then _exit(2), which ends the process without running anything
    // that is not async-signal-safe.
    unsafe {
        if libc::poll(&mut err, 1, 0) == 1 && err.revents & libc::POLLOUT != 0 {
            libc::write(
                libc::STDERR_FILENO,
                ABORT_LINE.as_ptr().cast(),
                ABORT_LINE.len(),
            );
        }
        libc::_exit(1);
    }
}
