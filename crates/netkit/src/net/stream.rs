//! Connected stream sockets, TCP or Unix, as one type: reads and writes,
//! timeouts, half-close, `send_all`, `read_exact` and zero-copy `sendfile`.
//!
//! Out of scope: making connections (see [`connect`](super::connect)) and
//! accepting them (see [`Listener`](super::Listener)).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use socket2::{Domain, Socket, TcpKeepalive, Type};

use super::{peer_of, sys, PeerAddr};

/// Which family a stream or listener belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TCP over IPv4 or IPv6.
    Tcp,
    /// A Unix-domain stream socket.
    Unix,
}

/// A connected TCP or Unix stream socket.
///
/// Reads and writes go through `io::Read` / `io::Write`, implemented for both
/// `Stream` and `&Stream` so one thread can read while another writes. Writes
/// never raise `SIGPIPE`: a closed peer is a `BrokenPipe` error.
///
/// ```
/// use std::io::Read;
/// use std::net::Shutdown;
///
/// let (a, b) = netkit::net::socketpair()?;
/// a.send_all(b"ping")?;
/// a.shutdown(Shutdown::Write)?;
/// let mut got = Vec::new();
/// (&b).read_to_end(&mut got)?;
/// assert_eq!(got, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Stream {
    sock: Socket,
    kind: Kind,
}

/// A stream as the standard library's type, for `mio::net::TcpStream::from_std`
/// and friends.
#[derive(Debug)]
pub enum StdStream {
    /// A TCP stream.
    Tcp(std::net::TcpStream),
    /// A Unix stream.
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    pub(crate) fn from_socket(sock: Socket, kind: Kind) -> Stream {
        Stream { sock, kind }
    }

    /// Writes all of `buf`, retrying partial writes and `EINTR`.
    ///
    /// # Errors
    ///
    /// The first error other than `EINTR`: `BrokenPipe` when the peer has
    /// closed, `WouldBlock` / `TimedOut`-like errors when the socket is
    /// non-blocking or its write timeout expires (how much was written is
    /// then unknown, so treat the stream as failed). `WriteZero` if the
    /// system accepts nothing.
    pub fn send_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.send(buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "socket accepted no bytes",
                    ))
                }
                Ok(n) => buf = buf.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes, retrying short reads and `EINTR`.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` (saying how many bytes arrived) when the peer closes
    /// first; otherwise the read's error, e.g. a timeout.
    pub fn read_exact(&self, buf: &mut [u8]) -> io::Result<()> {
        let want = buf.len();
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            match (&self.sock).read(rest) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("peer closed after {got} of {want} bytes"),
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Closes the read half, the write half (sending EOF to the peer, which
    /// can still write back) or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// Sets `SO_RCVTIMEO`: a blocking read waits at most this long and then
    /// fails with `WouldBlock`. `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(check_timeout(timeout)?)
    }

    /// Sets `SO_SNDTIMEO`: a blocking write waits at most this long. `None`
    /// waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(check_timeout(timeout)?)
    }

    /// The read timeout (`SO_RCVTIMEO`).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.read_timeout()
    }

    /// The write timeout (`SO_SNDTIMEO`).
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.write_timeout()
    }

    /// Sets or clears `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay). A no-op on Unix sockets.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self.kind {
            Kind::Tcp => self.sock.set_tcp_nodelay(nodelay),
            Kind::Unix => Ok(()),
        }
    }

    /// Sets `SO_LINGER`: `Some(d)` makes `close` wait up to `d` for unsent
    /// data (`Some(ZERO)` resets the connection); `None` is the default
    /// background close.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock.set_linger(linger)
    }

    /// Sets `SO_KEEPALIVE`: `Some(idle)` turns TCP keep-alive probes on after
    /// `idle` without traffic; `None` turns them off. A no-op on Unix sockets.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        match (self.kind, idle) {
            (Kind::Unix, _) => Ok(()),
            (Kind::Tcp, None) => self.sock.set_keepalive(false),
            (Kind::Tcp, Some(idle)) => self
                .sock
                .set_tcp_keepalive(&TcpKeepalive::new().with_time(idle)),
        }
    }

    /// A second handle on the same connection (`dup(2)`, close-on-exec).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream {
            sock: self.sock.try_clone()?,
            kind: self.kind,
        })
    }

    /// The remote end's address (`getpeername(2)`).
    pub fn peer_addr(&self) -> io::Result<PeerAddr> {
        self.sock.peer_addr().map(|a| peer_of(&a))
    }

    /// This end's address (`getsockname(2)`).
    pub fn local_addr(&self) -> io::Result<PeerAddr> {
        self.sock.local_addr().map(|a| peer_of(&a))
    }

    /// True for a Unix-domain stream, false for TCP.
    pub fn is_unix(&self) -> bool {
        self.kind == Kind::Unix
    }

    /// Takes and clears the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Sends `len` bytes of `file` starting at `offset`, zero-copy with
    /// `sendfile(2)` on Linux (a `pread` / `send` loop elsewhere, or where the
    /// file cannot be spliced). The file's own position is not used or moved.
    ///
    /// Returns the bytes sent: `len`, or fewer when the file ends first, or
    /// fewer when a non-blocking socket (or the write timeout) stops it after
    /// some bytes went out.
    ///
    /// `sendfile(2)` has no `MSG_NOSIGNAL`: a process that does not ignore
    /// `SIGPIPE` (Rust programs ignore it unless they opt out) is signalled
    /// when the peer has closed.
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// let path = std::env::temp_dir().join(format!("netkit-sendfile-doc-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789")?;
    /// let (tx, rx) = netkit::net::socketpair()?;
    /// let sent = tx.sendfile(&std::fs::File::open(&path)?, 2, 5)?;
    /// drop(tx);
    /// let mut got = Vec::new();
    /// (&rx).read_to_end(&mut got)?;
    /// std::fs::remove_file(&path)?;
    /// assert_eq!((sent, &got[..]), (5, &b"23456"[..]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an offset beyond `i64::MAX`; the system's error
    /// when nothing could be sent.
    pub fn sendfile(&self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        let start = i64::try_from(offset).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "sendfile offset is too large")
        })?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut off = start;
            let mut sent = 0u64;
            while sent < len {
                let chunk = (len - sent).min(0x7fff_f000) as usize;
                match sys::sendfile(self.sock.as_fd(), file.as_fd(), &mut off, chunk) {
                    Ok(0) => break,
                    Ok(n) => sent += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e)
                        if sent == 0
                            && matches!(
                                e.raw_os_error(),
                                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                            ) =>
                    {
                        return self.copy_file(file, offset, len);
                    }
                    Err(e) if sent > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            Ok(sent)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = start;
            self.copy_file(file, offset, len)
        }
    }

    /// `sendfile` without the kernel's help: `pread` into a buffer, then send it.
    fn copy_file(&self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        let mut buf = vec![0u8; (len.min(256 * 1024)) as usize];
        let mut sent = 0u64;
        while sent < len {
            let want = (len - sent).min(buf.len() as u64) as usize;
            let Some(chunk) = buf.get_mut(..want) else {
                break;
            };
            let n = match file.read_at(chunk, offset + sent) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.send_all(chunk.get(..n).unwrap_or_default())?;
            sent += n as u64;
        }
        Ok(sent)
    }

    /// The standard library's stream, for `mio`'s `from_std`.
    pub fn into_std(self) -> StdStream {
        match self.kind {
            Kind::Tcp => StdStream::Tcp(self.sock.into()),
            Kind::Unix => StdStream::Unix(self.sock.into()),
        }
    }

    /// Adopts a connected stream socket descriptor, detecting TCP or Unix
    /// (`SO_DOMAIN`) and making it close-on-exec.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `fd` is not a TCP or Unix stream socket.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Stream> {
        let sock = Socket::from(fd);
        let domain = sock.domain()?;
        let kind = if domain == Domain::UNIX {
            Kind::Unix
        } else if domain == Domain::IPV4 || domain == Domain::IPV6 {
            Kind::Tcp
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("descriptor is not a TCP or Unix socket (family {domain:?})"),
            ));
        };
        if sock.r#type()? != Type::STREAM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "descriptor is not a stream socket",
            ));
        }
        sock.set_cloexec(true)?;
        Ok(Stream { sock, kind })
    }

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_with_flags(buf, sys::SEND_FLAGS)
    }
}

fn check_timeout(t: Option<Duration>) -> io::Result<Option<Duration>> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a zero timeout is not allowed (use None to wait forever)",
        ));
    }
    Ok(t)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.sock).read(buf)
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.sock).read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl IntoRawFd for Stream {
    fn into_raw_fd(self) -> RawFd {
        self.sock.into_raw_fd()
    }
}

impl From<Stream> for OwnedFd {
    fn from(s: Stream) -> OwnedFd {
        s.sock.into()
    }
}

impl From<std::net::TcpStream> for Stream {
    fn from(s: std::net::TcpStream) -> Stream {
        Stream {
            sock: s.into(),
            kind: Kind::Tcp,
        }
    }
}

impl From<std::os::unix::net::UnixStream> for Stream {
    fn from(s: std::os::unix::net::UnixStream) -> Stream {
        Stream {
            sock: s.into(),
            kind: Kind::Unix,
        }
    }
}

impl From<StdStream> for Stream {
    fn from(s: StdStream) -> Stream {
        match s {
            StdStream::Tcp(t) => t.into(),
            StdStream::Unix(u) => u.into(),
        }
    }
}
