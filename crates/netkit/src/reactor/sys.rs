//! The reactor's platform corner: binding its listening sockets with the options
//! it needs (`SO_REUSEPORT`, backlog) and raising `RLIMIT_NOFILE`. Nothing here
//! knows about Protocols or loops.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

/// Binds a non-blocking TCP listener (`SO_REUSEADDR`, and `SO_REUSEPORT` when
/// `reuse_port`, so each loop can bind its own on the same port).
pub(crate) fn bind_tcp(
    addr: SocketAddr,
    backlog: i32,
    reuse_port: bool,
) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(backlog)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Binds a non-blocking Unix stream listener at `path` with `backlog`.
pub(crate) fn bind_unix(path: &Path, backlog: i32) -> io::Result<UnixListener> {
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    sock.bind(&SockAddr::unix(path)?)?;
    sock.listen(backlog)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so thousands of connections
/// need no `ulimit -n` by hand. Returns the soft limit now in force.
///
/// # Errors
///
/// Whatever `getrlimit`/`setrlimit` report.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `want` is a valid rlimit that setrlimit only reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_soft_limit_to_hard() {
        let n = raise_nofile_limit().unwrap();
        assert!(n >= 256);
        assert_eq!(raise_nofile_limit().unwrap(), n);
    }

    #[test]
    fn two_reuseport_listeners_share_a_port() {
        let a = bind_tcp("127.0.0.1:0".parse().unwrap(), 16, true).unwrap();
        let port = a.local_addr().unwrap();
        let b = bind_tcp(port, 16, true).unwrap();
        assert_eq!(b.local_addr().unwrap(), port);
    }
}
