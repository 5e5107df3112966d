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

mod conn;
mod datagram;
mod fork;
mod handler;
mod modes;
mod pool;
mod proxy;
mod runner;
mod session;
mod shutdown;
mod sys;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::net::{Address, Datagram, ListenOptions, Listener};
use crate::protocol::proxy::ProxyFactory;
use crate::protocol::{
    Boxed, DatagramService, DynFactory, Factory, DEFAULT_GRACE, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_LINE,
};

pub use handler::{Conn, DatagramHandler, DatagramRequest, Handler, ServiceHandler};
pub use proxy::PROXY_HEADER_TIMEOUT;
pub use shutdown::ShutdownHandle;

use conn::Ctx;
use datagram::serve_datagrams;
use modes::{
    serve_fork, serve_pool, serve_sequential, serve_threads, wait_for_connections, Acceptor,
    Watchdog,
};
use shutdown::Lifecycle;

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
    /// One thing at a time (plain `TCPServer`): a blocking handler serves each
    /// connection to the end on the accepting thread; Protocols run on one
    /// worker that a connection holds only while there is work for it, one
    /// callback at a time, so a client that waits or trickles holds up nobody.
    Sequential,
    /// A thread per connection (`ThreadingMixIn`).
    Threads,
    /// A fixed pool of worker threads (`workers`). Protocols run in turns, like
    /// Apache's event MPM: a connection waiting for its peer (a slow line, a
    /// stalled TLS handshake, a peer that does not read) waits in one waiter
    /// thread, not on a worker, and every connection is accepted at once
    /// (within `max_conns`). A blocking handler keeps a worker for its whole
    /// connection; while every worker is busy and a queue of `workers` more is
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
    /// Binding or listening on an address failed. The message names the
    /// address once, with the system's error (which is not repeated as the
    /// error's `source`).
    #[error("{}", bind_message(.addr, .error))]
    Bind {
        /// The address.
        addr: String,
        /// The system's error.
        error: io::Error,
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

/// "cannot listen on ADDR: ERROR", where ERROR may already name the address.
fn bind_message(addr: &str, error: &io::Error) -> String {
    let text = error.to_string();
    if text.contains(addr) {
        text
    } else {
        format!("cannot listen on {addr}: {text}")
    }
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
    proxy_protocol: bool,
    max_datagram: Option<usize>,
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
                idle: DEFAULT_IDLE_TIMEOUT,
                max_conns: None,
                max_line: DEFAULT_MAX_LINE,
                proxy_protocol: false,
                max_datagram: None,
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

    /// Sets the longest datagram received whole (Python's `max_packet_size`); a
    /// longer one is dropped and logged, and a [`DatagramHandler`] sees it with
    /// [`DatagramRequest::truncated`]. Default: the largest the socket can carry,
    /// [`max_datagram_size`](crate::net::max_datagram_size).
    pub fn max_datagram(mut self, n: usize) -> Self {
        self.config.max_datagram = Some(n);
        self
    }

    /// Sets how long connections may finish after a shutdown (default [`DEFAULT_GRACE`]).
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// Sets the listen backlog (default [`DEFAULT_BACKLOG`](crate::net::DEFAULT_BACKLOG),
    /// capped by the system's maximum).
    pub fn backlog(mut self, n: i32) -> Self {
        self.listen.backlog = n;
        self
    }

    /// Sets `SO_REUSEPORT` on stream listeners, so several servers share a port.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.listen.reuse_port = on;
        self
    }

    /// Sets `IPV6_V6ONLY` on IPv6 stream listeners (default off: `[::]` is dual
    /// stack; see [`ListenOptions::ipv6_only`]).
    pub fn ipv6_only(mut self, on: bool) -> Self {
        self.listen.ipv6_only = on;
        self
    }

    /// Expects every stream connection to start with a PROXY protocol header
    /// (version 1 or 2, as HAProxy's `send-proxy`/`send-proxy-v2` write it): the
    /// client address it names is what Protocols (`ConnInfo::peer`,
    /// `Transport::peer_addr`), handlers and logs see. A connection without a
    /// valid header within [`PROXY_HEADER_TIMEOUT`] is closed with a log line;
    /// bytes after the header are the connection's first data. Default: off.
    pub fn proxy_protocol(mut self, on: bool) -> Self {
        self.config.proxy_protocol = on;
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
    /// installs no signal handlers unless asked). A second SIGINT or SIGTERM
    /// during the drain aborts it: a line on stderr says so and the process
    /// exits at once with status 1. The handlers are installed by
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
        let mut addresses: Vec<Address> =
            self.listeners.iter().map(|l| l.local_address()).collect();
        addresses.extend(self.datagrams.iter().map(|d| d.local_address()));
        for a in &self.addrs {
            let bind_err = |error| ServerError::Bind {
                addr: a.to_string(),
                error,
            };
            if a.is_stream() {
                let l = Listener::bind(a, &self.listen).map_err(bind_err)?;
                addresses.push(l.local_address());
                self.listeners.push(l);
            } else {
                let d = Datagram::bind_beside(a, &self.listen).map_err(bind_err)?;
                addresses.push(d.local_address());
                self.datagrams.push(d);
            }
        }
        let life = Arc::new(Lifecycle::new(self.grace)?);
        // Installed now, so a signal that arrives before `serve_forever` (right
        // after "listening on" is printed, say) still stops the server gracefully.
        let signals = if self.signals {
            shutdown::register_signals(&life)?
        } else {
            Vec::new()
        };
        Ok(Server {
            addresses,
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
    addresses: Vec<Address>,
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

    /// The bound addresses, with real ports, in the order they were given
    /// (sockets passed already bound first).
    pub fn local_addresses(&self) -> Vec<Address> {
        self.addresses.clone()
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
    fn serve_streams(&mut self) -> Result<(), ServerError> {
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
        let listeners = std::mem::take(&mut self.listeners);
        let app = match app {
            // A Protocol reads its PROXY header in turns, like any input.
            StreamApp::Protocol(f) if self.config.proxy_protocol => {
                StreamApp::Protocol(Arc::new(Boxed(ProxyFactory::new(f))))
            }
            app => app,
        };
        let ctx = Arc::new(Ctx {
            app,
            config: self.config.clone(),
            life: self.life.clone(),
        });
        let watchdog = match (&ctx.app, self.config.mode) {
            (StreamApp::Handler(_), m) if m != Mode::Fork => Some(Watchdog::spawn(&self.life)?),
            _ => None,
        };
        let mut acceptor = Acceptor::new(listeners, &self.life);
        let result = match self.config.mode {
            Mode::Sequential => serve_sequential(&ctx, &mut acceptor),
            Mode::Threads => serve_threads(&ctx, &mut acceptor),
            Mode::Pool => serve_pool(&ctx, &mut acceptor),
            Mode::Fork => serve_fork(&ctx, &mut acceptor),
        };
        // Stop listening before the drain, so a server started on the same port
        // (with reuse_port) takes the new connections while these finish.
        acceptor.close();
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
            let (h, life, max) = (h.clone(), self.life.clone(), self.config.max_datagram);
            match thread::Builder::new()
                .name("netkit-dgram".into())
                .spawn(move || serve_datagrams(&sock, &*h, &life, max))
            {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!("cannot start a datagram thread: {e}"),
            }
        }
        threads
    }
}
