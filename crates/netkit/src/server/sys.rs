//! The system calls the blocking runner needs that std does not wrap: `poll(2)`.
//!
//! Everything here is a thin, safe wrapper around one call; the `unsafe` of the
//! server module lives here and in [`fork`](super::fork). Out of scope: sockets
//! themselves (that is `net`).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Readable (`POLLIN`).
pub(crate) const READ: i16 = libc::POLLIN;
/// Writable (`POLLOUT`).
pub(crate) const WRITE: i16 = libc::POLLOUT;
/// Hung up or failed (`POLLHUP | POLLERR | POLLNVAL`); always reported.
pub(crate) const HANGUP: i16 = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;

/// One entry of a `poll(2)` set.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
pub(crate) struct PollFd(libc::pollfd);

impl PollFd {
    /// Watches `fd` for `events` (a mix of [`READ`] and [`WRITE`]).
    pub(crate) fn new(fd: RawFd, events: i16) -> PollFd {
        PollFd(libc::pollfd {
            fd,
            events,
            revents: 0,
        })
    }

    /// The events that happened (after [`poll`]).
    pub(crate) fn revents(&self) -> i16 {
        self.0.revents
    }

    /// Whether any of `mask` happened.
    pub(crate) fn has(&self, mask: i16) -> bool {
        self.0.revents & mask != 0
    }
}

/// Waits with `poll(2)` until one of `fds` is ready or `deadline` passes (`None`:
/// forever). Returns the number of ready entries; `Interrupted` is retried.
pub(crate) fn poll(fds: &mut [PollFd], deadline: Option<Instant>) -> io::Result<usize> {
    loop {
        let timeout = match deadline {
            None => -1,
            Some(d) => millis_until(d),
        };
        // SAFETY: `PollFd` is `repr(transparent)` over `libc::pollfd`, so the
        // slice is a valid array of `fds.len()` pollfd structs that poll may
        // write `revents` into; pointer and length come from the same live,
        // exclusively borrowed slice.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr().cast::<libc::pollfd>(),
                fds.len() as libc::nfds_t,
                timeout,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Milliseconds from now until `deadline`, rounded up so a wakeup is never early.
fn millis_until(deadline: Instant) -> i32 {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return 0;
    }
    let ms = left.as_micros().div_ceil(1000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// The earliest of some optional deadlines.
pub(crate) fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

/// `Duration` added to now, saturating instead of panicking on overflow.
pub(crate) fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn poll_sees_readable_and_times_out() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut fds = [PollFd::new(b.as_raw_fd(), READ)];
        let n = poll(&mut fds, Some(Instant::now())).unwrap();
        assert_eq!(n, 0);
        a.write_all(b"x").unwrap();
        let n = poll(&mut fds, Some(after(Duration::from_secs(5)))).unwrap();
        assert_eq!(n, 1);
        assert!(fds[0].has(READ));
    }
}
