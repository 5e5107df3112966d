//! Blocking handlers (socketserver's `StreamRequestHandler` and `BaseRequestHandler`):
//! the [`Handler`] trait and the [`Conn`] it reads and writes, and the datagram
//! counterparts, [`DatagramHandler`] and [`DatagramRequest`].
//!
//! A [`Conn`] is the handler's `request`, `rfile` and `wfile` in one: buffered
//! [`read_line`](Conn::read_line) bounded by the server's max line, `read_exact`
//! and `write_all` through [`io::Read`] and [`io::Write`], the peer address and the
//! timeouts. Out of scope: accepting and the concurrency modes (the parent module).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use crate::net::{Datagram, Stream};
use crate::protocol::{DatagramService, PeerAddr};

use super::ShutdownHandle;

/// Handles one stream connection with blocking calls (socketserver's request handler).
///
/// `setup`, `handle` and `finish` run in that order on the connection's thread (or
/// process); `finish` runs whenever `setup` succeeded, even if `handle` failed. An
/// error or a panic is logged with the peer's address and ends only this
/// connection. Any `Fn(&mut Conn) -> io::Result<()>` closure is a Handler.
///
/// ```
/// use std::io::Write;
/// use netkit::server::{Conn, Handler};
/// fn takes(_: impl Handler) {}
/// takes(|c: &mut Conn| c.write_all(b"Thank you for connecting"));
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Prepares the connection (socketserver's `setup`).
    fn setup(&self, conn: &mut Conn) -> io::Result<()> {
        let _ = conn;
        Ok(())
    }

    /// Serves the connection (socketserver's `handle`).
    fn handle(&self, conn: &mut Conn) -> io::Result<()>;

    /// Cleans up after `handle` (socketserver's `finish`).
    fn finish(&self, conn: &mut Conn) -> io::Result<()> {
        let _ = conn;
        Ok(())
    }
}

impl<F> Handler for F
where
    F: Fn(&mut Conn) -> io::Result<()> + Send + Sync + 'static,
{
    fn handle(&self, conn: &mut Conn) -> io::Result<()> {
        self(conn)
    }
}

/// Read buffer size of a [`Conn`].
const CONN_BUF: usize = 16 * 1024;

/// One accepted connection as a blocking handler sees it.
///
/// Reads go through a buffer (so [`read_line`](Conn::read_line) and plain reads
/// can be mixed); writes go straight to the socket. When the server has an idle
/// timeout, reads wait at most that long and then fail with
/// [`io::ErrorKind::TimedOut`].
pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    peer: PeerAddr,
    local: PeerAddr,
    max_line: usize,
    shutdown: ShutdownHandle,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .field("max_line", &self.max_line)
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub(crate) fn new(
        stream: Stream,
        peer: PeerAddr,
        local: PeerAddr,
        max_line: usize,
        shutdown: ShutdownHandle,
    ) -> Conn {
        Conn {
            stream,
            buf: vec![0u8; CONN_BUF],
            start: 0,
            end: 0,
            peer,
            local,
            max_line,
            shutdown,
        }
    }

    /// Reads one line, up to and including `\n`, appending it to `line` (like
    /// `rfile.readline()`). Returns the bytes appended; 0 at end-of-file. The
    /// last line may lack its `\n`.
    ///
    /// # Errors
    ///
    /// A line longer than the server's max line fails with
    /// [`io::ErrorKind::InvalidData`] (the line's bytes read so far are dropped);
    /// a silent peer past the idle timeout fails with [`io::ErrorKind::TimedOut`].
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(i) = memchr::memchr(b'\n', avail) {
                if taken + i + 1 > self.max_line {
                    return Err(self.too_long(line, taken));
                }
                line.extend_from_slice(&avail[..=i]);
                self.start += i + 1;
                return Ok(taken + i + 1);
            }
            if taken + avail.len() > self.max_line {
                return Err(self.too_long(line, taken));
            }
            line.extend_from_slice(avail);
            taken += avail.len();
            self.start = self.end;
            if self.fill()? == 0 {
                return Ok(taken);
            }
        }
    }

    fn too_long(&mut self, line: &mut Vec<u8>, taken: usize) -> io::Error {
        line.truncate(line.len() - taken);
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line longer than {} bytes", self.max_line),
        )
    }

    /// Refills the empty buffer with one read; returns the bytes read.
    /// Puts bytes already read from the peer (what followed a PROXY header) in
    /// front of whatever the socket delivers next.
    pub(crate) fn preload(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.buf.len() < data.len() {
            self.buf.resize(data.len(), 0);
        }
        self.buf[..data.len()].copy_from_slice(data);
        self.start = 0;
        self.end = data.len();
    }

    fn fill(&mut self) -> io::Result<usize> {
        self.start = 0;
        self.end = 0;
        let n = read_timed(&self.stream, &mut self.buf)?;
        self.end = n;
        Ok(n)
    }

    /// Sends end-of-file to the peer (half-close); reading goes on.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// The peer's address (socketserver's `client_address`).
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }

    /// The local address the connection arrived on.
    pub fn local_addr(&self) -> &PeerAddr {
        &self.local
    }

    /// The longest line [`read_line`](Conn::read_line) accepts.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Sets how long a read may wait (`None`: forever); replaces the idle timeout.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(t)
    }

    /// Sets how long a write may wait (`None`: forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_write_timeout(t)
    }

    /// The socket itself (socketserver's `request`).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// A handle that stops the server (safe to call from the handler).
    pub fn shutdown_handle(&self) -> &ShutdownHandle {
        &self.shutdown
    }
}

/// Reads once, reporting an expired read timeout as [`io::ErrorKind::TimedOut`].
fn read_timed(stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match (&*stream).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
            }
            r => return r,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if out.len() >= self.buf.len() {
                return read_timed(&self.stream, out);
            }
            if self.fill()? == 0 {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

impl Write for Conn {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        (&self.stream).write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Handles datagrams, one at a time per socket (socketserver's UDP handlers).
///
/// Any `Fn(&mut DatagramRequest<'_>) -> io::Result<()>` closure is a
/// DatagramHandler. A [`DatagramService`] becomes one with
/// [`ServiceHandler`].
///
/// ```
/// use std::time::Duration;
/// use netkit::net::Datagram;
/// use netkit::server::{DatagramRequest, Server};
///
/// // The seed's UDP server: every datagram is answered with "Hi!".
/// let server = Server::builder()
///     .listen("udp://127.0.0.1:0".parse()?)
///     .datagram_handler(|req: &mut DatagramRequest<'_>| req.reply(b"Hi!"))
///     .build()?;
/// let addr = server.local_addresses()[0].clone();
/// let stop = server.shutdown_handle();
/// let t = std::thread::spawn(move || server.serve_forever());
///
/// let client = Datagram::connect_to(&addr)?;
/// client.set_read_timeout(Some(Duration::from_secs(5)))?;
/// client.send(b"Hello World")?;
/// let mut buf = [0u8; 16];
/// let r = client.recv(&mut buf)?;
/// assert_eq!(&buf[..r.len], b"Hi!");
/// stop.shutdown();
/// t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait DatagramHandler: Send + Sync + 'static {
    /// Handles one datagram; reply with [`DatagramRequest::reply`].
    fn handle(&self, req: &mut DatagramRequest<'_>) -> io::Result<()>;
}

impl<F> DatagramHandler for F
where
    F: Fn(&mut DatagramRequest<'_>) -> io::Result<()> + Send + Sync + 'static,
{
    fn handle(&self, req: &mut DatagramRequest<'_>) -> io::Result<()> {
        self(req)
    }
}

/// One received datagram and the way to answer it.
pub struct DatagramRequest<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) peer: &'a PeerAddr,
    pub(crate) socket: &'a Datagram,
    pub(crate) truncated: bool,
}

impl fmt::Debug for DatagramRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramRequest")
            .field("len", &self.data.len())
            .field("peer", &self.peer)
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl DatagramRequest<'_> {
    /// The datagram's bytes.
    pub fn data(&self) -> &[u8] {
        self.data
    }

    /// Who sent it.
    pub fn peer(&self) -> &PeerAddr {
        self.peer
    }

    /// Whether the datagram was longer than the receive buffer and was cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Sends `data` back to the sender (`sendto(data, addr)`).
    pub fn reply(&self, data: &[u8]) -> io::Result<()> {
        self.socket.send_to(data, self.peer).map(|_| ())
    }

    /// The socket the datagram arrived on.
    pub fn socket(&self) -> &Datagram {
        self.socket
    }
}

/// Serves a [`DatagramService`] as a [`DatagramHandler`]: each reply it returns
/// is sent back to the sender.
#[derive(Clone)]
pub struct ServiceHandler(pub Arc<dyn DatagramService>);

impl fmt::Debug for ServiceHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceHandler(..)")
    }
}

impl DatagramHandler for ServiceHandler {
    /// A truncated datagram is dropped (the runner has logged it): a service
    /// answers only what it received whole.
    fn handle(&self, req: &mut DatagramRequest<'_>) -> io::Result<()> {
        if req.truncated() {
            return Ok(());
        }
        match self.0.datagram_received(req.data(), req.peer()) {
            Some(reply) => req.reply(&reply),
            None => Ok(()),
        }
    }
}
