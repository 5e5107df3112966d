//! The address of one end of a connection, as services and logs see it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The address of one end of a stream or datagram socket.
///
/// `Display` prints `127.0.0.1:5000`, `[::1]:5000`, a Unix socket's path, or
/// `unix:(unnamed)` for an unnamed Unix socket (the usual client end).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix-domain socket; `None` when the socket has no name.
    Unix(Option<PathBuf>),
}

impl PeerAddr {
    /// The IP address and port, if this is an Internet address.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Inet(a) => Some(*a),
            PeerAddr::Unix(_) => None,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(a) => write!(f, "{a}"),
            PeerAddr::Unix(Some(p)) => write!(f, "{}", p.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        PeerAddr::Inet(a)
    }
}
