//! The socketserver framework: a [`Server`] bound to one or more listeners (TCP,
//! UDP, Unix stream, Unix datagram), serving a blocking [`Handler`] or a Protocol
//! [`Factory`] in one of the blocking [`Mode`]s — `sequential`, `threads`, `pool`,
//! `fork` — with graceful shutdown, connection limits and idle timeouts.
//!
//! Python's `TCPServer`/`UDPServer`/`UnixStreamServer` with `ThreadingMixIn` or
//! `ForkingMixIn` become one builder: the address says the socket kind, [`Mode`]
//! says the concurrency. Protocols run through the blocking runner (`runner.rs`),
//! so every built-in service works in every mode; datagram sockets are served one
//! datagram at a time on a thread of their own.
//!
//! ```
//! use std::io::{Read, Write};
//! use netkit::server::{Conn, Mode, Server};
//!
//! let server = Server::builder()
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .mode(Mode::Threads)
//!     .handler(|c: &mut Conn| {
//!         let mut line = Vec::new();
//!         c.read_line(&mut line)?;
//!         c.write_all(&line.to_ascii_uppercase())
//!     })
//!     .build()
//!     .unwrap();
//! let addr = server.local_addresses()[0].clone();
//! let stop = server.shutdown_handle();
//! let t = std::thread::spawn(move || server.serve_forever());
//!
//! let mut s = netkit::net::connect(&addr, std::time::Duration::from_secs(5)).unwrap();
//! s.write_all(b"hello\n").unwrap();
//! let mut back = String::new();
//! s.read_to_string(&mut back).unwrap();
//! assert_eq!(back, "HELLO\n");
//!
//! stop.shutdown();
//! t.join().unwrap().unwrap();
//! ```
//!
//! Out of scope: the event-loop reactor (its own module), HTTP, address parsing
//! and socket options (`net`).

mod fork;
mod handler;
mod runner;
mod shutdown;
mod sys;

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{Address, Datagram, ListenOptions, Listener, Stream};
use crate::protocol::{
    Boxed, CloseReason, ConnInfo, DatagramService, DynFactory, Factory, PeerAddr,
};

pub use handler::{Conn, DatagramHandler, DatagramRequest, Handler, ServiceHandler};
pub use runner::{HIGH_WATER, LOW_WATER, MAILBOX_LIMIT};
pub use shutdown::ShutdownHandle;

use shutdown::{ActiveGuard, Lifecycle};

/// The default longest line a [`Conn::read_line`] accepts (64 KiB).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;
/// The default grace period connections get to finish after a shutdown.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// How long accepting pauses after an error such as EMFILE.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long the server waits for connections after the grace period closed them.
const AFTER_GRACE: Duration = Duration::from_secs(2);

/// How a server runs its connections.
///
/// ```
/// use netkit::server::Mode;
/// let names: Vec<_> = Mode::ALL.iter().map(|m| m.to_string()).collect();
/// assert_eq!(names, ["sequential", "threads", "pool", "fork"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// One connection at a time, on the accepting thread (plain `TCPServer`).
    Sequential,
    /// A thread per connection (`ThreadingMixIn`).
    Threads,
    /// A fixed pool of worker threads and a bounded queue; while the queue is
    /// full, new connections wait in the listen backlog.
    Pool,
    /// A process per connection (`ForkingMixIn`); refuses factories that share
    /// state across connections.
    Fork,
}

impl Mode {
    /// Every blocking mode, in the order above.
    pub const ALL: [Mode; 4] = [Mode::Sequential, Mode::Threads, Mode::Pool, Mode::Fork];

    /// The mode's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Threads => "threads",
            Mode::Pool => "pool",
            Mode::Fork => "fork",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a server could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The builder was given no address or socket.
    #[error("no address to listen on")]
    NoListeners,
    /// Binding or listening on an address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The system's error.
        source: io::Error,
    },
    /// A stream address was given but no handler or Protocol factory.
    #[error("{addr} is a stream address, but the server has no handler or protocol for streams")]
    NoStreamHandler {
        /// The address.
        addr: String,
    },
    /// A datagram address was given but no datagram handler or service.
    #[error("{addr} is a datagram address, but the server has no datagram handler")]
    NoDatagramHandler {
        /// The address.
        addr: String,
    },
    /// Fork mode was asked for with a factory whose connections share state.
    #[error(
        "fork mode serves each connection in its own process, but this service shares \
         state across connections; use --mode threads or pool"
    )]
    SharedStateInFork,
    /// A system call the server needs failed (poll, pipe, fork).
    #[error("server I/O error: {0}")]
    Io(#[from] io::Error),
}

/// What serves stream connections.
#[derive(Clone)]
enum StreamApp {
    Handler(Arc<dyn Handler>),
    Protocol(DynFactory),
}

/// The limits and timeouts every connection runs under.
#[derive(Debug, Clone)]
struct Config {
    mode: Mode,
    workers: usize,
    idle: Option<Duration>,
    max_conns: Option<usize>,
    max_line: usize,
}

/// Builds a [`Server`]: addresses, what serves them, mode and limits.
pub struct ServerBuilder {
    addrs: Vec<Address>,
    listeners: Vec<Listener>,
    datagrams: Vec<Datagram>,
    config: Config,
    grace: Duration,
    listen: ListenOptions,
    stream_app: Option<StreamApp>,
    dgram_app: Option<Arc<dyn DatagramHandler>>,
    signals: bool,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addrs", &self.addrs)
            .field("config", &self.config)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            addrs: Vec::new(),
            listeners: Vec::new(),
            datagrams: Vec::new(),
            config: Config {
                mode: Mode::Threads,
                workers: 0,
                idle: None,
                max_conns: None,
                max_line: DEFAULT_MAX_LINE,
            },
            grace: DEFAULT_GRACE,
            listen: ListenOptions::default(),
            stream_app: None,
            dgram_app: None,
            signals: false,
        }
    }
}

impl ServerBuilder {
    /// Adds an address to listen on (`HOST:PORT`, `udp://`, `unix://`, `unix-dgram://`).
    pub fn listen(mut self, addr: Address) -> Self {
        self.addrs.push(addr);
        self
    }

    /// Adds a stream listener that is already bound (an inherited socket, say).
    pub fn listener(mut self, l: Listener) -> Self {
        self.listeners.push(l);
        self
    }

    /// Adds a datagram socket that is already bound.
    pub fn datagram_socket(mut self, d: Datagram) -> Self {
        self.datagrams.push(d);
        self
    }

    /// Sets the concurrency mode (default [`Mode::Threads`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = mode;
        self
    }

    /// Sets the worker threads of [`Mode::Pool`] (default: the number of cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// Closes a connection that sent nothing for this long (default: never).
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.config.idle = t;
        self
    }

    /// Serves at most this many connections at once; more wait in the listen
    /// backlog until one ends (default: no limit).
    pub fn max_conns(mut self, n: Option<usize>) -> Self {
        self.config.max_conns = n;
        self
    }

    /// Sets the longest line [`Conn::read_line`] accepts (default [`DEFAULT_MAX_LINE`]).
    pub fn max_line(mut self, n: usize) -> Self {
        self.config.max_line = n;
        self
    }

    /// Sets how long connections may finish after a shutdown (default [`DEFAULT_GRACE`]).
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// Sets the listen backlog (default 1024, capped by the system's maximum).
    pub fn backlog(mut self, n: i32) -> Self {
        self.listen.backlog = n;
        self
    }

    /// Sets `SO_REUSEPORT` on stream listeners, so several servers share a port.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.listen.reuse_port = on;
        self
    }

    /// Serves stream connections with a blocking handler.
    pub fn handler(mut self, h: impl Handler) -> Self {
        self.stream_app = Some(StreamApp::Handler(Arc::new(h)));
        self
    }

    /// Serves stream connections with Protocols made by `f`.
    pub fn protocol<F: Factory>(mut self, f: F) -> Self {
        self.stream_app = Some(StreamApp::Protocol(Arc::new(Boxed(f))));
        self
    }

    /// Serves stream connections with a factory chosen at run time.
    pub fn protocol_dyn(mut self, f: DynFactory) -> Self {
        self.stream_app = Some(StreamApp::Protocol(f));
        self
    }

    /// Serves datagram sockets with a handler.
    pub fn datagram_handler(mut self, h: impl DatagramHandler) -> Self {
        self.dgram_app = Some(Arc::new(h));
        self
    }

    /// Serves datagram sockets with a [`DatagramService`].
    pub fn datagram_service(mut self, s: Arc<dyn DatagramService>) -> Self {
        self.dgram_app = Some(Arc::new(ServiceHandler(s)));
        self
    }

    /// Stops gracefully on SIGINT and SIGTERM (default: off; a library server
    /// installs no signal handlers unless asked). The handlers are installed by
    /// [`build`](ServerBuilder::build) and removed when the [`Server`] is dropped.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// Checks the configuration and binds every address.
    ///
    /// # Errors
    ///
    /// [`ServerError::NoListeners`], a missing handler for an address's kind,
    /// [`ServerError::SharedStateInFork`], or [`ServerError::Bind`].
    pub fn build(mut self) -> Result<Server, ServerError> {
        if self.addrs.is_empty() && self.listeners.is_empty() && self.datagrams.is_empty() {
            return Err(ServerError::NoListeners);
        }
        for a in &self.addrs {
            if a.is_stream() && self.stream_app.is_none() {
                return Err(ServerError::NoStreamHandler {
                    addr: a.to_string(),
                });
            }
            if !a.is_stream() && self.dgram_app.is_none() {
                return Err(ServerError::NoDatagramHandler {
                    addr: a.to_string(),
                });
            }
        }
        if let Some(l) = self.listeners.first() {
            if self.stream_app.is_none() {
                let addr = l.local_address().to_string();
                return Err(ServerError::NoStreamHandler { addr });
            }
        }
        if let Some(d) = self.datagrams.first() {
            if self.dgram_app.is_none() {
                let addr = d.local_address().to_string();
                return Err(ServerError::NoDatagramHandler { addr });
            }
        }
        if let (Mode::Fork, Some(StreamApp::Protocol(f))) = (self.config.mode, &self.stream_app) {
            if f.shares_state() {
                return Err(ServerError::SharedStateInFork);
            }
        }
        if self.config.workers == 0 {
            self.config.workers = thread::available_parallelism().map_or(2, |n| n.get());
        }
        for a in &self.addrs {
            let bind_err = |source| ServerError::Bind {
                addr: a.to_string(),
                source,
            };
            if a.is_stream() {
                let l = Listener::bind(a, &self.listen).map_err(bind_err)?;
                self.listeners.push(l);
            } else {
                let d = Datagram::bind(a).map_err(bind_err)?;
                self.datagrams.push(d);
            }
        }
        let life = Arc::new(Lifecycle::new(self.grace)?);
        // Installed now, so a signal that arrives before `serve_forever` (right
        // after "listening on" is printed, say) still stops the server gracefully.
        let signals = if self.signals {
            register_signals(&life)?
        } else {
            Vec::new()
        };
        Ok(Server {
            listeners: self.listeners,
            datagrams: self.datagrams,
            config: self.config,
            stream_app: self.stream_app,
            dgram_app: self.dgram_app,
            life,
            signals,
        })
    }
}

/// A bound server, ready to [`serve_forever`](Server::serve_forever).
///
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use netkit::protocol::{ConnInfo, Protocol, Transport};
/// use netkit::server::{Mode, Server};
///
/// /// The seed's small server: greet, then close.
/// struct Greeter;
/// impl Protocol for Greeter {
///     fn connection_made(&mut self, t: &mut dyn Transport) {
///         t.write(b"Thank you for connecting");
///         t.close();
///     }
///     fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
/// }
///
/// let server = Server::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .mode(Mode::Pool)
///     .workers(2)
///     .protocol(|_: &ConnInfo| Greeter)
///     .build()?;
/// let addr = server.local_addresses()[0].clone();
/// let stop = server.shutdown_handle();
/// let t = std::thread::spawn(move || server.serve_forever());
/// let mut s = netkit::net::connect(&addr, Duration::from_secs(5))?;
/// let mut got = String::new();
/// s.read_to_string(&mut got)?;
/// assert_eq!(got, "Thank you for connecting");
/// stop.shutdown();
/// t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    listeners: Vec<Listener>,
    datagrams: Vec<Datagram>,
    config: Config,
    stream_app: Option<StreamApp>,
    dgram_app: Option<Arc<dyn DatagramHandler>>,
    life: Arc<Lifecycle>,
    signals: Vec<signal_hook::SigId>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for id in self.signals.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addresses", &self.local_addresses())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The bound addresses, with real ports: stream listeners first, then
    /// datagram sockets.
    pub fn local_addresses(&self) -> Vec<Address> {
        let streams = self.listeners.iter().map(|l| l.local_address());
        let dgrams = self.datagrams.iter().map(|d| d.local_address());
        streams.chain(dgrams).collect()
    }

    /// The server's mode.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// A handle that stops the server from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            inner: self.life.clone(),
        }
    }

    /// Serves until shut down (a [`ShutdownHandle`], or SIGINT/SIGTERM when
    /// [`handle_signals`](ServerBuilder::handle_signals) is on), then stops
    /// accepting, gives connections in flight the grace period, closes the rest
    /// and returns.
    ///
    /// # Errors
    ///
    /// [`ServerError::Io`] when the accept loop itself fails (poll, signals).
    pub fn serve_forever(mut self) -> Result<(), ServerError> {
        let dgram_threads = self.spawn_datagram_loops();
        let result = self.serve_streams();
        for t in dgram_threads {
            let _ = t.join();
        }
        result
    }

    /// Runs the stream listeners in the configured mode.
    fn serve_streams(&self) -> Result<(), ServerError> {
        let Some(app) = self.stream_app.clone() else {
            // Datagram-only: wait for the shutdown.
            let mut fds = [sys::PollFd::new(self.life.stop_fd(), sys::READ)];
            sys::poll(&mut fds, None)?;
            self.life.begin();
            return Ok(());
        };
        if self.listeners.is_empty() {
            let mut fds = [sys::PollFd::new(self.life.stop_fd(), sys::READ)];
            sys::poll(&mut fds, None)?;
            self.life.begin();
            return Ok(());
        }
        for l in &self.listeners {
            l.set_nonblocking(true)?;
        }
        let ctx = Arc::new(Ctx {
            app,
            config: self.config.clone(),
            life: self.life.clone(),
        });
        let watchdog = match (&ctx.app, self.config.mode) {
            (StreamApp::Handler(_), m) if m != Mode::Fork => Some(Watchdog::spawn(&self.life)?),
            _ => None,
        };
        let mut acceptor = Acceptor::new(&self.listeners, &self.life);
        let result = match self.config.mode {
            Mode::Sequential => serve_sequential(&ctx, &mut acceptor),
            Mode::Threads => serve_threads(&ctx, &mut acceptor),
            Mode::Pool => serve_pool(&ctx, &mut acceptor),
            Mode::Fork => serve_fork(&ctx, &mut acceptor),
        };
        if self.config.mode != Mode::Fork {
            wait_for_connections(&self.life);
        }
        drop(watchdog);
        result
    }

    /// Starts one thread per datagram socket.
    fn spawn_datagram_loops(&mut self) -> Vec<thread::JoinHandle<()>> {
        let Some(h) = &self.dgram_app else {
            return Vec::new();
        };
        let mut threads = Vec::new();
        for sock in std::mem::take(&mut self.datagrams) {
            let (h, life) = (h.clone(), self.life.clone());
            match thread::Builder::new()
                .name("netkit-dgram".into())
                .spawn(move || serve_datagrams(&sock, &*h, &life))
            {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!("cannot start a datagram thread: {e}"),
            }
        }
        threads
    }
}

/// Installs SIGINT and SIGTERM handlers that write the stop pipe.
fn register_signals(life: &Lifecycle) -> Result<Vec<signal_hook::SigId>, ServerError> {
    let mut ids = Vec::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        ids.push(signal_hook::low_level::pipe::register(
            sig,
            life.stop_writer()?,
        )?);
    }
    Ok(ids)
}

/// What every connection needs: the app, the limits, the lifecycle.
struct Ctx {
    app: StreamApp,
    config: Config,
    life: Arc<Lifecycle>,
}

impl Ctx {
    /// Counts a connection in flight; tracks a blocking handler's socket.
    fn enter(&self, stream: &Stream) -> ActiveGuard {
        let mut guard = self.life.enter();
        if matches!(self.app, StreamApp::Handler(_)) {
            guard.track(stream);
        }
        guard
    }

    /// Whether the connection limit allows another connection.
    fn below_limit(&self, active: usize) -> bool {
        self.config.max_conns.map_or(true, |m| active < m)
    }

    /// Serves one connection to the end, logging failures and panics.
    fn serve(&self, stream: Stream, peer: PeerAddr) {
        tracing::debug!(%peer, "connection");
        let result = panic::catch_unwind(AssertUnwindSafe(|| self.serve_inner(stream, &peer)));
        if let Err(p) = result {
            tracing::error!(%peer, "handler panicked: {}", panic_message(&p));
        }
    }

    fn serve_inner(&self, stream: Stream, peer: &PeerAddr) {
        let local = stream.local_addr().unwrap_or(PeerAddr::Unix(None));
        match &self.app {
            StreamApp::Protocol(f) => {
                let info = ConnInfo {
                    peer: peer.clone(),
                    local: local.clone(),
                };
                let mut proto = f.build(&info);
                let reason = runner::run(
                    &stream,
                    &mut *proto,
                    peer.clone(),
                    local,
                    self.config.idle,
                    &self.life,
                );
                log_close(peer, &reason);
            }
            StreamApp::Handler(h) => {
                if let Err(e) = stream.set_nonblocking(false) {
                    tracing::warn!(%peer, "cannot make the socket blocking: {e}");
                    return;
                }
                if let Some(idle) = self.config.idle {
                    if let Err(e) = stream.set_read_timeout(Some(idle)) {
                        tracing::warn!(%peer, "cannot set the idle timeout: {e}");
                    }
                }
                let shutdown = ShutdownHandle {
                    inner: self.life.clone(),
                };
                let mut conn =
                    Conn::new(stream, peer.clone(), local, self.config.max_line, shutdown);
                run_handler(&**h, &mut conn);
            }
        }
    }
}

/// Runs a handler's `setup`, `handle` and `finish`, logging errors.
fn run_handler(h: &dyn Handler, conn: &mut Conn) {
    if let Err(e) = h.setup(conn) {
        log_handler_error(conn.peer_addr(), "setup", &e);
        return;
    }
    if let Err(e) = h.handle(conn) {
        log_handler_error(conn.peer_addr(), "handle", &e);
    }
    if let Err(e) = h.finish(conn) {
        log_handler_error(conn.peer_addr(), "finish", &e);
    }
}

fn log_handler_error(peer: &PeerAddr, stage: &str, e: &io::Error) {
    match e.kind() {
        io::ErrorKind::TimedOut => tracing::info!(%peer, "idle timeout: closing the connection"),
        io::ErrorKind::InvalidData => tracing::warn!(%peer, "{stage}: {e}; closing the connection"),
        _ => tracing::warn!(%peer, "handler {stage} failed: {e}"),
    }
}

/// Logs why a Protocol connection ended.
fn log_close(peer: &PeerAddr, reason: &CloseReason) {
    match reason {
        CloseReason::Done | CloseReason::Aborted => tracing::debug!(%peer, "{reason}"),
        CloseReason::IdleTimeout => tracing::info!(%peer, "idle timeout: closing the connection"),
        CloseReason::Shutdown => tracing::info!(%peer, "closed: {reason}"),
        _ => tracing::info!(%peer, "{reason}"),
    }
}

/// The text of a panic payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The accept side: polls every listener plus the stop and wake pipes.
struct Acceptor<'a> {
    listeners: &'a [Listener],
    life: &'a Lifecycle,
    next: usize,
    paused_until: Option<Instant>,
}

impl<'a> Acceptor<'a> {
    fn new(listeners: &'a [Listener], life: &'a Lifecycle) -> Self {
        Acceptor {
            listeners,
            life,
            next: 0,
            paused_until: None,
        }
    }

    /// Waits for the next connection while `open()` says there is room; `None`
    /// once the server is stopping.
    fn accept(&mut self, open: &mut dyn FnMut() -> bool) -> io::Result<Option<(Stream, PeerAddr)>> {
        loop {
            if self.paused_until.is_some_and(|t| Instant::now() >= t) {
                self.paused_until = None;
            }
            let listening = self.paused_until.is_none() && open();
            let mut fds = vec![
                sys::PollFd::new(self.life.stop_fd(), sys::READ),
                sys::PollFd::new(self.life.wake_fd(), sys::READ),
            ];
            if listening {
                fds.extend(
                    self.listeners
                        .iter()
                        .map(|l| sys::PollFd::new(l.as_raw_fd(), sys::READ)),
                );
            }
            sys::poll(&mut fds, self.paused_until)?;
            if fds[0].has(sys::READ) {
                self.life.begin();
                return Ok(None);
            }
            if fds[1].has(sys::READ) {
                self.life.drain_wake();
            }
            if !listening {
                continue;
            }
            let n = self.listeners.len();
            for k in 0..n {
                let i = (self.next + k) % n;
                if !fds
                    .get(2 + i)
                    .is_some_and(|f| f.has(sys::READ | sys::HANGUP))
                {
                    continue;
                }
                let Some(l) = self.listeners.get(i) else {
                    continue;
                };
                match l.accept() {
                    Ok(conn) => {
                        self.next = (i + 1) % n;
                        return Ok(Some(conn));
                    }
                    Err(e) if is_transient(&e) => {}
                    Err(e) => {
                        tracing::warn!("accept on {} failed: {e}; pausing", l.local_address());
                        self.paused_until = Some(sys::after(ACCEPT_PAUSE));
                    }
                }
            }
        }
    }
}

/// Accept errors that only mean "try again" (the connection went away first).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    ) || e.raw_os_error() == Some(libc::EPROTO)
}

/// `sequential`: each connection served to the end on the accepting thread.
fn serve_sequential(ctx: &Ctx, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    while let Some((stream, peer)) = acc.accept(&mut || true)? {
        let _guard = ctx.enter(&stream);
        ctx.serve(stream, peer);
    }
    Ok(())
}

/// `threads`: a thread per connection, within `max_conns`.
fn serve_threads(ctx: &Arc<Ctx>, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    while let Some((stream, peer)) = acc.accept(&mut || ctx.below_limit(ctx.life.active()))? {
        let guard = ctx.enter(&stream);
        let c = ctx.clone();
        let spawned = thread::Builder::new()
            .name("netkit-conn".into())
            .spawn(move || {
                let _guard = guard;
                c.serve(stream, peer);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a connection thread: {e}; connection dropped");
        }
    }
    Ok(())
}

/// A pool job: an accepted connection, counted in flight while queued.
type Job = (Stream, PeerAddr, ActiveGuard);

/// `pool`: `workers` threads take connections from a queue of `workers` slots;
/// while every worker is busy and the queue is full, accepting stops.
fn serve_pool(ctx: &Arc<Ctx>, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    let workers = ctx.config.workers.max(1);
    let (tx, rx) = mpsc::sync_channel::<Job>(workers);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..workers {
        let (rx, c) = (rx.clone(), ctx.clone());
        thread::Builder::new()
            .name("netkit-worker".into())
            .spawn(move || worker(&rx, &c))?;
    }
    let capacity = workers * 2;
    let mut open = || {
        let active = ctx.life.active();
        active < capacity && ctx.below_limit(active)
    };
    while let Some((stream, peer)) = acc.accept(&mut open)? {
        let guard = ctx.enter(&stream);
        if tx.send((stream, peer, guard)).is_err() {
            tracing::error!("the worker pool is gone; connection dropped");
        }
    }
    Ok(())
}

/// A pool worker: serves queued connections until the queue closes.
fn worker(rx: &Mutex<mpsc::Receiver<Job>>, ctx: &Ctx) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            rx.recv()
        };
        let Ok((stream, peer, guard)) = job else {
            return;
        };
        ctx.serve(stream, peer);
        drop(guard);
    }
}

/// `fork`: a child process per connection, within `max_conns`; children are
/// reaped as they exit.
fn serve_fork(ctx: &Ctx, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    let sigchld = signal_hook::low_level::pipe::register(
        signal_hook::consts::SIGCHLD,
        ctx.life.wake_writer()?,
    )?;
    let mut children = fork::Children::default();
    let result = fork_loop(ctx, acc, &mut children);
    drain_children(ctx, &mut children);
    signal_hook::low_level::unregister(sigchld);
    result
}

fn fork_loop(
    ctx: &Ctx,
    acc: &mut Acceptor<'_>,
    children: &mut fork::Children,
) -> Result<(), ServerError> {
    loop {
        let mut open = || {
            children.reap();
            ctx.below_limit(children.len())
        };
        let Some((stream, peer)) = acc.accept(&mut open)? else {
            return Ok(());
        };
        match fork::fork() {
            Ok(fork::Forked::Child) => {
                ctx.serve(stream, peer);
                fork::exit_child(0);
            }
            Ok(fork::Forked::Parent(pid)) => children.add(pid),
            Err(e) => tracing::error!(%peer, "fork failed: {e}; connection dropped"),
        }
    }
}

/// After a shutdown: waits for the children through the grace period, then
/// kills the ones left.
fn drain_children(ctx: &Ctx, children: &mut fork::Children) {
    let deadline = ctx.life.begin();
    let kill_at = deadline + Duration::from_millis(500);
    let give_up = kill_at + AFTER_GRACE;
    let mut killed = false;
    loop {
        children.reap();
        if children.len() == 0 {
            return;
        }
        let now = Instant::now();
        if now >= give_up {
            tracing::warn!("{} child processes did not exit", children.len());
            return;
        }
        if now >= kill_at && !killed {
            tracing::info!(
                "grace period over: killing {} child processes",
                children.len()
            );
            children.signal_all(libc::SIGKILL);
            killed = true;
        }
        let next = if killed { give_up } else { kill_at };
        let mut fds = [sys::PollFd::new(ctx.life.wake_fd(), sys::READ)];
        let _ = sys::poll(
            &mut fds,
            Some(next.min(sys::after(Duration::from_millis(100)))),
        );
        ctx.life.drain_wake();
    }
}

/// Waits for connections in flight to end: through the grace period (runners and
/// the watchdog close them when it ends) and a little after.
fn wait_for_connections(life: &Lifecycle) {
    let deadline = life.begin();
    let give_up = deadline + AFTER_GRACE;
    while life.active() > 0 {
        if Instant::now() >= give_up {
            tracing::warn!("{} connections did not finish", life.active());
            return;
        }
        let mut fds = [sys::PollFd::new(life.wake_fd(), sys::READ)];
        let _ = sys::poll(&mut fds, Some(give_up));
        life.drain_wake();
    }
}

/// Shuts down blocking handlers' sockets when the grace period ends (a blocking
/// read cannot watch the stop pipe). Stops when dropped.
struct Watchdog {
    done: Option<std::os::unix::net::UnixStream>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn spawn(life: &Arc<Lifecycle>) -> io::Result<Watchdog> {
        let (done_rx, done_tx) = std::os::unix::net::UnixStream::pair()?;
        let life = life.clone();
        let thread = thread::Builder::new()
            .name("netkit-watchdog".into())
            .spawn(move || {
                let mut fds = [
                    sys::PollFd::new(life.stop_fd(), sys::READ),
                    sys::PollFd::new(done_rx.as_raw_fd(), sys::READ),
                ];
                if sys::poll(&mut fds, None).is_err() || fds[1].revents() != 0 {
                    return;
                }
                let deadline = life.begin();
                let mut fds = [sys::PollFd::new(done_rx.as_raw_fd(), sys::READ)];
                if matches!(sys::poll(&mut fds, Some(deadline)), Ok(0)) {
                    let n = life.close_blocking();
                    if n > 0 {
                        tracing::info!("grace period over: closed {n} connections");
                    }
                }
            })?;
        Ok(Watchdog {
            done: Some(done_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves one datagram socket until the server stops: each datagram goes to the
/// handler in turn (socketserver's `UDPServer`).
fn serve_datagrams(sock: &Datagram, h: &dyn DatagramHandler, life: &Lifecycle) {
    if let Err(e) = sock.set_nonblocking(true) {
        tracing::error!("cannot serve {}: {e}", sock.local_address());
        return;
    }
    let mut buf = vec![0u8; 65536];
    loop {
        let mut fds = [
            sys::PollFd::new(life.stop_fd(), sys::READ),
            sys::PollFd::new(sock.as_raw_fd(), sys::READ),
        ];
        if let Err(e) = sys::poll(&mut fds, None) {
            tracing::error!("poll failed on {}: {e}", sock.local_address());
            return;
        }
        if fds[0].has(sys::READ) {
            life.begin();
            return;
        }
        for _ in 0..64 {
            match sock.recv_from(&mut buf) {
                Ok(r) => {
                    let data = buf.get(..r.len).unwrap_or(&[]);
                    let mut req = DatagramRequest {
                        data,
                        peer: &r.peer,
                        socket: sock,
                        truncated: r.truncated,
                    };
                    let res = panic::catch_unwind(AssertUnwindSafe(|| h.handle(&mut req)));
                    match res {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(peer = %r.peer, "datagram handler failed: {e}")
                        }
                        Err(p) => {
                            tracing::error!(peer = %r.peer, "datagram handler panicked: {}", panic_message(&p))
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors from an earlier reply (ECONNREFUSED) land here.
                    tracing::debug!("recv on {} failed: {e}", sock.local_address());
                    break;
                }
            }
        }
    }
}
