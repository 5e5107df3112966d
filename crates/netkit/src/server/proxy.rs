//! Reading the PROXY protocol header a load balancer sends first on a listener
//! that was told to expect one ([`ServerBuilder::proxy_protocol`](super::ServerBuilder::proxy_protocol)).
//!
//! The header is read under a deadline ([`PROXY_HEADER_TIMEOUT`], shortened to
//! the grace deadline when the server stops) with the bytes parsed by
//! [`frame::proxy`](crate::frame::proxy); whatever arrived after the header is
//! handed back, to be delivered to the connection's Protocol or handler as its
//! first data. Out of scope: the header format (that is `frame::proxy`) and what
//! happens to the addresses (the caller puts them in `ConnInfo`).

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::frame::proxy::{self, ProxyHeader};
use crate::net::Stream;

use super::shutdown::Lifecycle;
use super::sys::{self, PollFd};

/// How long a connection on a PROXY-protocol listener may take to send its header.
pub const PROXY_HEADER_TIMEOUT: Duration = proxy::HEADER_TIMEOUT;

/// Bytes read per call while looking for the header.
const CHUNK: usize = 4096;

/// Reads the PROXY header from `stream` (left non-blocking); returns it and the
/// bytes that followed it.
///
/// # Errors
///
/// `InvalidData` for a malformed header or a connection that does not start
/// with one, `TimedOut` when none arrived in time, `UnexpectedEof` when the
/// peer closed first, or the socket's error.
pub(super) fn read_header(
    stream: &Stream,
    timeout: Duration,
    life: &Lifecycle,
) -> io::Result<(ProxyHeader, Vec<u8>)> {
    stream.set_nonblocking(true)?;
    let mut deadline = sys::after(timeout);
    let mut watch_stop = true;
    let mut buf = Vec::new();
    let mut chunk = [0u8; CHUNK];
    loop {
        match proxy::parse(&buf) {
            Ok(Some(h)) => {
                let rest = buf.split_off(h.len.min(buf.len()));
                return Ok((h, rest));
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        let stop_fd = if watch_stop { life.stop_fd() } else { -1 };
        let mut fds = [
            PollFd::new(stream.as_raw_fd(), sys::READ),
            PollFd::new(stop_fd, sys::READ),
        ];
        if sys::poll(&mut fds, Some(deadline))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no PROXY header within {timeout:?}"),
            ));
        }
        if fds[1].has(sys::READ) {
            deadline = deadline.min(life.begin());
            watch_stop = false;
        }
        if fds[0].revents() == 0 {
            continue;
        }
        match (&*stream).read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the PROXY header was complete",
                ))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
