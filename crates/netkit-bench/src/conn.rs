//! One benchmark connection: its socket, its send/expect byte stream, and the state
//! machine that writes messages, checks every echoed byte and times each message.
//!
//! A connection moves through `Waiting` (a Unix connect refused for a full backlog,
//! retried), `Connecting`, `Open` and `Closed`. Any error closes it for good: the
//! error is counted by kind and the connection is not reopened, so a flaky server
//! shows up in the figures instead of being papered over. Per message the work is a
//! write, a read, a slice comparison and a histogram record; nothing allocates
//! except the description of a connection's (first) error.
//!
//! The poll loop, the send schedule and the clock belong to `worker`.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use super::pattern::Pattern;
use super::stats::{ErrorKind, Tally};
use super::target::Endpoint;

/// The most bytes one write moves (one read moves at most one more).
const MAX_WINDOW: u64 = 64 * 1024;

/// The receive buffer (and pattern window) length for messages of `size` bytes,
/// `depth` in flight: one byte more than can be owed, up to the cap. A read that fills
/// it either has more to come or carries bytes nobody sent; one that does not has
/// drained the socket, so ping-pong needs no extra read to see `WouldBlock`.
fn window(size: u64, depth: u64) -> u64 {
    size.saturating_mul(depth).clamp(1, MAX_WINDOW) + 1
}

/// Bytes of buffers one connection allocates up front (pattern, receive buffer,
/// send stamps), for a bound on the whole run's memory.
pub fn buffer_bytes(size: u64, depth: u64) -> u64 {
    let w = window(size, depth);
    Pattern::MAX_PERIOD as u64 + 2 * w + depth.saturating_mul(std::mem::size_of::<Instant>() as u64)
}

/// A connected (or connecting) TCP or Unix stream.
#[derive(Debug)]
enum Sock {
    /// TCP.
    Tcp(TcpStream),
    /// Unix stream socket.
    Unix(UnixStream),
}

impl Sock {
    /// Starts a non-blocking connect.
    fn connect(endpoint: &Endpoint) -> io::Result<Sock> {
        match endpoint {
            Endpoint::Tcp(addr) => TcpStream::connect(*addr).map(Sock::Tcp),
            Endpoint::Unix(path) => UnixStream::connect(path).map(Sock::Unix),
        }
    }

    /// Registers for readable and writable edges; both stay registered for life.
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self {
            Sock::Tcp(s) => registry.register(s, token, interest),
            Sock::Unix(s) => registry.register(s, token, interest),
        }
    }

    /// Removes the socket from the poll.
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => registry.deregister(s),
            Sock::Unix(s) => registry.deregister(s),
        }
    }

    /// Whether a pending connect has finished: `Ok(true)` connected, `Ok(false)`
    /// still in progress, `Err` failed (mio's documented check: `take_error`, then
    /// `peer_addr`).
    fn connect_finished(&self) -> io::Result<bool> {
        let (pending, peer) = match self {
            Sock::Tcp(s) => (s.take_error()?, s.peer_addr().map(drop)),
            Sock::Unix(s) => (s.take_error()?, s.peer_addr().map(drop)),
        };
        if let Some(e) = pending {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Turns Nagle off on TCP, so small messages leave at once.
    fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_nodelay(true),
            Sock::Unix(_) => Ok(()),
        }
    }

    /// One `read(2)`.
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }

    /// One `write(2)`.
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
}

/// Open-loop pacing: message `k` of connection `id` is due at
/// `start + (id + k * connections) / rate` seconds, so the run sends `rate` messages
/// a second in all, evenly staggered across connections.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// When the schedule starts (the start of the run).
    pub start: Instant,
    /// Connections in the whole run.
    pub connections: u64,
    /// Messages per second, all connections together.
    pub rate: u64,
}

impl Schedule {
    /// When message `seq` of connection `id` should be sent.
    #[inline]
    pub fn intended(&self, id: u64, seq: u64) -> Instant {
        let slot = u128::from(id) + u128::from(seq) * u128::from(self.connections);
        let ns = slot * 1_000_000_000 / u128::from(self.rate.max(1));
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        self.start
            .checked_add(Duration::from_nanos(ns))
            .unwrap_or(self.start + Duration::from_secs(86_400 * 365))
    }
}

/// What every connection of a worker shares: the run's parameters and the tally.
#[derive(Debug)]
pub struct Ctx {
    /// Message size in bytes.
    pub size: u64,
    /// Most messages in flight per connection (1 is ping-pong).
    pub depth: u64,
    /// Messages completing at or after this instant are measured...
    pub window_start: Instant,
    /// ...and before this one; the run ends here.
    pub window_end: Instant,
    /// Open-loop pacing, if `--rate` was given.
    pub schedule: Option<Schedule>,
    /// No byte moved for this long while some were owed: timeout.
    pub timeout: Duration,
    /// The loop's clock, read once per wakeup; used for progress, not latency.
    pub now: Instant,
    /// Connections not yet closed.
    pub live: usize,
    /// Messages completed, warmup included (for the progress line).
    pub completed: u64,
    /// The figures.
    pub tally: Tally,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A Unix connect found the backlog full; try again at the next check.
    Waiting,
    /// A non-blocking connect is in progress.
    Connecting,
    /// Connected: sending and checking echoes.
    Open,
    /// Stopped, for an error or the end of the run.
    Closed,
}

/// One connection of the benchmark.
#[derive(Debug)]
pub struct Conn {
    /// Run-wide connection number; seeds the pattern and the schedule.
    id: u64,
    /// Poll token (index in the worker's table).
    token: Token,
    /// The socket, while connecting or open.
    sock: Option<Sock>,
    /// Life-cycle state.
    phase: Phase,
    /// The bytes sent, and so expected back.
    pattern: Pattern,
    /// Receive buffer.
    rbuf: Box<[u8]>,
    /// Bytes written so far.
    sent: u64,
    /// Bytes echoed and verified so far.
    recvd: u64,
    /// Messages released for sending.
    started: u64,
    /// Messages whose echo is complete.
    done: u64,
    /// Messages whose intended send time has passed (open loop); `u64::MAX` otherwise.
    pub due: u64,
    /// Send time of each message in flight, by `seq % depth` (closed loop).
    stamps: Box<[Instant]>,
    /// Last time a byte moved (or the connect started).
    last_progress: Instant,
    /// When the first connect attempt was made.
    opened_at: Instant,
}

impl Conn {
    /// A connection that has not dialled yet.
    pub fn new(id: u64, token: Token, ctx: &Ctx) -> Conn {
        let window = window(ctx.size, ctx.depth) as usize;
        let depth = usize::try_from(ctx.depth).unwrap_or(1).max(1);
        Conn {
            id,
            token,
            sock: None,
            phase: Phase::Waiting,
            pattern: Pattern::new(id, ctx.size, window),
            rbuf: vec![0u8; window].into_boxed_slice(),
            sent: 0,
            recvd: 0,
            started: 0,
            done: 0,
            due: if ctx.schedule.is_some() { 0 } else { u64::MAX },
            stamps: vec![ctx.now; depth].into_boxed_slice(),
            last_progress: ctx.now,
            opened_at: ctx.now,
        }
    }

    /// Run-wide connection number.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether messages can be sent now.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Starts the non-blocking connect.
    pub fn dial(&mut self, endpoint: &Endpoint, registry: &Registry, ctx: &mut Ctx) {
        let mut sock = match Sock::connect(endpoint) {
            Ok(sock) => sock,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return, // backlog full
            Err(e) => {
                let id = self.id;
                return self.fail(ErrorKind::Connect, ctx, || {
                    format!("connection {id}: connect: {e}")
                });
            }
        };
        if let Err(e) = sock.register(registry, self.token) {
            let id = self.id;
            return self.fail(ErrorKind::Other, ctx, || {
                format!("connection {id}: registering with the poll: {e}")
            });
        }
        self.sock = Some(sock);
        self.phase = Phase::Connecting;
    }

    /// Handles a readiness event for this connection.
    pub fn on_event(&mut self, event: &Event, registry: &Registry, ctx: &mut Ctx) {
        match self.phase {
            Phase::Connecting => self.on_connect_event(registry, ctx),
            Phase::Open => {
                let closed = event.is_read_closed() || event.is_error();
                if event.is_readable() || closed {
                    self.on_readable(closed, registry, ctx);
                }
                if event.is_writable() && self.phase == Phase::Open {
                    self.flush(registry, ctx);
                }
            }
            Phase::Waiting | Phase::Closed => {}
        }
    }

    /// Checks whether the connect finished, and starts sending if it did.
    fn on_connect_event(&mut self, registry: &Registry, ctx: &mut Ctx) {
        let Some(sock) = self.sock.as_ref() else {
            return;
        };
        match sock.connect_finished() {
            Ok(false) => {}
            Ok(true) => {
                if let Err(e) = sock.set_nodelay() {
                    let id = self.id;
                    return self.close(registry, ErrorKind::Other, ctx, || {
                        format!("connection {id}: TCP_NODELAY: {e}")
                    });
                }
                self.phase = Phase::Open;
                self.last_progress = ctx.now;
                ctx.tally.connected += 1;
                self.pump(Instant::now(), registry, ctx);
            }
            Err(e) => {
                let id = self.id;
                self.close(registry, ErrorKind::Connect, ctx, || {
                    format!("connection {id}: connect: {e}")
                });
            }
        }
    }

    /// Reads and verifies what the server echoed, completes messages, sends more.
    /// `drain` reads until `WouldBlock` even after a short read (peer closed).
    fn on_readable(&mut self, drain: bool, registry: &Registry, ctx: &mut Ctx) {
        let mut completed_at = None;
        loop {
            let Some(sock) = self.sock.as_mut() else {
                return;
            };
            match sock.read(&mut self.rbuf) {
                Ok(0) => {
                    let owed = self.sent - self.recvd;
                    let id = self.id;
                    return self.close(registry, ErrorKind::ShortRead, ctx, || {
                        format!("connection {id}: the server closed the connection with {owed} echo bytes owed")
                    });
                }
                Ok(n) => {
                    if let Err(detail) = self.verify(n, ctx) {
                        return self.close(registry, ErrorKind::Mismatch, ctx, || detail);
                    }
                    self.last_progress = ctx.now;
                    if self.recvd >= (self.done + 1) * ctx.size {
                        completed_at = Some(self.complete(ctx));
                    }
                    if n < self.rbuf.len() && !drain {
                        break; // edge-triggered: a short read drained the socket
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close_io(registry, &e, "read", ctx),
            }
        }
        if let Some(t) = completed_at {
            self.pump(t, registry, ctx);
        }
    }

    /// Checks `n` freshly read bytes against the pattern; the error describes the
    /// first difference.
    #[inline]
    fn verify(&mut self, n: usize, ctx: &Ctx) -> Result<(), String> {
        let owed = self.sent - self.recvd;
        if n as u64 > owed {
            return Err(format!(
                "connection {}: the server sent {} bytes more than it was sent",
                self.id,
                n as u64 - owed
            ));
        }
        let got = &self.rbuf[..n];
        let want = self.pattern.at(self.recvd, n);
        if got != want {
            let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
            let pos = self.recvd + i as u64;
            return Err(format!(
                "connection {}, message {}: byte {} differs (sent 0x{:02x}, got 0x{:02x})",
                self.id,
                pos / ctx.size,
                pos % ctx.size,
                want.get(i).copied().unwrap_or(0),
                got.get(i).copied().unwrap_or(0),
            ));
        }
        self.recvd += n as u64;
        Ok(())
    }

    /// Completes every message whose echo is now whole; returns the completion time.
    fn complete(&mut self, ctx: &mut Ctx) -> Instant {
        let t = Instant::now();
        let measured = t >= ctx.window_start && t < ctx.window_end;
        while (self.done + 1) * ctx.size <= self.recvd {
            if measured {
                let began = match &ctx.schedule {
                    Some(s) => s.intended(self.id, self.done),
                    None => self.stamps[(self.done % ctx.depth) as usize],
                };
                let ns = t.saturating_duration_since(began).as_nanos();
                ctx.tally.record(u64::try_from(ns).unwrap_or(u64::MAX));
            }
            self.done += 1;
            ctx.completed += 1;
        }
        t
    }

    /// Releases the messages the mode allows (stamping their send time `t`), then
    /// writes.
    pub fn pump(&mut self, t: Instant, registry: &Registry, ctx: &mut Ctx) {
        let limit = self.due.min(self.done + ctx.depth);
        while self.started < limit {
            if ctx.schedule.is_none() {
                self.stamps[(self.started % ctx.depth) as usize] = t;
            }
            self.started += 1;
        }
        self.flush(registry, ctx);
    }

    /// Writes released bytes until done or the socket is full.
    fn flush(&mut self, registry: &Registry, ctx: &mut Ctx) {
        let target = self.started * ctx.size;
        while self.sent < target {
            let Some(sock) = self.sock.as_mut() else {
                return;
            };
            let n = (target - self.sent).min(MAX_WINDOW) as usize;
            let chunk = self.pattern.at(self.sent, n);
            match sock.write(chunk) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return self.close_io(registry, &e, "write", ctx);
                }
                Ok(k) => {
                    self.sent += k as u64;
                    self.last_progress = ctx.now;
                    if k < chunk.len() {
                        break; // the socket buffer is full: wait for writable
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close_io(registry, &e, "write", ctx),
            }
        }
    }

    /// Periodic check: retries a Unix connect that met a full backlog, and times out
    /// a connection on which nothing moved for the timeout while bytes were owed.
    pub fn check(&mut self, endpoint: &Endpoint, registry: &Registry, ctx: &mut Ctx) {
        let now = ctx.now;
        let timeout = ctx.timeout;
        let id = self.id;
        match self.phase {
            Phase::Waiting if now.saturating_duration_since(self.opened_at) >= timeout => {
                self.close(registry, ErrorKind::Connect, ctx, || {
                    format!("connection {id}: the server's backlog stayed full for {timeout:?}")
                });
            }
            Phase::Waiting => self.dial(endpoint, registry, ctx),
            Phase::Connecting if now.saturating_duration_since(self.last_progress) >= timeout => {
                self.close(registry, ErrorKind::Connect, ctx, || {
                    format!("connection {id}: connect did not finish within {timeout:?}")
                });
            }
            Phase::Open => {
                let unsent = self.started * ctx.size - self.sent;
                let owed = self.sent - self.recvd;
                let idle = now.saturating_duration_since(self.last_progress);
                if (unsent > 0 || owed > 0) && idle >= timeout {
                    self.close(registry, ErrorKind::Timeout, ctx, || {
                        format!(
                            "connection {id}: nothing moved for {timeout:?} with {owed} echo bytes owed and {unsent} unsent"
                        )
                    });
                }
            }
            Phase::Connecting | Phase::Closed => {}
        }
    }

    /// Counts an I/O error by kind and closes.
    fn close_io(&mut self, registry: &Registry, e: &io::Error, op: &str, ctx: &mut Ctx) {
        let id = self.id;
        self.close(registry, ErrorKind::of_io(e), ctx, || {
            format!("connection {id}: {op}: {e}")
        });
    }

    /// Counts an error and closes the connection for good.
    fn close(
        &mut self,
        registry: &Registry,
        kind: ErrorKind,
        ctx: &mut Ctx,
        detail: impl FnOnce() -> String,
    ) {
        if let Some(mut sock) = self.sock.take() {
            // The socket is dropped (closed) next; a failed deregister changes nothing.
            let _ = sock.deregister(registry);
        }
        self.fail(kind, ctx, detail);
    }

    /// Counts an error and marks the connection closed.
    fn fail(&mut self, kind: ErrorKind, ctx: &mut Ctx, detail: impl FnOnce() -> String) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            ctx.live = ctx.live.saturating_sub(1);
        }
        ctx.tally.errors.add(kind, detail);
    }
}
