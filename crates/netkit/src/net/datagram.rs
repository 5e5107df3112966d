//! Datagram sockets, UDP or Unix: binding, connecting a client, and
//! `send_to` / `recv_from` that report a datagram too big for the buffer
//! instead of cutting it silently.
//!
//! Out of scope: stream sockets and any framing inside a datagram.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use super::addr::Address;
use super::listener::ListenOptions;
use super::sockfile::{bind_unix, unix_sockaddr, SocketFile};
use super::{peer_of, sys, PeerAddr};

/// The largest UDP payload over IPv4: 65535 less the 8-byte UDP header and
/// the 20-byte IP header.
pub const UDP_MAX: usize = 65507;

/// The receive buffer a UDP socket needs to take any datagram whole: the
/// largest UDP payload over IPv6 (65,527 bytes) rounded up.
const UDP_BUFFER: usize = 64 * 1024;
/// The most a Unix datagram receive buffer is sized to, whatever the system allows.
const UNIX_BUFFER_CAP: usize = 16 * 1024 * 1024;
/// How often a socket that keeps receiving over-long datagrams logs them.
const TRUNCATION_LOG_EVERY: Duration = Duration::from_secs(10);

/// The receive buffer that takes any datagram this kind of socket can carry
/// whole: 64 KiB for UDP; for Unix datagram sockets, whose datagrams are bounded
/// by the sender's `SO_SNDBUF` and not by a protocol, twice the system's
/// `net.core.wmem_max` (the kernel doubles the value a sender sets), at least
/// 64 KiB and at most 16 MiB.
///
/// ```
/// use netkit::net::max_datagram_size;
/// assert_eq!(max_datagram_size(false), 65536);
/// assert!(max_datagram_size(true) >= 65536);
/// ```
pub fn max_datagram_size(unix: bool) -> usize {
    if !unix {
        return UDP_BUFFER;
    }
    static UNIX: OnceLock<usize> = OnceLock::new();
    *UNIX.get_or_init(|| {
        let wmem_max = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(212_992);
        wmem_max
            .saturating_mul(2)
            .clamp(UDP_BUFFER, UNIX_BUFFER_CAP)
    })
}

/// Receives one datagram on any datagram socket (`recvmsg(2)`, so a datagram
/// longer than `buf` is reported as truncated instead of cut silently); what
/// [`Datagram::recv_from`] does, for sockets another owner holds (an event
/// loop's).
///
/// # Errors
///
/// The system's error (`WouldBlock` on a non-blocking socket with nothing
/// waiting); `Interrupted` is retried.
pub fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Recv> {
    let sock = SockRef::from(&fd);
    loop {
        match sys::recv_from_trunc(&sock, buf) {
            Ok((len, truncated, from)) => {
                return Ok(Recv {
                    len: len.min(buf.len()),
                    peer: peer_of(&from),
                    truncated,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Logs datagrams that arrived truncated, without letting a flood of them
/// flood the log: the first at once, then at most one line every 10 s that
/// counts the ones in between. Each runner keeps one per socket.
#[derive(Debug, Default)]
pub struct TruncationLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl TruncationLog {
    /// Notes a truncated datagram from `peer` on socket `local`, of which
    /// `kept` bytes were received; logs a warning when one is due.
    pub fn note(&mut self, local: &dyn fmt::Display, peer: &PeerAddr, kept: usize) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < TRUNCATION_LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        let more = std::mem::take(&mut self.unlogged);
        self.last = Some(now);
        if more > 0 {
            tracing::warn!(
                "{local}: a datagram from {peer} was longer than {kept} bytes and was dropped ({more} more since the last warning)"
            );
        } else {
            tracing::warn!(
                "{local}: a datagram from {peer} was longer than {kept} bytes and was dropped"
            );
        }
    }
}

/// One received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recv {
    /// Bytes written into the buffer (at most its length).
    pub len: usize,
    /// The sender. `PeerAddr::Unix(None)` for an unnamed Unix socket, which
    /// cannot be replied to.
    pub peer: PeerAddr,
    /// True when the datagram was longer than the buffer and its tail was lost.
    pub truncated: bool,
}

/// A UDP or Unix datagram socket.
///
/// Dropping a bound Unix datagram socket removes its socket file.
///
/// ```
/// use netkit::net::{Datagram, UDP_MAX};
///
/// let server = Datagram::bind(&"udp://127.0.0.1:0".parse()?)?;
/// let client = Datagram::connect_to(&server.local_address())?;
/// client.send(b"hello")?;
/// let mut buf = vec![0; UDP_MAX];
/// let got = server.recv_from(&mut buf)?;
/// assert_eq!(&buf[..got.len], b"hello");
/// assert!(!got.truncated);
/// server.send_to(b"back", &got.peer)?;
/// let reply = client.recv(&mut buf)?;
/// assert_eq!(&buf[..reply.len], b"back");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Datagram {
    sock: Socket,
    unix: bool,
    local: Address,
    file: Option<SocketFile>,
}

impl Datagram {
    /// Binds a UDP (`udp://HOST:PORT`) or Unix datagram (`unix-dgram:///path`)
    /// socket, close-on-exec. A stale Unix socket file is replaced; a live one
    /// is an `AddrInUse` error. IPv6 sockets set `IPV6_V6ONLY`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a stream address; otherwise the system's error,
    /// naming the address.
    pub fn bind(addr: &Address) -> io::Result<Datagram> {
        Datagram::bind_beside(addr, &ListenOptions::default())
    }

    /// [`Datagram::bind`] for a server that also listens with `listen`: the
    /// options that apply to a datagram socket carry over (`IPV6_V6ONLY`), the
    /// rest do not (`SO_REUSEADDR` never; `SO_REUSEPORT` only through
    /// [`bind_with`](Self::bind_with)).
    pub fn bind_beside(addr: &Address, listen: &ListenOptions) -> io::Result<Datagram> {
        Datagram::bind_with(
            addr,
            &ListenOptions {
                reuse_addr: false,
                ipv6_only: listen.ipv6_only,
                ..ListenOptions::default()
            },
        )
    }

    /// [`Datagram::bind`] with options: `reuse_port` (`SO_REUSEPORT`, to share
    /// a port between loops), `reuse_addr` (`SO_REUSEADDR`, UDP only) and
    /// `nonblocking`; `backlog` does not apply.
    pub fn bind_with(addr: &Address, opts: &ListenOptions) -> io::Result<Datagram> {
        let (sock, unix, file) = match addr {
            Address::Udp(hp) => {
                let mut last = None;
                let mut bound = None;
                for sa in hp.resolve()? {
                    match bind_udp(sa, opts) {
                        Ok(s) => {
                            bound = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match (bound, last) {
                    (Some(s), _) => (s, false, None),
                    (None, e) => {
                        let e = e.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound));
                        return Err(io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")));
                    }
                }
            }
            Address::UnixDgram(path) => {
                let (sock, file) = bind_unix(path, Type::DGRAM)?;
                (sock, true, Some(file))
            }
            Address::Tcp(_) | Address::Unix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot bind a datagram socket to {addr}: it is a stream address (use Listener::bind)"),
                ))
            }
        };
        if opts.nonblocking {
            sock.set_nonblocking(true)?;
        }
        let local = local_address(&sock, unix)?;
        Ok(Datagram {
            sock,
            unix,
            local,
            file,
        })
    }

    /// A client socket connected to `addr` (`connect(2)`), so [`send`](Self::send)
    /// and [`recv`](Self::recv) need no address and only `addr`'s datagrams
    /// arrive. UDP binds an ephemeral port of the right family. Unix binds a
    /// fresh socket file in the temporary directory (removed on drop) so the
    /// server can reply.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a stream address; otherwise the system's error,
    /// naming the address.
    pub fn connect_to(addr: &Address) -> io::Result<Datagram> {
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}"));
        match addr {
            Address::Udp(hp) => {
                let mut last = io::Error::from(io::ErrorKind::NotFound);
                for sa in hp.resolve()? {
                    let unspec: SocketAddr = if sa.is_ipv6() {
                        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                    } else {
                        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                    };
                    match bind_udp(unspec, &ListenOptions { reuse_addr: false, ..ListenOptions::default() })
                        .and_then(|s| s.connect(&SockAddr::from(sa)).map(|()| s))
                    {
                        Ok(sock) => {
                            let local = local_address(&sock, false)?;
                            return Ok(Datagram {
                                sock,
                                unix: false,
                                local,
                                file: None,
                            });
                        }
                        Err(e) => last = e,
                    }
                }
                Err(ctx(last))
            }
            Address::UnixDgram(path) => {
                let target = unix_sockaddr(path)?;
                let (sock, file) = bind_unix(&client_path(), Type::DGRAM).map_err(ctx)?;
                sock.connect(&target).map_err(ctx)?;
                let local = local_address(&sock, true)?;
                Ok(Datagram {
                    sock,
                    unix: true,
                    local,
                    file: Some(file),
                })
            }
            Address::Tcp(_) | Address::Unix(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot connect a datagram socket to {addr}: it is a stream address (use net::connect)"),
            )),
        }
    }

    /// Sends one datagram to `peer` (`sendto(2)`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `peer` is of the other family or an unnamed Unix
    /// socket; `EMSGSIZE` for a datagram over the limit.
    pub fn send_to(&self, buf: &[u8], peer: &PeerAddr) -> io::Result<usize> {
        let to = match (peer, self.unix) {
            (PeerAddr::Inet(sa), false) => SockAddr::from(*sa),
            (PeerAddr::Unix(Some(p)), true) => unix_sockaddr(p)?,
            (PeerAddr::Unix(None), true) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot send to an unnamed Unix socket",
                ))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot send to {peer} from a socket of another family"),
                ))
            }
        };
        self.sock.send_to(buf, &to)
    }

    /// Sends one datagram to the connected peer (`send(2)`).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send(buf)
    }

    /// Receives one datagram (`recvmsg(2)`) into `buf`; a datagram longer
    /// than `buf` fills it and is reported with `truncated: true`. A buffer of
    /// [`max_datagram_size`] bytes receives any datagram the socket can carry
    /// whole.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<Recv> {
        recv_datagram(self.sock.as_fd(), buf)
    }

    /// Receives one datagram from the connected peer; as [`recv_from`](Self::recv_from).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Recv> {
        self.recv_from(buf)
    }

    /// The bound address, with the real port.
    pub fn local_address(&self) -> Address {
        self.local.clone()
    }

    /// The connected peer's address (`getpeername(2)`).
    pub fn peer_addr(&self) -> io::Result<PeerAddr> {
        self.sock.peer_addr().map(|a| peer_of(&a))
    }

    /// Sets `SO_RCVTIMEO`; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a zero timeout is not allowed (use None to wait forever)",
            ));
        }
        self.sock.set_read_timeout(timeout)
    }

    /// Sets or clears `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// A second handle on the same socket (`dup(2)`, close-on-exec). The
    /// clone does not own a Unix socket file; the original removes it.
    pub fn try_clone(&self) -> io::Result<Datagram> {
        Ok(Datagram {
            sock: self.sock.try_clone()?,
            unix: self.unix,
            local: self.local.clone(),
            file: None,
        })
    }

    /// True for a Unix datagram socket, false for UDP.
    pub fn is_unix(&self) -> bool {
        self.unix
    }

    /// The standard library's socket, for `mio`'s `from_std`. A Unix socket's
    /// file is then no longer removed automatically.
    pub fn into_std(self) -> StdDatagram {
        let unix = self.unix;
        let sock = self.into_socket();
        if unix {
            StdDatagram::Unix(sock.into())
        } else {
            StdDatagram::Udp(sock.into())
        }
    }

    fn into_socket(self) -> Socket {
        let Datagram { sock, file, .. } = self;
        if let Some(f) = file {
            f.disarm();
        }
        sock
    }
}

/// A datagram socket as the standard library's type.
#[derive(Debug)]
pub enum StdDatagram {
    /// A UDP socket.
    Udp(std::net::UdpSocket),
    /// A Unix datagram socket.
    Unix(std::os::unix::net::UnixDatagram),
}

impl fmt::Debug for Datagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datagram")
            .field("fd", &self.sock.as_raw_fd())
            .field("local", &self.local.to_string())
            .finish()
    }
}

impl AsRawFd for Datagram {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for Datagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl IntoRawFd for Datagram {
    /// Gives up the descriptor; a Unix socket's file is kept.
    fn into_raw_fd(self) -> RawFd {
        self.into_socket().into_raw_fd()
    }
}

impl From<Datagram> for OwnedFd {
    fn from(d: Datagram) -> OwnedFd {
        d.into_socket().into()
    }
}

fn bind_udp(sa: SocketAddr, opts: &ListenOptions) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(sa), Type::DGRAM, None)?;
    if sa.is_ipv6() {
        // `[::]` takes IPv4 datagrams too (as v4-mapped peers), unless asked not to.
        sock.set_only_v6(opts.ipv6_only)?;
    }
    if opts.reuse_addr {
        sock.set_reuse_address(true)?;
    }
    if opts.reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&SockAddr::from(sa))?;
    Ok(sock)
}

fn local_address(sock: &Socket, unix: bool) -> io::Result<Address> {
    let a = sock.local_addr()?;
    Ok(if unix {
        Address::UnixDgram(a.as_pathname().map(PathBuf::from).unwrap_or_default())
    } else {
        Address::udp(a.as_socket().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "socket has no IP address")
        })?)
    })
}

/// A fresh path for a Unix datagram client's own socket file.
fn client_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("netkit-dgram-{}-{n}.sock", std::process::id()))
}
