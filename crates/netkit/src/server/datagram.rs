//! Datagram sockets: each is served on a thread of its own, one datagram at a
//! time (socketserver's `UDPServer`), until the server stops.
//!
//! Out of scope: stream connections.

use std::io;
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};

use crate::net::{max_datagram_size, Datagram, TruncationLog};

use super::conn::panic_message;
use super::shutdown::Lifecycle;
use super::{sys, DatagramHandler, DatagramRequest};

/// Serves one datagram socket until the server stops: each datagram goes to the
/// handler in turn (socketserver's `UDPServer`).
pub(super) fn serve_datagrams(
    sock: &Datagram,
    h: &dyn DatagramHandler,
    life: &Lifecycle,
    max: Option<usize>,
) {
    if let Err(e) = sock.set_nonblocking(true) {
        tracing::error!("cannot serve {}: {e}", sock.local_address());
        return;
    }
    let mut buf = vec![0u8; max.unwrap_or_else(|| max_datagram_size(sock.is_unix()))];
    let mut truncations = TruncationLog::default();
    loop {
        let mut fds = [
            sys::PollFd::new(life.stop_fd(), sys::READ),
            sys::PollFd::new(sock.as_raw_fd(), sys::READ),
        ];
        if let Err(e) = sys::poll(&mut fds, None) {
            tracing::error!("poll failed on {}: {e}", sock.local_address());
            return;
        }
        if fds[0].has(sys::READ) {
            life.begin();
            return;
        }
        for _ in 0..64 {
            match sock.recv_from(&mut buf) {
                Ok(r) => {
                    if r.truncated {
                        truncations.note(&sock.local_address(), &r.peer, r.len);
                    }
                    let data = buf.get(..r.len).unwrap_or(&[]);
                    let mut req = DatagramRequest {
                        data,
                        peer: &r.peer,
                        socket: sock,
                        truncated: r.truncated,
                    };
                    let res = panic::catch_unwind(AssertUnwindSafe(|| h.handle(&mut req)));
                    match res {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(peer = %r.peer, "datagram handler failed: {e}")
                        }
                        Err(p) => {
                            tracing::error!(peer = %r.peer, "datagram handler panicked: {}", panic_message(&p))
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors from an earlier reply (ECONNREFUSED) land here.
                    tracing::debug!("recv on {} failed: {e}", sock.local_address());
                    break;
                }
            }
        }
    }
}
