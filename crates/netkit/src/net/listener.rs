//! Listening stream sockets, TCP or Unix: binding with the options servers
//! need, accepting, adopting an inherited descriptor, and handing the socket
//! to an event loop.
//!
//! Out of scope: what is done with an accepted connection (see [`Stream`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use socket2::{Domain, SockAddr, Socket, Type};

use super::addr::Address;
use super::sockfile::{bind_unix, SocketFile};
use super::stream::{Kind, Stream};
use super::{peer_of, sys, PeerAddr};

/// The default listen backlog, before the system's `somaxconn` cap.
pub const DEFAULT_BACKLOG: i32 = 1024;

/// How [`Listener::bind`] sets up a listening socket.
///
/// ```
/// use netkit::net::{ListenOptions, Listener};
///
/// let opts = ListenOptions { reuse_port: true, backlog: 128, ..ListenOptions::default() };
/// let a = Listener::bind(&"127.0.0.1:0".parse()?, &opts)?;
/// // With SO_REUSEPORT a second listener can share the port.
/// let b = Listener::bind(&a.local_address(), &opts)?;
/// assert_eq!(a.local_address(), b.local_address());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOptions {
    /// The `listen(2)` backlog; capped at `/proc/sys/net/core/somaxconn`,
    /// negative values count as 0. Default 1024.
    pub backlog: i32,
    /// Set `SO_REUSEPORT` so several processes or threads can listen on one
    /// port and share its connections. Default off. TCP and UDP only.
    pub reuse_port: bool,
    /// Set `SO_REUSEADDR` so a restarted server can bind while old
    /// connections linger in `TIME_WAIT`. Default on. TCP only.
    pub reuse_addr: bool,
    /// Put the listener in non-blocking mode (for an event loop). Default off.
    pub nonblocking: bool,
    /// Set `IPV6_V6ONLY` on IPv6 listeners. Default off: `[::]:P` is dual
    /// stack and takes IPv4 clients too (as `::ffff:a.b.c.d`), as Python's
    /// `create_server(dualstack_ipv6=True)` and nginx's `ipv6only=off` do; turn
    /// it on to bind `0.0.0.0:P` beside `[::]:P` as a separate socket.
    pub ipv6_only: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
            reuse_addr: true,
            nonblocking: false,
            ipv6_only: false,
        }
    }
}

/// A listening TCP or Unix stream socket.
///
/// Every socket it creates or accepts is close-on-exec. Dropping a Unix
/// listener removes its socket file.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use netkit::net::{self, Address, ListenOptions, Listener};
///
/// let listener = Listener::bind(&"127.0.0.1:0".parse()?, &ListenOptions::default())?;
/// let addr = listener.local_address();
/// let mut client = net::connect(&addr, Duration::from_secs(5))?;
/// let (mut conn, peer) = listener.accept()?;
/// client.send_all(b"hi")?;
/// let mut buf = [0; 2];
/// conn.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hi");
/// assert!(peer.inet().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Listener {
    sock: Socket,
    kind: Kind,
    local: Address,
    file: Option<SocketFile>,
}

/// A listener as the standard library's type, for `mio`'s `from_std`.
#[derive(Debug)]
pub enum StdListener {
    /// A TCP listener.
    Tcp(std::net::TcpListener),
    /// A Unix stream listener.
    Unix(std::os::unix::net::UnixListener),
}

impl Listener {
    /// Binds and listens on `addr` (`socket(2)`, `bind(2)`, `listen(2)`).
    ///
    /// TCP: `SO_REUSEADDR`, `SO_REUSEPORT` and `IPV6_V6ONLY` as `opts` says;
    /// by default `[::]:P` is dual stack (IPv4 clients arrive as
    /// `::ffff:a.b.c.d`), so binding `0.0.0.0:P` beside it needs
    /// [`ListenOptions::ipv6_only`].
    /// A host name is resolved and the first address that binds is used.
    /// Unix: a stale socket file left by a dead server is replaced; a live
    /// one is an `AddrInUse` error. Liveness is found by connecting to the
    /// file (`ECONNREFUSED` means stale), so a live server sees one
    /// connection that closes at once. A path that is not a socket is never
    /// removed.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a datagram address; otherwise the system's error,
    /// naming the address.
    pub fn bind(addr: &Address, opts: &ListenOptions) -> io::Result<Listener> {
        let (sock, kind, file) = match addr {
            Address::Tcp(hp) => {
                let mut last = None;
                let mut bound = None;
                for sa in hp.resolve()? {
                    match bind_tcp(sa, opts) {
                        Ok(s) => {
                            bound = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let sock = match (bound, last) {
                    (Some(s), _) => s,
                    (None, Some(e)) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("cannot listen on {addr}: {e}"),
                        ))
                    }
                    (None, None) => {
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("cannot listen on {addr}: no addresses"),
                        ))
                    }
                };
                (sock, Kind::Tcp, None)
            }
            Address::Unix(path) => {
                let (sock, file) = bind_unix(path, Type::STREAM)?;
                sock.listen(backlog(opts.backlog)).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?;
                (sock, Kind::Unix, Some(file))
            }
            Address::Udp(_) | Address::UnixDgram(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "cannot listen on {addr}: it is a datagram address (use Datagram::bind)"
                    ),
                ))
            }
        };
        if opts.nonblocking {
            sock.set_nonblocking(true)?;
        }
        let local = match (&kind, addr) {
            (Kind::Unix, _) => addr.clone(),
            (Kind::Tcp, _) => Address::tcp(inet_local(&sock)?),
        };
        Ok(Listener {
            sock,
            kind,
            local,
            file,
        })
    }

    /// Adopts an inherited or passed-in listening socket (systemd's
    /// `LISTEN_FDS`, a parent process). The socket's family and type are read
    /// with `getsockopt(SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN)`; it is made
    /// close-on-exec and its blocking mode is left as it was (see
    /// [`Listener::from_fd_with`]). Dropping an adopted Unix listener does not
    /// remove its socket file.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `fd` is not a listening TCP or Unix stream socket.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Listener> {
        let sock = Socket::from(fd);
        let not_listener = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "descriptor {} is not a listening stream socket ({what})",
                    sock.as_raw_fd()
                ),
            )
        };
        let domain = sock.domain().map_err(|e| not_listener(&e.to_string()))?;
        let kind = if domain == Domain::IPV4 || domain == Domain::IPV6 {
            Kind::Tcp
        } else if domain == Domain::UNIX {
            Kind::Unix
        } else {
            return Err(not_listener(&format!("family {domain:?}")));
        };
        if sock.r#type()? != Type::STREAM {
            return Err(not_listener("not SOCK_STREAM"));
        }
        if !sock.is_listener()? {
            return Err(not_listener("listen(2) was not called on it"));
        }
        sock.set_cloexec(true)?;
        let local = match kind {
            Kind::Tcp => Address::tcp(inet_local(&sock)?),
            Kind::Unix => Address::Unix(
                sock.local_addr()?
                    .as_pathname()
                    .map(PathBuf::from)
                    .unwrap_or_default(),
            ),
        };
        Ok(Listener {
            sock,
            kind,
            local,
            file: None,
        })
    }

    /// [`Listener::from_fd`], then sets the blocking mode: pass `true` when an
    /// event loop will drive the listener, so `accept` can never hang it.
    pub fn from_fd_with(fd: OwnedFd, nonblocking: bool) -> io::Result<Listener> {
        let l = Listener::from_fd(fd)?;
        l.set_nonblocking(nonblocking)?;
        Ok(l)
    }

    /// Accepts one connection (`accept4(2)` with `SOCK_CLOEXEC`), retrying
    /// `EINTR`. The new stream is blocking whatever the listener's mode.
    ///
    /// # Errors
    ///
    /// `WouldBlock` on a non-blocking listener with nothing pending; the
    /// system's error otherwise (e.g. `EMFILE` when out of descriptors).
    pub fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        let (s, peer) = retry(|| self.sock.accept())?;
        // accept4 never passes O_NONBLOCK on; other systems copy the listener's.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        s.set_nonblocking(false)?;
        Ok((Stream::from_socket(s, self.kind), peer_of(&peer)))
    }

    /// Accepts one connection already in non-blocking mode, for an event
    /// loop: on Linux one `accept4(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
    ///
    /// # Errors
    ///
    /// As for [`Listener::accept`].
    pub fn accept_nonblocking(&self) -> io::Result<(Stream, PeerAddr)> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let (s, peer) = retry(|| self.sock.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC))?;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let (s, peer) = {
            let (s, peer) = retry(|| self.sock.accept())?;
            s.set_nonblocking(true)?;
            (s, peer)
        };
        Ok((Stream::from_socket(s, self.kind), peer_of(&peer)))
    }

    /// The address actually bound, with the real port when port 0 was asked
    /// for: what a server prints as `listening on ADDR`.
    pub fn local_address(&self) -> Address {
        self.local.clone()
    }

    /// The bound IP address and port of a TCP listener.
    pub fn local_socket_addr(&self) -> Option<SocketAddr> {
        match &self.local {
            Address::Tcp(hp) => hp.host.parse().ok().map(|ip| SocketAddr::new(ip, hp.port)),
            _ => None,
        }
    }

    /// Sets or clears `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Whether `O_NONBLOCK` is set.
    pub fn is_nonblocking(&self) -> io::Result<bool> {
        self.sock.nonblocking()
    }

    /// True for a Unix-domain listener, false for TCP.
    pub fn is_unix(&self) -> bool {
        self.kind == Kind::Unix
    }

    /// A second handle on the same listening socket (`dup(2)`, close-on-exec),
    /// e.g. for several accepting threads. The clone does not own the socket
    /// file; it is removed when the original is dropped.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(Listener {
            sock: self.sock.try_clone()?,
            kind: self.kind,
            local: self.local.clone(),
            file: None,
        })
    }

    /// The standard library's listener, for `mio::net::TcpListener::from_std`
    /// and friends. The socket file of a Unix listener is then no longer
    /// removed automatically.
    pub fn into_std(self) -> StdListener {
        let kind = self.kind;
        let sock = self.into_socket();
        match kind {
            Kind::Tcp => StdListener::Tcp(sock.into()),
            Kind::Unix => StdListener::Unix(sock.into()),
        }
    }

    fn into_socket(self) -> Socket {
        let Listener { sock, file, .. } = self;
        if let Some(f) = file {
            f.disarm();
        }
        sock
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("fd", &self.sock.as_raw_fd())
            .field("local", &self.local.to_string())
            .finish()
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl IntoRawFd for Listener {
    /// Gives up the descriptor; a Unix listener's socket file is kept.
    fn into_raw_fd(self) -> RawFd {
        self.into_socket().into_raw_fd()
    }
}

impl From<Listener> for OwnedFd {
    fn from(l: Listener) -> OwnedFd {
        l.into_socket().into()
    }
}

impl From<std::net::TcpListener> for Listener {
    fn from(l: std::net::TcpListener) -> Listener {
        let sock = Socket::from(l);
        let local = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(Address::tcp)
            .unwrap_or_else(|| Address::tcp(SocketAddr::from(([0, 0, 0, 0], 0))));
        Listener {
            sock,
            kind: Kind::Tcp,
            local,
            file: None,
        }
    }
}

impl From<std::os::unix::net::UnixListener> for Listener {
    /// Wraps a standard Unix listener; its socket file is not removed on drop.
    fn from(l: std::os::unix::net::UnixListener) -> Listener {
        let sock = Socket::from(l);
        let path = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(PathBuf::from))
            .unwrap_or_default();
        Listener {
            sock,
            kind: Kind::Unix,
            local: Address::Unix(path),
            file: None,
        }
    }
}

/// Adopts the listening sockets passed by systemd-style socket activation:
/// when `LISTEN_PID` is this process, descriptors 3 to 3 + `LISTEN_FDS` - 1,
/// each checked and made close-on-exec as by [`Listener::from_fd_with`].
///
/// Returns an empty list when no sockets were passed, and on every call after
/// the first (the descriptors can be owned only once).
///
/// # Errors
///
/// `InvalidInput` when `LISTEN_FDS` is not a number, or a passed descriptor
/// is closed or is not a listening stream socket.
pub fn listen_fds(nonblocking: bool) -> io::Result<Vec<Listener>> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let Some(count) = std::env::var("LISTEN_FDS").ok().filter(|_| ours) else {
        return Ok(Vec::new());
    };
    let count: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=4096).contains(n))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS={count:?} is not a descriptor count"),
            )
        })?;
    let Some(fds) = sys::take_listen_fds(3, count)? else {
        return Ok(Vec::new());
    };
    fds.into_iter()
        .map(|fd| Listener::from_fd_with(fd, nonblocking))
        .collect()
}

fn bind_tcp(sa: SocketAddr, opts: &ListenOptions) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(sa), Type::STREAM, None)?;
    if sa.is_ipv6() {
        sock.set_only_v6(opts.ipv6_only)?;
    }
    sock.set_reuse_address(opts.reuse_addr)?;
    if opts.reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&SockAddr::from(sa))?;
    sock.listen(backlog(opts.backlog))?;
    Ok(sock)
}

/// Runs `f` until it fails with something other than `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn backlog(asked: i32) -> i32 {
    let cap = sys::somaxconn().unwrap_or(i32::MAX);
    asked.clamp(0, cap.max(0))
}

fn inet_local(sock: &Socket) -> io::Result<SocketAddr> {
    sock.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket has no IP address"))
}
