//! The sockets a loop listens on: stream listeners (TCP, Unix) and datagram
//! sockets (UDP, Unix datagram), behind one type each. Accepted connections are
//! `conn::Sock`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use mio::net::{TcpListener, UdpSocket, UnixDatagram, UnixListener};

use super::conn::{unix_peer, Sock};
use crate::protocol::PeerAddr;

/// A listening stream socket.
pub(crate) enum ListenSock {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ListenSock {
    pub(crate) fn accept(&self) -> io::Result<(Sock, PeerAddr)> {
        match self {
            ListenSock::Tcp(l) => l.accept().map(|(s, a)| {
                // Small writes go out at once: write-through sends each `write`.
                let _ = s.set_nodelay(true);
                (Sock::Tcp(s), PeerAddr::Inet(a))
            }),
            ListenSock::Unix(l) => l.accept().map(|(s, a)| (Sock::Unix(s), unix_peer(&a))),
        }
    }

    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            ListenSock::Tcp(l) => l,
            ListenSock::Unix(l) => l,
        }
    }
}

/// A datagram socket the loop serves.
pub(crate) enum DgramSock {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl DgramSock {
    pub(crate) fn udp(s: std::net::UdpSocket) -> io::Result<DgramSock> {
        s.set_nonblocking(true)?;
        Ok(DgramSock::Udp(UdpSocket::from_std(s)))
    }

    pub(crate) fn unix(s: std::os::unix::net::UnixDatagram) -> io::Result<DgramSock> {
        s.set_nonblocking(true)?;
        Ok(DgramSock::Unix(UnixDatagram::from_std(s)))
    }

    pub(crate) fn is_unix(&self) -> bool {
        matches!(self, DgramSock::Unix(_))
    }

    /// The bound address, for log lines.
    pub(crate) fn local_name(&self) -> String {
        match self {
            DgramSock::Udp(s) => s
                .local_addr()
                .map_or_else(|_| "udp".to_string(), |a| format!("udp://{a}")),
            DgramSock::Unix(s) => s
                .local_addr()
                .ok()
                .and_then(|a| {
                    a.as_pathname()
                        .map(|p| format!("unix-dgram://{}", p.display()))
                })
                .unwrap_or_else(|| "unix-dgram".to_string()),
        }
    }

    pub(crate) fn send_to(&self, data: &[u8], peer: &PeerAddr) -> io::Result<usize> {
        match (self, peer) {
            (DgramSock::Udp(s), PeerAddr::Inet(a)) => s.send_to(data, *a),
            (DgramSock::Unix(s), PeerAddr::Unix(Some(p))) => s.send_to(data, p),
            _ => Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "the peer has no address to answer",
            )),
        }
    }

    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            DgramSock::Udp(s) => s,
            DgramSock::Unix(s) => s,
        }
    }
}

impl AsFd for DgramSock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DgramSock::Udp(s) => s.as_fd(),
            DgramSock::Unix(s) => s.as_fd(),
        }
    }
}
