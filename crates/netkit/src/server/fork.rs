//! Process per connection (socketserver's `ForkingMixIn`): `fork(2)`, reaping and
//! the child's exit. All of the mode's `unsafe` lives here.
//!
//! The accept thread forks; the child serves exactly one connection and leaves
//! with `_exit(2)` (it never returns into the parent's code, never runs
//! destructors that belong to the parent such as removing a Unix socket file).
//! The parent closes its copy of the connection and remembers the child; children
//! are reaped with `waitpid(pid, WNOHANG)` for each known pid (never `waitpid(-1)`,
//! which could steal the exit status of a child some other code is waiting for),
//! each time SIGCHLD wakes the accept loop. Out of scope: what the child runs.

use std::collections::HashSet;
use std::io::{self, Write};

/// Which side of a `fork` this is.
#[derive(Debug)]
pub(crate) enum Forked {
    /// The new process.
    Child,
    /// The original process; the child's pid.
    Parent(libc::pid_t),
}

/// Forks the process.
///
/// Only the calling thread exists in the child: the child must do nothing that
/// waits for another thread (it serves one connection on this thread and calls
/// [`exit_child`]). The forking server's other threads (datagram loops) hold no
/// lock the child needs, except stderr's while they log an error, which is why
/// they log only on failures.
pub(crate) fn fork() -> io::Result<Forked> {
    // Output buffered in this process would otherwise be written twice.
    let _ = io::stdout().flush();
    // SAFETY: fork has no memory-safety preconditions. In the child only this
    // thread runs; the caller serves one connection on it and leaves with
    // `exit_child`, never returning into code that expects the other threads.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Closes descriptors the child inherited but must not keep (the listeners),
/// without dropping the objects that own them in the parent's code.
pub(crate) fn close_fds(fds: &[std::os::fd::RawFd]) {
    for &fd in fds {
        // SAFETY: called only in a forked child, on descriptors owned by
        // listeners that the child never uses again and never drops (it leaves
        // with `exit_child`), so no live owner reads or closes them afterwards.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Ends the child process at once with `code`, after flushing stdout.
pub(crate) fn exit_child(code: i32) -> ! {
    let _ = io::stdout().flush();
    // SAFETY: `_exit` ends the process without running atexit handlers or
    // destructors, which belong to the parent; it is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// The children of a forking server.
#[derive(Debug, Default)]
pub(crate) struct Children {
    pids: HashSet<libc::pid_t>,
}

impl Children {
    /// Remembers a new child.
    pub(crate) fn add(&mut self, pid: libc::pid_t) {
        self.pids.insert(pid);
    }

    /// Children still running (as of the last [`reap`](Children::reap)).
    pub(crate) fn len(&self) -> usize {
        self.pids.len()
    }

    /// Collects every child that exited, so none stays a zombie.
    pub(crate) fn reap(&mut self) {
        self.pids.retain(|&pid| {
            let mut status = 0;
            // SAFETY: `status` is a valid, writable int; WNOHANG makes the call
            // return at once; `pid` is a child of this process.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            // 0: still running. -1 (ECHILD): already gone. Otherwise reaped.
            r == 0
        });
    }

    /// Sends `signal` to every child still running.
    pub(crate) fn signal_all(&self, signal: i32) {
        for &pid in &self.pids {
            // SAFETY: kill has no memory-safety preconditions; `pid` is a child
            // that has not been reaped, so the pid cannot have been reused.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}
