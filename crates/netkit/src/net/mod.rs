//! Sockets done safely: addresses, listeners, connecting, streams and datagrams.
//!
//! This is the seed's `socket` module with the sharp edges filed off, on
//! [`socket2`]: one address grammar ([`Address`]) for TCP, UDP and Unix
//! sockets; listeners with server defaults ([`Listener`]); connecting with
//! Happy Eyeballs under one deadline ([`connect`]); one [`Stream`] type for TCP
//! and Unix connections with half-close, `send_all` and `sendfile`; and
//! [`Datagram`] sockets that report truncation. Every descriptor is
//! close-on-exec, and writes never raise `SIGPIPE`.
//!
//! Out of scope: event loops (an event loop wraps these sockets with `mio`
//! through `into_std`), framing of the byte stream, and anything above it.
//!
//! ```
//! use std::io::Read;
//! use std::time::Duration;
//! use netkit::net::{self, ListenOptions, Listener};
//!
//! let listener = Listener::bind(&"127.0.0.1:0".parse()?, &ListenOptions::default())?;
//! let addr = listener.local_address();
//! let echo = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (conn, _peer) = listener.accept()?;
//!     let mut buf = [0; 64];
//!     loop {
//!         let n = (&conn).read(&mut buf)?;
//!         if n == 0 {
//!             return Ok(());
//!         }
//!         conn.send_all(&buf[..n])?;
//!     }
//! });
//! let client = net::connect(&addr, Duration::from_secs(5))?;
//! client.send_all(b"hello")?;
//! client.shutdown(std::net::Shutdown::Write)?;
//! let mut back = Vec::new();
//! (&client).read_to_end(&mut back)?;
//! assert_eq!(back, b"hello");
//! echo.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod addr;
mod connect;
mod datagram;
mod listener;
mod peer;
mod queue;
mod sockfile;
mod stream;
mod sys;
mod text;
pub mod units;

use std::io;
use std::path::PathBuf;

use socket2::{Domain, SockAddr, Socket, Type};

pub use addr::{AddrError, Address, HostPort, UNIX_PATH_MAX};
pub use connect::{connect, connect_addrs, CONNECTION_ATTEMPT_DELAY};
pub use datagram::{
    max_datagram_size, recv_datagram, Datagram, Recv, StdDatagram, TruncationLog, UDP_MAX,
};
pub use listener::{listen_fds, ListenOptions, Listener, StdListener, DEFAULT_BACKLOG};
pub use peer::PeerAddr;
pub use queue::{Flushed, WriteQueue};
pub use stream::{StdStream, Stream};
pub use text::{escape_log, escape_log_bytes};

/// A connected pair of Unix stream sockets (`socketpair(2)`, close-on-exec),
/// for tests and plumbing inside one process.
///
/// ```
/// use std::io::Read;
///
/// let (a, b) = netkit::net::socketpair()?;
/// a.send_all(b"x")?;
/// let mut one = [0];
/// b.read_exact(&mut one)?;
/// assert_eq!(&one, b"x");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn socketpair() -> io::Result<(Stream, Stream)> {
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
    Ok((
        Stream::from_socket(a, stream::Kind::Unix),
        Stream::from_socket(b, stream::Kind::Unix),
    ))
}

/// The `PeerAddr` for a socket address: IP and port, or a Unix path (none for
/// unnamed and abstract sockets).
fn peer_of(addr: &SockAddr) -> PeerAddr {
    match addr.as_socket() {
        Some(sa) => PeerAddr::Inet(sa),
        None => PeerAddr::Unix(addr.as_pathname().map(PathBuf::from)),
    }
}
