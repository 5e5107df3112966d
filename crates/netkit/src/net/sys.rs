//! The platform corner of `net`: every `unsafe` block and every direct `libc`
//! call of the module lives here, each with the reason it is sound.
//!
//! In scope: `poll(2)` on a handful of descriptors, `sendfile(2)`, `recvmsg(2)`
//! into an initialised buffer with truncation reported, and the `send(2)` flag
//! that keeps a closed peer from raising `SIGPIPE`. Out of scope: socket
//! options and everything else `socket2` already wraps safely.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{MaybeUninitSlice, SockAddr, Socket};

/// Flags for `send(2)` on a stream socket: never raise `SIGPIPE`; a closed
/// peer is reported as `EPIPE` (`ErrorKind::BrokenPipe`) instead.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
/// Flags for `send(2)`; this platform has no `MSG_NOSIGNAL`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const SEND_FLAGS: libc::c_int = 0;

/// Readiness asked of and reported by [`poll`] for one descriptor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollFd {
    fd: libc::c_int,
    revents: libc::c_short,
}

impl PollFd {
    /// Watch `fd` for writability (a non-blocking `connect` finishing).
    pub(crate) fn writable(fd: BorrowedFd<'_>) -> PollFd {
        PollFd {
            fd: fd.as_raw_fd(),
            revents: 0,
        }
    }

    /// True when the descriptor became writable, failed or hung up.
    pub(crate) fn ready(&self) -> bool {
        self.revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
    }
}

/// `poll(2)` for writability on `fds`, waiting at most `timeout` (rounded up to
/// whole milliseconds so a short wait never becomes a busy loop). Returns the
/// number of ready descriptors; `EINTR` is returned to the caller, who
/// recomputes its deadline.
pub(crate) fn poll_writable(fds: &mut [PollFd], timeout: Duration) -> io::Result<usize> {
    let mut raw: Vec<libc::pollfd> = fds
        .iter()
        .map(|p| libc::pollfd {
            fd: p.fd,
            events: libc::POLLOUT,
            revents: 0,
        })
        .collect();
    let ms = timeout
        .as_nanos()
        .div_ceil(1_000_000)
        .min(libc::c_int::MAX as u128) as libc::c_int;
    // SAFETY: `raw` is a live, exclusively borrowed array of `raw.len()`
    // initialised `pollfd`s; poll writes only their `revents` fields.
    let n = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    for (p, r) in fds.iter_mut().zip(&raw) {
        p.revents = r.revents;
    }
    Ok(n as usize)
}

/// `recvmsg(2)` into `buf`: returns the bytes written to `buf`, whether the
/// datagram was longer than `buf` (`MSG_TRUNC` in `msg_flags`), and the sender.
pub(crate) fn recv_from_trunc(
    sock: &Socket,
    buf: &mut [u8],
) -> io::Result<(usize, bool, SockAddr)> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and
    // `recvmsg` only ever writes initialised bytes into the buffer, so `buf`
    // stays fully initialised after the call.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let mut bufs = [MaybeUninitSlice::new(uninit)];
    let (n, flags, addr) = sock.recv_from_vectored(&mut bufs)?;
    Ok((n, flags.is_truncated(), addr))
}

/// `sendfile(2)`: copies up to `count` bytes of `file` starting at `*offset`
/// to the socket `out`, advancing `*offset` by the bytes sent. `Ok(0)` means
/// end of file.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn sendfile(
    out: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut i64,
    count: usize,
) -> io::Result<usize> {
    let mut off: libc::off_t = *offset as libc::off_t;
    // SAFETY: both descriptors are borrowed and therefore open for the whole
    // call; `off` is a live local the kernel reads and updates.
    let n = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off as i64;
    Ok(n as usize)
}

/// Takes ownership of the inherited descriptors `first .. first + count`
/// (socket activation). Only the first call in a process takes them; later
/// calls return `None`.
///
/// # Errors
///
/// `InvalidInput` when one of the descriptors is not open.
pub(crate) fn take_listen_fds(first: RawFd, count: RawFd) -> io::Result<Option<Vec<OwnedFd>>> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for fd in first..first.saturating_add(count) {
        // SAFETY: F_GETFD only reads the descriptor's flags; it is harmless on
        // any integer and fails with EBADF when `fd` is not open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("inherited descriptor {fd} (from LISTEN_FDS) is not open"),
            ));
        }
        // SAFETY: the socket-activation protocol hands descriptors 3.. to this
        // process for it to own; the `TAKEN` flag makes this the only place
        // they are ever wrapped, so each gets exactly one owner.
        out.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(Some(out))
}

/// The system's cap on a listen backlog (`/proc/sys/net/core/somaxconn`), if
/// it can be read.
pub(crate) fn somaxconn() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}
