//! The event loop: runs Protocols on mio (epoll), netkit's default and fastest mode.
//!
//! In scope: listening on TCP and Unix stream sockets and running one
//! [`Protocol`] per connection; serving UDP and Unix datagram sockets with a
//! [`DatagramService`]; client connections (Twisted's `connectTCP`); timers
//! ([`Transport::call_later`]); mailboxes across loops; several loops on several
//! threads; idle timeouts, a connection limit and graceful shutdown. Out of scope:
//! the blocking modes (`server`), parsing addresses (`net`), and the services
//! themselves.
//!
//! # Using it
//!
//! ```
//! use std::io::{Read, Write};
//! use netkit::protocol::{ConnInfo, Protocol, Transport};
//! use netkit::reactor::{Reactor, ReactorConfig};
//!
//! struct Echo;
//! impl Protocol for Echo {
//!     fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
//!         t.write(data);
//!     }
//! }
//!
//! let mut reactor = Reactor::new(ReactorConfig { workers: 1, ..Default::default() })?;
//! let addr = reactor.listen("127.0.0.1:0".parse::<std::net::SocketAddr>()?, |_: &ConnInfo| Echo)?;
//! let port = addr.host_port().unwrap().port;
//! let handle = reactor.shutdown_handle();
//! let server = std::thread::spawn(move || reactor.run());
//!
//! let mut client = std::net::TcpStream::connect(("127.0.0.1", port))?;
//! client.write_all(b"hello")?;
//! let mut buf = [0u8; 5];
//! client.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"hello");
//!
//! drop(client);
//! handle.shutdown();
//! server.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Serving a service (what `netkit serve --mode reactor` does)
//!
//! ```no_run
//! use netkit::net::Address;
//! use netkit::reactor::{raise_nofile_limit, Reactor, ReactorConfig};
//! use netkit::services::{datagram_service, stream_factory, ServiceOptions};
//!
//! raise_nofile_limit()?;
//! let mut reactor = Reactor::new(ReactorConfig {
//!     workers: 0, // one loop per core
//!     idle_timeout: Some(std::time::Duration::from_secs(300)),
//!     max_conns: Some(10_000),
//!     ..Default::default()
//! })?;
//! let opts = ServiceOptions::default();
//! for a in ["127.0.0.1:9000", "udp://127.0.0.1:9000", "unix:///tmp/echo.sock"] {
//!     let addr = Address::parse(a)?;
//!     let local = if addr.is_stream() {
//!         reactor.listen_dyn(&addr, stream_factory("echo", &opts)?)?
//!     } else {
//!         reactor.listen_datagram(&addr, datagram_service("echo", &opts)?)?
//!     };
//!     eprintln!("listening on {local}");
//! }
//! let handle = reactor.shutdown_handle(); // a signal thread calls handle.shutdown()
//! reactor.run()?; // returns after shutdown and the grace period
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Inherited listeners (`netkit::net::listen_fds`) go to
//! [`Reactor::listen_dyn`] as they are.
//!
//! # Design
//!
//! **Loops and acceptance.** [`ReactorConfig::workers`] loops (default: one per
//! core), each a thread with its own `mio::Poll`. With
//! [`ReactorConfig::reuse_port`], a TCP address given to [`Reactor::listen`] is
//! bound once per loop with `SO_REUSEPORT`, so the kernel spreads new connections
//! across the loops with no shared accept queue and no thundering herd (and other
//! processes may join the port, for rolling restarts). Otherwise — and for Unix
//! sockets, which have no `SO_REUSEPORT` balancing, and listeners the caller bound
//! already — one listener is shared: every loop registers a duplicate of the one
//! descriptor and accepts from it when woken; the loser of a race sees
//! `WouldBlock`. A port another server holds is then an "address in use" error. A connection lives on the loop that accepted it for its
//! whole life. Datagram sockets are served by the first loop.
//!
//! **Buffers.** Each loop owns ONE 64 KiB read buffer shared by all its
//! connections; [`Protocol::data_received`] gets a borrowed slice of it, so an idle
//! connection holds no read buffer. [`Transport::write`] is write-through: when the
//! connection's queue is empty it `send`s at once, queueing only the unsent tail, so
//! the echo path allocates nothing and copies nothing beyond the kernel's copy. The
//! queue is one contiguous buffer with a head offset (one `send` flushes it).
//! Above [`ReactorConfig::high_water`] queued bytes the loop stops reading from that
//! peer; below [`ReactorConfig::low_water`] it reads again and asks producers
//! ([`Protocol::is_producer`]) for more. A peer that never reads therefore costs at
//! most `high_water` bytes plus one write.
//!
//! **Readiness.** Sockets are registered once, edge-triggered, for both READABLE and
//! WRITABLE (with edge triggering a writable edge only arrives after the send
//! buffer was full, so keeping WRITABLE registered costs no wakeups and saves an
//! `epoll_ctl` per queue transition). Reads go on until `WouldBlock`, or until a
//! read returns less than the buffer (on Linux the socket is then drained: data that
//! arrives later raises a new edge), unless the event said the peer hung up.
//!
//! **Fairness.** A connection reads at most [`ReactorConfig::read_budget`] bytes or
//! 16 reads per turn; one that hits its budget goes to the back of the loop's
//! ready list (edge triggering would not report it again) and the loop polls with a
//! zero timeout while the list is non-empty, so one flooding peer cannot starve
//! the others. Producers get 16 turns per pass, then the same treatment.
//!
//! **Tokens** are a slab index, a generation and a kind: an event, a timer or a
//! mailbox wake-up for a connection that has gone is recognised and dropped.
//!
//! **Timers** live in an ordered map per loop; the earliest deadline is the poll
//! timeout, so an idle server without timers never wakes. Idle timeouts use one timer
//! per connection that re-arms from the last read time when it fires (no timer work
//! per read).
//!
//! **Limits.** `max_conns` is one counter shared by all loops: at the limit the
//! loops stop accepting (new connections wait in the kernel backlog) and the first
//! close below it wakes them all to accept again. `EMFILE`/`ENFILE` on accept is
//! logged and pauses that listener for 100 ms instead of spinning.
//!
//! **Shutdown** ([`Handle::shutdown`]): every loop drops its listeners and datagram
//! sockets, keeps serving its connections for up to [`ReactorConfig::grace`], then
//! closes the rest with [`CloseReason::Shutdown`] (after one last non-blocking
//! flush); [`Reactor::run`] returns once every loop has stopped.
//!
//! # Twisted parity
//!
//! Matching Twisted: `close` flushes the queue, then closes (`loseConnection`);
//! `abort` drops the queue and ends with [`CloseReason::Aborted`]
//! (`abortConnection`); the default `eof_received` closes, as Twisted does for a
//! protocol that is not `IHalfCloseableProtocol`; `shutdown_write` sends FIN after
//! the queue (`loseWriteConnection`), and once the peer has half-closed too the
//! connection ends with [`CloseReason::Done`]; `connection_lost` is always the last
//! call; `call_later` is `reactor.callLater`; a failed client connection is reported
//! to the caller (the [`ConnectHandle`], Twisted's `clientConnectionFailed`) and
//! its Protocol never sees `connection_made` or `connection_lost`.
//!
//! Differing from Twisted, as the Protocol contract (and the socket-free test
//! runner) has it: once a Protocol calls `close`, `abort` or `shutdown_write`, its
//! later writes are ignored (Twisted still queues writes made while a
//! `loseConnection` is flushing).

mod addr;
mod conn;
mod event_loop;
mod slab;
mod sockets;
mod sys;
#[cfg(target_os = "linux")]
mod uring;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::net::{Address, Datagram, ListenOptions, Listener, StdDatagram, StdListener};
use crate::protocol::{self, Boxed, CloseReason, DatagramService, DynFactory, Factory, Protocol};

#[cfg(doc)]
use crate::protocol::Transport;

use event_loop::{Cmd, Loop, LoopShared};

pub use addr::{ConnectTo, DatagramOn, ListenOn};
pub use sys::raise_nofile_limit;

/// How a [`Reactor`] runs. Build one with struct update syntax over
/// [`ReactorConfig::default`].
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// Event loops, each on its own thread; `0` means one per core (the default).
    pub workers: usize,
    /// Close a connection whose peer has sent nothing for this long (logged).
    /// Output already queued is sent first; a peer that then takes none of it
    /// for another such period is cut off.
    pub idle_timeout: Option<Duration>,
    /// At most this many accepted connections at once, across all loops; above it
    /// the loops stop accepting and new connections wait in the kernel backlog.
    pub max_conns: Option<usize>,
    /// How long [`Handle::shutdown`] lets in-flight connections finish (default
    /// [`DEFAULT_GRACE`](protocol::DEFAULT_GRACE), 10 s).
    pub grace: Duration,
    /// Queued output above which the loop stops reading from the peer
    /// ([`HIGH_WATER`](protocol::HIGH_WATER), 256 KiB).
    pub high_water: usize,
    /// Queued output below which reading resumes and producers are asked for more
    /// ([`LOW_WATER`](protocol::LOW_WATER), 64 KiB).
    pub low_water: usize,
    /// Bytes one connection may read per turn before the others get theirs (1 MiB).
    pub read_budget: usize,
    /// Undelivered mailbox bytes per connection before it is closed as too slow
    /// ([`MAILBOX_LIMIT`](protocol::MAILBOX_LIMIT), 1 MiB).
    pub mailbox_limit: usize,
    /// Listen backlog for the sockets the reactor binds
    /// ([`DEFAULT_BACKLOG`](crate::net::DEFAULT_BACKLOG), 1024).
    pub backlog: i32,
    /// Bind TCP addresses with `SO_REUSEPORT`, one listener per loop, so the kernel
    /// spreads connections across loops and other processes can share the port
    /// (false: one listener shared by the loops, and a port already in use is an
    /// error).
    pub reuse_port: bool,
    /// Set `IPV6_V6ONLY` on the IPv6 listeners the reactor binds (false: `[::]`
    /// takes IPv4 clients too; see `ListenOptions::ipv6_only`).
    pub ipv6_only: bool,
    /// How the loops learn about I/O: epoll (the portable default) or io_uring.
    pub backend: Backend,
    /// The longest datagram received whole (Python's `max_packet_size`); a
    /// longer one is dropped and logged. `None` (the default): the largest the
    /// socket can carry, [`max_datagram_size`](crate::net::max_datagram_size).
    pub max_datagram: Option<usize>,
}

/// The I/O backend of a [`Reactor`]'s loops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// Readiness from `epoll` (through mio): every feature, the default.
    #[default]
    Epoll,
    /// Completions from io_uring (Linux only): multishot accept and receive with a
    /// provided-buffer ring, sends batched into one `io_uring_enter` per loop turn.
    /// Serves TCP and Unix stream listeners only: [`Reactor::listen_datagram`] and
    /// [`Handle::connect`] report `Unsupported` with this backend.
    Uring,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        ReactorConfig {
            workers: 0,
            idle_timeout: protocol::DEFAULT_IDLE_TIMEOUT,
            max_conns: None,
            grace: protocol::DEFAULT_GRACE,
            high_water: protocol::HIGH_WATER,
            low_water: protocol::LOW_WATER,
            read_budget: 1024 * 1024,
            mailbox_limit: protocol::MAILBOX_LIMIT,
            backlog: crate::net::DEFAULT_BACKLOG,
            reuse_port: false,
            ipv6_only: false,
            backend: Backend::Epoll,
            max_datagram: None,
        }
    }
}

impl ReactorConfig {
    /// The number of loops this configuration asks for (`workers`, or the cores).
    pub fn loops(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// `n` handles (the socket and `n - 1` duplicates) on one listening socket.
fn share(l: StdListener, n: usize) -> io::Result<Vec<event_loop::ListenSock>> {
    let mut all = Vec::with_capacity(n);
    match l {
        StdListener::Tcp(l) => {
            l.set_nonblocking(true)?;
            for _ in 1..n {
                let dup = mio::net::TcpListener::from_std(l.try_clone()?);
                all.push(event_loop::ListenSock::Tcp(dup));
            }
            all.push(event_loop::ListenSock::Tcp(
                mio::net::TcpListener::from_std(l),
            ));
        }
        StdListener::Unix(l) => {
            l.set_nonblocking(true)?;
            for _ in 1..n {
                let dup = mio::net::UnixListener::from_std(l.try_clone()?);
                all.push(event_loop::ListenSock::Unix(dup));
            }
            all.push(event_loop::ListenSock::Unix(
                mio::net::UnixListener::from_std(l),
            ));
        }
    }
    Ok(all)
}

fn dgram_sock(d: StdDatagram) -> io::Result<event_loop::DgramSock> {
    match d {
        StdDatagram::Udp(s) => event_loop::DgramSock::udp(s),
        StdDatagram::Unix(s) => event_loop::DgramSock::unix(s),
    }
}

/// State shared by every loop of one reactor.
pub(crate) struct Shared {
    pub(crate) config: ReactorConfig,
    /// Accepted connections open, across loops.
    pub(crate) conns: AtomicUsize,
    /// Some loop stopped accepting at `max_conns`.
    pub(crate) accept_paused: AtomicBool,
    pub(crate) shutdown: AtomicBool,
    pub(crate) loops: Vec<Arc<LoopShared>>,
    next_loop: AtomicUsize,
}

impl Shared {
    /// Wakes every loop (shutdown, or accepting again).
    pub(crate) fn wake_all(&self) {
        for l in &self.loops {
            l.wake();
        }
    }

    /// Takes a connection slot; `false` at `max_conns`.
    pub(crate) fn reserve_slot(&self) -> bool {
        match self.config.max_conns {
            None => {
                self.conns.fetch_add(1, Ordering::AcqRel);
                true
            }
            Some(max) => {
                let took = self
                    .conns
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                        (c < max).then_some(c + 1)
                    })
                    .is_ok();
                if !took {
                    self.accept_paused.store(true, Ordering::SeqCst);
                    // A close may have freed a slot between the two steps: look again.
                    if self.conns.load(Ordering::SeqCst) < max {
                        return self.reserve_slot_once(max);
                    }
                }
                took
            }
        }
    }

    fn reserve_slot_once(&self, max: usize) -> bool {
        self.conns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max).then_some(c + 1)
            })
            .is_ok()
    }

    /// Gives a slot back; wakes the loops when they had stopped accepting.
    pub(crate) fn release_slot(&self) {
        self.conns.fetch_sub(1, Ordering::AcqRel);
        if self.accept_paused.swap(false, Ordering::SeqCst) {
            for l in &self.loops {
                l.retry_accept.store(true, Ordering::SeqCst);
            }
            self.wake_all();
        }
    }
}

/// The event loops, their listeners and datagram sockets, before [`run`](Reactor::run).
pub struct Reactor {
    shared: Arc<Shared>,
    loops: Vec<Loop>,
    addrs: Vec<Address>,
    owned_paths: Vec<PathBuf>,
    keep: Vec<Listener>,
    keep_dgram: Vec<Datagram>,
    /// Listeners for the io_uring loops, per loop (empty with epoll).
    #[cfg(target_os = "linux")]
    uring_listeners: Vec<Vec<uring::UringListener>>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("loops", &self.loops.len())
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl Reactor {
    /// Makes the loops (one `epoll` instance each) without starting them.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `low_water > high_water` or a budget is zero; otherwise
    /// whatever `epoll_create` or `eventfd` report.
    pub fn new(config: ReactorConfig) -> io::Result<Reactor> {
        if config.low_water > config.high_water || config.read_budget == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "reactor: low_water must not exceed high_water, read_budget must be positive",
            ));
        }
        match config.backend {
            Backend::Epoll => {}
            #[cfg(target_os = "linux")]
            Backend::Uring => uring::probe()?,
            #[cfg(not(target_os = "linux"))]
            Backend::Uring => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the io_uring backend needs Linux",
                ))
            }
        }
        let n = config.loops();
        let mut polls = Vec::with_capacity(n);
        let mut shareds = Vec::with_capacity(n);
        for _ in 0..n {
            let (poll, ls) = event_loop::new_poll()?;
            polls.push(poll);
            shareds.push(ls);
        }
        let shared = Arc::new(Shared {
            config,
            conns: AtomicUsize::new(0),
            accept_paused: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            loops: shareds.clone(),
            next_loop: AtomicUsize::new(0),
        });
        let loops = polls
            .into_iter()
            .zip(shareds)
            .map(|(poll, ls)| Loop::new(poll, ls, shared.clone()))
            .collect();
        Ok(Reactor {
            shared,
            loops,
            addrs: Vec::new(),
            owned_paths: Vec::new(),
            keep: Vec::new(),
            keep_dgram: Vec::new(),
            #[cfg(target_os = "linux")]
            uring_listeners: (0..n).map(|_| Vec::new()).collect(),
        })
    }

    /// Serves stream connections on `on`, one Protocol from `factory` each
    /// (`reactor.listenTCP` / `listenUNIX`). Returns the address with its real port.
    pub fn listen<F: Factory>(
        &mut self,
        on: impl Into<ListenOn>,
        factory: F,
    ) -> io::Result<Address> {
        self.listen_dyn(on, Arc::new(Boxed(factory)))
    }

    /// [`listen`](Reactor::listen) with a factory chosen at run time.
    pub fn listen_dyn(
        &mut self,
        on: impl Into<ListenOn>,
        factory: DynFactory,
    ) -> io::Result<Address> {
        let n = self.loops.len();
        let (addr, listeners) = match on.into() {
            ListenOn::Tcp(sa) => self.bind_per_loop(&Address::tcp(sa))?,
            ListenOn::Unix(p) => self.bind_shared(&Address::Unix(p))?,
            ListenOn::Address(a @ Address::Tcp(_)) => self.bind_per_loop(&a)?,
            ListenOn::Address(a @ Address::Unix(_)) => self.bind_shared(&a)?,
            ListenOn::Address(a) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{a} is a datagram address: serve it with listen_datagram"),
                ))
            }
            ListenOn::Listener(l) => {
                let addr = l.local_address();
                let dup = l.try_clone()?;
                // The original stays open until the reactor is dropped, so that a
                // Unix listener the caller bound removes its socket file then.
                self.keep.push(l);
                (addr, share(dup.into_std(), n)?)
            }
            ListenOn::TcpListener(l) => {
                let addr = Address::tcp(l.local_addr()?);
                (addr, share(StdListener::Tcp(l), n)?)
            }
            ListenOn::UnixListener(l) => {
                let path = l
                    .local_addr()?
                    .as_pathname()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                (Address::Unix(path), share(StdListener::Unix(l), n)?)
            }
        };
        let local = match &listeners.first() {
            Some(event_loop::ListenSock::Tcp(l)) => {
                crate::protocol::PeerAddr::Inet(l.local_addr()?)
            }
            _ => match &addr {
                Address::Unix(p) => crate::protocol::PeerAddr::Unix(Some(p.clone())),
                _ => crate::protocol::PeerAddr::Unix(None),
            },
        };
        #[cfg(target_os = "linux")]
        if self.shared.config.backend == Backend::Uring {
            for (mine, sock) in self.uring_listeners.iter_mut().zip(listeners) {
                mine.push(uring::UringListener {
                    sock,
                    factory: factory.clone(),
                    local: local.clone(),
                });
            }
            self.addrs.push(addr.clone());
            return Ok(addr);
        }
        for (lp, sock) in self.loops.iter_mut().zip(listeners) {
            lp.add_listener(sock, factory.clone(), local.clone())?;
        }
        self.addrs.push(addr.clone());
        Ok(addr)
    }

    fn listen_options(&self, reuse_port: bool) -> ListenOptions {
        ListenOptions {
            backlog: self.shared.config.backlog,
            reuse_port,
            reuse_addr: true,
            nonblocking: true,
            ipv6_only: self.shared.config.ipv6_only,
        }
    }

    /// TCP: one listener per loop on the same port with `SO_REUSEPORT` when the
    /// configuration asks for it; otherwise one listener the loops share, so that a
    /// port another server holds is refused rather than silently shared.
    fn bind_per_loop(&mut self, a: &Address) -> io::Result<(Address, Vec<event_loop::ListenSock>)> {
        if !self.shared.config.reuse_port {
            return self.bind_shared(a);
        }
        let n = self.loops.len();
        let first = Listener::bind(a, &self.listen_options(true))?;
        let real = first.local_address();
        let mut all = vec![first];
        for _ in 1..n {
            all.push(Listener::bind(&real, &self.listen_options(true))?);
        }
        let socks = all
            .into_iter()
            .map(|l| match l.into_std() {
                StdListener::Tcp(l) => {
                    event_loop::ListenSock::Tcp(mio::net::TcpListener::from_std(l))
                }
                StdListener::Unix(l) => {
                    event_loop::ListenSock::Unix(mio::net::UnixListener::from_std(l))
                }
            })
            .collect();
        Ok((real, socks))
    }

    /// One listener whose descriptor every loop shares (Unix sockets, and TCP
    /// without `reuse_port`); the reactor removes a Unix socket file when it stops.
    fn bind_shared(&mut self, a: &Address) -> io::Result<(Address, Vec<event_loop::ListenSock>)> {
        let l = Listener::bind(a, &self.listen_options(false))?;
        let addr = l.local_address();
        if let Address::Unix(p) = &addr {
            self.owned_paths.push(p.clone());
        }
        Ok((addr, share(l.into_std(), self.loops.len())?))
    }

    /// Serves datagrams on `on` with `service` (`reactor.listenUDP`), on the first
    /// loop. Returns the address with its real port.
    pub fn listen_datagram(
        &mut self,
        on: impl Into<DatagramOn>,
        service: Arc<dyn DatagramService>,
    ) -> io::Result<Address> {
        if self.shared.config.backend == Backend::Uring {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "datagram sockets are not supported by the io_uring backend",
            ));
        }
        let (addr, sock) = match on.into() {
            DatagramOn::Udp(sa) => self.bind_datagram(&Address::udp(sa))?,
            DatagramOn::Unix(p) => self.bind_datagram(&Address::UnixDgram(p))?,
            DatagramOn::Address(a) => self.bind_datagram(&a)?,
            DatagramOn::Datagram(d) => {
                let addr = d.local_address();
                let dup = d.try_clone()?;
                self.keep_dgram.push(d);
                (addr, dgram_sock(dup.into_std())?)
            }
            DatagramOn::UdpSocket(s) => (
                Address::udp(s.local_addr()?),
                event_loop::DgramSock::udp(s)?,
            ),
            DatagramOn::UnixSocket(s) => {
                let p = s
                    .local_addr()?
                    .as_pathname()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                (Address::UnixDgram(p), event_loop::DgramSock::unix(s)?)
            }
        };
        match self.loops.first_mut() {
            Some(lp) => lp.add_datagram(sock, service)?,
            None => return Err(io::Error::other("reactor has no loops")),
        }
        self.addrs.push(addr.clone());
        Ok(addr)
    }

    fn bind_datagram(&mut self, a: &Address) -> io::Result<(Address, event_loop::DgramSock)> {
        if a.is_stream() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{a} is a stream address: serve it with listen"),
            ));
        }
        let listen = ListenOptions {
            ipv6_only: self.shared.config.ipv6_only,
            ..ListenOptions::default()
        };
        let d = Datagram::bind_beside(a, &listen)?;
        let addr = d.local_address();
        if let Address::UnixDgram(p) = &addr {
            self.owned_paths.push(p.clone());
        }
        Ok((addr, dgram_sock(d.into_std())?))
    }

    /// Every address served so far, with real ports, in the order added; their
    /// `Display` is the canonical form for the "listening on ADDR" lines.
    pub fn local_addresses(&self) -> Vec<Address> {
        self.addrs.clone()
    }

    /// A handle to stop the reactor or open client connections, from any thread.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// The same as [`handle`](Reactor::handle); named for its main use.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle()
    }

    /// Connects `proto` to `to` once the loops run (Twisted's `connectTCP`).
    /// See [`Handle::connect`].
    pub fn connect(
        &self,
        to: impl Into<ConnectTo>,
        proto: impl Protocol + 'static,
        timeout: Duration,
    ) -> ConnectHandle {
        self.handle().connect(to, proto, timeout)
    }

    /// Runs the loops — the calling thread runs the first, one new thread each
    /// runs the others — until [`Handle::shutdown`] and the end of the grace period.
    /// Removes the Unix socket files the reactor bound.
    ///
    /// # Errors
    ///
    /// The first error a loop stopped on (an `epoll_wait` failure).
    pub fn run(mut self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.shared.config.backend == Backend::Uring {
            return self.run_uring();
        }
        let loops = std::mem::take(&mut self.loops);
        let mut iter = loops.into_iter();
        let first = iter.next();
        let mut threads = Vec::new();
        for (i, lp) in iter.enumerate() {
            let t = std::thread::Builder::new()
                .name(format!("netkit-loop-{}", i + 1))
                .spawn(move || lp.run())?;
            threads.push(t);
        }
        let mut result = first.map_or(Ok(()), Loop::run);
        for t in threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("reactor loop panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        drop(self);
        result
    }
}

#[cfg(target_os = "linux")]
impl Reactor {
    /// [`run`](Reactor::run) with io_uring loops, each ring made on the thread
    /// that runs it.
    fn run_uring(mut self) -> io::Result<()> {
        let loops = std::mem::take(&mut self.loops);
        let listeners = std::mem::take(&mut self.uring_listeners);
        let mut iter = loops.into_iter().zip(listeners).map(|(lp, ls)| {
            let (poll, shared_loop) = lp.into_poll();
            let shared = self.shared.clone();
            move || uring::Loop::new(poll, shared_loop, shared, ls)?.run()
        });
        let first = iter.next();
        let mut threads = Vec::new();
        for (i, lp) in iter.enumerate() {
            let t = std::thread::Builder::new()
                .name(format!("netkit-uring-{}", i + 1))
                .spawn(lp)?;
            threads.push(t);
        }
        let mut result = first.map_or(Ok(()), |lp| lp());
        for t in threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("reactor loop panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        drop(self);
        result
    }
}

impl Drop for Reactor {
    /// Removes the Unix socket files the reactor bound (also when it never ran).
    fn drop(&mut self) {
        for p in &self.owned_paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Stops a reactor or opens client connections on it; cheap to clone, `Send`.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// A [`Handle`], named for its use by signal handlers.
pub type ShutdownHandle = Handle;

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// Starts a graceful shutdown: stop accepting, let open connections finish for
    /// up to [`ReactorConfig::grace`], then close them with [`CloseReason::Shutdown`].
    /// Returns at once; [`Reactor::run`] returns when it is done. Idempotent.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake_all();
    }

    /// Whether [`shutdown`](Handle::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    /// Accepted connections open now, across all loops.
    pub fn connections(&self) -> usize {
        self.shared.conns.load(Ordering::SeqCst)
    }

    /// Connections open now (accepted and client) on each loop, in loop order.
    pub fn connections_per_loop(&self) -> Vec<usize> {
        self.shared
            .loops
            .iter()
            .map(|l| l.conns.load(Ordering::SeqCst))
            .collect()
    }

    /// Connects `proto` to `to` on one of the loops (Twisted's `connectTCP` /
    /// `connectUNIX`), with a non-blocking connect that fails after `timeout`.
    /// On success the Protocol gets `connection_made` and runs like an accepted
    /// connection; on failure it is dropped without any call and the returned
    /// handle reports the error (Twisted's `clientConnectionFailed`). Callable
    /// before [`Reactor::run`] (the connect starts when the loops do) and while it
    /// runs, from any thread.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netkit::protocol::{Protocol, Transport};
    /// use netkit::reactor::{Reactor, ReactorConfig};
    ///
    /// struct Hello;
    /// impl Protocol for Hello {
    ///     fn connection_made(&mut self, t: &mut dyn Transport) {
    ///         t.write(b"hello");
    ///         t.close();
    ///     }
    ///     fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
    /// }
    ///
    /// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let reactor = Reactor::new(ReactorConfig { workers: 1, ..Default::default() })?;
    /// let handle = reactor.handle();
    /// let running = std::thread::spawn(move || reactor.run());
    /// let connected = handle.connect(server.local_addr()?, Hello, Duration::from_secs(5));
    /// connected.wait()?;
    /// let (mut conn, _) = server.accept()?;
    /// let mut got = String::new();
    /// std::io::Read::read_to_string(&mut conn, &mut got)?;
    /// assert_eq!(got, "hello");
    /// handle.shutdown();
    /// running.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(
        &self,
        to: impl Into<ConnectTo>,
        proto: impl Protocol + 'static,
        timeout: Duration,
    ) -> ConnectHandle {
        let state = Arc::new(ConnectState::default());
        let n = self.shared.loops.len().max(1);
        let i = self.shared.next_loop.fetch_add(1, Ordering::Relaxed) % n;
        let cmd = Cmd::Connect {
            to: to.into(),
            proto: Box::new(proto),
            timeout,
            state: state.clone(),
        };
        match self.shared.loops.get(i) {
            Some(l) => l.send(cmd),
            None => state.finish(Err(io::Error::other("reactor has no loops"))),
        }
        ConnectHandle { state }
    }
}

/// The outcome of a client connection started with [`Handle::connect`]
/// (a Deferred that fires once).
#[derive(Debug, Clone)]
pub struct ConnectHandle {
    state: Arc<ConnectState>,
}

#[derive(Debug, Default)]
pub(crate) struct ConnectState {
    result: Mutex<Option<Result<(), (io::ErrorKind, String)>>>,
    cv: Condvar,
}

impl ConnectState {
    pub(crate) fn finish(&self, r: io::Result<()>) {
        let mut g = self.result.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(r.map_err(|e| (e.kind(), e.to_string())));
        }
        self.cv.notify_all();
    }
}

impl ConnectHandle {
    /// The outcome if known: `Some(Ok(()))` once connected, `Some(Err(_))` when
    /// the connect failed or timed out, `None` while it is in progress.
    pub fn result(&self) -> Option<io::Result<()>> {
        let g = self.state.result.lock().unwrap_or_else(|e| e.into_inner());
        g.clone().map(|r| r.map_err(|(k, m)| io::Error::new(k, m)))
    }

    /// Blocks until the connect succeeds or fails (the connect's own timeout bounds
    /// the wait once the reactor runs).
    pub fn wait(&self) -> io::Result<()> {
        let mut g = self.state.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = g.clone() {
                return r.map_err(|(k, m)| io::Error::new(k, m));
            }
            g = self.state.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The [`CloseReason`] for a connection closed because its mailbox overflowed.
pub(crate) fn mailbox_overflow() -> CloseReason {
    CloseReason::Error("mailbox full: the peer is not reading".into())
}
