//! Making outgoing stream connections: Happy Eyeballs v2 (RFC 8305) over
//! every resolved address under one total deadline, and Unix sockets.
//!
//! Attempts are non-blocking sockets watched together with `poll(2)` in the
//! calling thread; no threads are started. Out of scope: name resolution
//! itself (`getaddrinfo`, which is not bounded by the deadline) and datagram
//! sockets.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use super::addr::Address;
use super::sockfile::unix_sockaddr;
use super::stream::{Kind, Stream};
use super::sys::{self, PollFd};

/// RFC 8305's "Connection Attempt Delay": how long one attempt runs alone
/// before the next address is tried alongside it.
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to a TCP or Unix stream address within `timeout` in total.
///
/// A TCP host name is resolved through `getaddrinfo(3)` and its addresses are
/// raced Happy-Eyeballs style (see [`connect_addrs`]). The returned stream is
/// blocking, with no read or write timeout.
///
/// ```
/// use std::time::Duration;
/// use netkit::net::{self, ListenOptions, Listener};
///
/// let listener = Listener::bind(&"127.0.0.1:0".parse()?, &ListenOptions::default())?;
/// let stream = net::connect(&listener.local_address(), Duration::from_secs(5))?;
/// assert!(stream.peer_addr()?.inet().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// `InvalidInput` for a datagram address or a zero timeout; `TimedOut` when
/// the deadline passes; otherwise the kind of the attempts' error
/// (`ConnectionRefused` when every address refused). The message names every
/// address tried and why each failed.
pub fn connect(addr: &Address, timeout: Duration) -> io::Result<Stream> {
    check_timeout(timeout)?;
    match addr {
        Address::Tcp(hp) => {
            let deadline = Instant::now() + timeout;
            let addrs = hp.resolve()?;
            race(&addrs, deadline, &addr.to_string())
        }
        Address::Unix(path) => connect_unix(path, Instant::now() + timeout),
        Address::Udp(_) | Address::UnixDgram(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot connect a stream to {addr}: it is a datagram address (use Datagram::connect_to)"),
        )),
    }
}

/// Connects to the first of `addrs` to answer, within `timeout` in total,
/// following RFC 8305: the addresses are reordered to alternate families
/// (starting with the first address's family), a new attempt starts every
/// [`CONNECTION_ATTEMPT_DELAY`] or as soon as the previous one fails, and
/// the first to connect wins while the others are closed.
///
/// # Errors
///
/// As for [`connect`]; `InvalidInput` for an empty list.
pub fn connect_addrs(addrs: &[SocketAddr], timeout: Duration) -> io::Result<Stream> {
    check_timeout(timeout)?;
    let name = match addrs {
        [one] => one.to_string(),
        _ => format!("{} addresses", addrs.len()),
    };
    race(addrs, Instant::now() + timeout, &name)
}

fn check_timeout(timeout: Duration) -> io::Result<()> {
    if timeout.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "connect timeout must be greater than zero",
        ));
    }
    Ok(())
}

/// Interleaves address families, keeping each family's order and starting
/// with the family of the first address (RFC 8305 section 4).
fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut a, mut b): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
        .iter()
        .copied()
        .partition(|x| x.is_ipv6() == first.is_ipv6());
    a.reverse();
    b.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !a.is_empty() || !b.is_empty() {
        out.extend(a.pop());
        out.extend(b.pop());
    }
    out
}

/// One connection attempt in flight.
struct Attempt {
    addr: SocketAddr,
    sock: Socket,
}

/// The outcome of starting an attempt.
enum Started {
    Connected(Socket),
    InFlight(Attempt),
    Failed(io::Error),
}

fn start(addr: SocketAddr) -> Started {
    let sock = match Socket::new(Domain::for_address(addr), Type::STREAM, None) {
        Ok(s) => s,
        Err(e) => return Started::Failed(e),
    };
    if let Err(e) = sock.set_nonblocking(true) {
        return Started::Failed(e);
    }
    match sock.connect(&SockAddr::from(addr)) {
        Ok(()) => Started::Connected(sock),
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock
                || e.kind() == io::ErrorKind::Interrupted =>
        {
            Started::InFlight(Attempt { addr, sock })
        }
        Err(e) => Started::Failed(e),
    }
}

/// Checks a socket that `poll` reported ready: connected, or why not.
fn finish(sock: &Socket) -> io::Result<()> {
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    sock.peer_addr().map(|_| ())
}

fn done(sock: Socket) -> io::Result<Stream> {
    sock.set_nonblocking(false)?;
    Ok(Stream::from_socket(sock, Kind::Tcp))
}

fn race(addrs: &[SocketAddr], deadline: Instant, name: &str) -> io::Result<Stream> {
    let order = interleave(addrs);
    if order.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot connect to {name}: no addresses to try"),
        ));
    }
    let mut pending = order.into_iter();
    let mut inflight: Vec<Attempt> = Vec::new();
    let mut failed: Vec<(SocketAddr, io::Error)> = Vec::new();
    let mut next_start = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Start the next attempt when its stagger has elapsed or nothing is in flight.
        if now >= next_start || inflight.is_empty() {
            if let Some(addr) = pending.next() {
                match start(addr) {
                    Started::Connected(sock) => return done(sock),
                    Started::InFlight(a) => {
                        inflight.push(a);
                        next_start = now + CONNECTION_ATTEMPT_DELAY;
                    }
                    Started::Failed(e) => {
                        failed.push((addr, e));
                        next_start = now;
                    }
                }
                continue;
            }
            if inflight.is_empty() {
                return Err(failure(name, &failed, &[], &[]));
            }
        }
        let wake = if pending.len() > 0 {
            next_start.min(deadline)
        } else {
            deadline
        };
        let mut fds: Vec<PollFd> = inflight
            .iter()
            .map(|a| PollFd::writable(std::os::fd::AsFd::as_fd(&a.sock)))
            .collect();
        match sys::poll_writable(&mut fds, wake.saturating_duration_since(now)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let mut still = Vec::with_capacity(inflight.len());
        let mut any_failed = false;
        for (a, p) in inflight.into_iter().zip(&fds) {
            if !p.ready() {
                still.push(a);
                continue;
            }
            match finish(&a.sock) {
                Ok(()) => return done(a.sock),
                Err(e) => {
                    failed.push((a.addr, e));
                    any_failed = true;
                }
            }
        }
        inflight = still;
        if any_failed {
            // A failure starts the next attempt at once (RFC 8305 section 5).
            next_start = Instant::now();
        }
    }
    let timed_out: Vec<SocketAddr> = inflight.iter().map(|a| a.addr).collect();
    let not_tried: Vec<SocketAddr> = pending.collect();
    Err(failure(name, &failed, &timed_out, &not_tried))
}

/// The error for a connect that found no working address: the message names
/// every address and its fate; the kind is `TimedOut` if the deadline
/// passed, else the last failure's kind.
fn failure(
    name: &str,
    failed: &[(SocketAddr, io::Error)],
    timed_out: &[SocketAddr],
    not_tried: &[SocketAddr],
) -> io::Error {
    let mut msg = format!("cannot connect to {name}:");
    let mut sep = " ";
    // A name that is the one address tried (an IP literal) is not said twice.
    let named = failed.len() + timed_out.len() + not_tried.len() == 1;
    for (addr, e) in failed {
        if named && addr.to_string() == name {
            let _ = write!(msg, "{sep}{e}");
            continue;
        }
        let _ = write!(msg, "{sep}{addr}: {e}");
        sep = "; ";
    }
    for addr in timed_out {
        let _ = write!(msg, "{sep}{addr}: timed out");
        sep = "; ";
    }
    for addr in not_tried {
        let _ = write!(msg, "{sep}{addr}: not tried before the deadline");
        sep = "; ";
    }
    let deadline_passed = !timed_out.is_empty() || !not_tried.is_empty();
    let kind = match failed.last() {
        Some((_, e)) if !deadline_passed => e.kind(),
        _ => {
            if !deadline_passed {
                msg.push_str(" timed out");
            }
            io::ErrorKind::TimedOut
        }
    };
    io::Error::new(kind, msg)
}

/// Connects a Unix stream socket, waiting for a full backlog to drain until
/// `deadline`.
fn connect_unix(path: &Path, deadline: Instant) -> io::Result<Stream> {
    let addr = unix_sockaddr(path)?;
    let fail = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot connect to unix://{}: {e}", path.display()),
        )
    };
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    loop {
        match sock.connect(&addr) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                let mut fds = [PollFd::writable(std::os::fd::AsFd::as_fd(&sock))];
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || sys::poll_writable(&mut fds, left)? == 0 {
                    return Err(fail(io::Error::from(io::ErrorKind::TimedOut)));
                }
                finish(&sock).map_err(fail)?;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The listener's backlog is full: wait a little and retry.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(fail(io::Error::from(io::ErrorKind::TimedOut)));
                }
                std::thread::sleep(left.min(Duration::from_millis(10)));
            }
            Err(e) => return Err(fail(e)),
        }
    }
    sock.set_nonblocking(false)?;
    Ok(Stream::from_socket(sock, Kind::Unix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_alternates_families_from_the_first() {
        let v6a: SocketAddr = "[::1]:1".parse().unwrap();
        let v6b: SocketAddr = "[::2]:1".parse().unwrap();
        let v4a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let v4b: SocketAddr = "127.0.0.2:1".parse().unwrap();
        assert_eq!(interleave(&[v6a, v6b, v4a, v4b]), vec![v6a, v4a, v6b, v4b]);
        assert_eq!(interleave(&[v4a, v4b, v6a]), vec![v4a, v6a, v4b]);
        assert_eq!(interleave(&[]), Vec::<SocketAddr>::new());
    }

    #[test]
    fn failure_message_lists_every_address() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "[::1]:1".parse().unwrap();
        let e = failure(
            "x",
            &[
                (a, io::Error::from(io::ErrorKind::ConnectionRefused)),
                (b, io::Error::from(io::ErrorKind::ConnectionRefused)),
            ],
            &[],
            &[],
        );
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let m = e.to_string();
        assert!(m.contains("127.0.0.1:1") && m.contains("[::1]:1"), "{m}");
        let t = failure(
            "x",
            &[(a, io::Error::from(io::ErrorKind::ConnectionRefused))],
            &[b],
            &[],
        );
        assert_eq!(t.kind(), io::ErrorKind::TimedOut);
        assert!(t.to_string().contains("[::1]:1: timed out"));
        let n = failure("x", &[], &[], &[a]);
        assert_eq!(n.kind(), io::ErrorKind::TimedOut);
        assert!(n.to_string().contains("not tried"));
    }
}
