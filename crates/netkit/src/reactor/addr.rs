//! Where the reactor listens, serves datagrams and connects to: [`ListenOn`],
//! [`DatagramOn`] and [`ConnectTo`], each built from `netkit::net` types or the
//! standard library's. Binding is `mod.rs`'s job.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};

use crate::net::{Address, Listener};

#[cfg(doc)]
use super::Handle;

/// Where to listen for stream connections.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenOn {
    /// Bind this TCP address (once per loop, with `SO_REUSEPORT`).
    Tcp(SocketAddr),
    /// Bind a Unix socket at this path (removed again when the reactor stops).
    Unix(PathBuf),
    /// Serve a TCP listener bound by the caller (shared by all loops).
    TcpListener(std::net::TcpListener),
    /// Serve a Unix listener bound by the caller (shared by all loops).
    UnixListener(UnixListener),
    /// Bind a `netkit::net` stream address (TCP: the first address the host
    /// resolves to, once per loop with `SO_REUSEPORT`).
    Address(Address),
    /// Serve a `netkit::net` listener (bound by the caller or inherited through
    /// socket activation), shared by all loops.
    Listener(Listener),
}

impl From<Address> for ListenOn {
    fn from(a: Address) -> Self {
        ListenOn::Address(a)
    }
}
impl From<&Address> for ListenOn {
    fn from(a: &Address) -> Self {
        ListenOn::Address(a.clone())
    }
}
impl From<Listener> for ListenOn {
    fn from(l: Listener) -> Self {
        ListenOn::Listener(l)
    }
}

/// The first address `hp` resolves to.
pub(crate) fn resolve_one(hp: &crate::net::HostPort) -> io::Result<SocketAddr> {
    hp.resolve()?.into_iter().next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{}:{} resolves to no address", hp.host, hp.port),
        )
    })
}

impl From<SocketAddr> for ListenOn {
    fn from(a: SocketAddr) -> Self {
        ListenOn::Tcp(a)
    }
}
impl From<PathBuf> for ListenOn {
    fn from(p: PathBuf) -> Self {
        ListenOn::Unix(p)
    }
}
impl From<&Path> for ListenOn {
    fn from(p: &Path) -> Self {
        ListenOn::Unix(p.to_path_buf())
    }
}
impl From<std::net::TcpListener> for ListenOn {
    fn from(l: std::net::TcpListener) -> Self {
        ListenOn::TcpListener(l)
    }
}
impl From<UnixListener> for ListenOn {
    fn from(l: UnixListener) -> Self {
        ListenOn::UnixListener(l)
    }
}

/// Where to serve datagrams.
#[derive(Debug)]
#[non_exhaustive]
pub enum DatagramOn {
    /// Bind this UDP address.
    Udp(SocketAddr),
    /// Bind a Unix datagram socket at this path (removed when the reactor stops).
    Unix(PathBuf),
    /// Serve a UDP socket bound by the caller.
    UdpSocket(std::net::UdpSocket),
    /// Serve a Unix datagram socket bound by the caller.
    UnixSocket(UnixDatagram),
    /// Bind a `netkit::net` datagram address (`udp://`, `unix-dgram://`).
    Address(Address),
    /// Serve a `netkit::net` datagram socket.
    Datagram(crate::net::Datagram),
}

impl From<Address> for DatagramOn {
    fn from(a: Address) -> Self {
        DatagramOn::Address(a)
    }
}
impl From<&Address> for DatagramOn {
    fn from(a: &Address) -> Self {
        DatagramOn::Address(a.clone())
    }
}
impl From<crate::net::Datagram> for DatagramOn {
    fn from(d: crate::net::Datagram) -> Self {
        DatagramOn::Datagram(d)
    }
}

impl From<SocketAddr> for DatagramOn {
    fn from(a: SocketAddr) -> Self {
        DatagramOn::Udp(a)
    }
}
impl From<PathBuf> for DatagramOn {
    fn from(p: PathBuf) -> Self {
        DatagramOn::Unix(p)
    }
}
impl From<&Path> for DatagramOn {
    fn from(p: &Path) -> Self {
        DatagramOn::Unix(p.to_path_buf())
    }
}
impl From<std::net::UdpSocket> for DatagramOn {
    fn from(s: std::net::UdpSocket) -> Self {
        DatagramOn::UdpSocket(s)
    }
}
impl From<UnixDatagram> for DatagramOn {
    fn from(s: UnixDatagram) -> Self {
        DatagramOn::UnixSocket(s)
    }
}

/// Where a client connection goes ([`Handle::connect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectTo {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix stream socket.
    Unix(PathBuf),
}

impl ConnectTo {
    /// The target for a `netkit::net` stream address (TCP: its first resolved
    /// address).
    ///
    /// # Errors
    ///
    /// Resolution failures; `InvalidInput` for a datagram address.
    pub fn from_address(a: &Address) -> io::Result<ConnectTo> {
        match a {
            Address::Tcp(hp) => Ok(ConnectTo::Tcp(resolve_one(hp)?)),
            Address::Unix(p) => Ok(ConnectTo::Unix(p.clone())),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{a} is not a stream address"),
            )),
        }
    }
}

impl From<SocketAddr> for ConnectTo {
    fn from(a: SocketAddr) -> Self {
        ConnectTo::Tcp(a)
    }
}
impl From<PathBuf> for ConnectTo {
    fn from(p: PathBuf) -> Self {
        ConnectTo::Unix(p)
    }
}
impl From<&Path> for ConnectTo {
    fn from(p: &Path) -> Self {
        ConnectTo::Unix(p.to_path_buf())
    }
}
