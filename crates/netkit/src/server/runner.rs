//! The blocking driver of a [`Session`]: the connection owns the thread (threads
//! mode) or the process (fork mode) it runs on, and waits between turns in a
//! small `poll(2)` over its socket, the server's stop pipe and, once the
//! Protocol asks for a mailbox, its wake pipe.
//!
//! Every decision about the connection is the session's (`session.rs`); this
//! loop only turns what the session waits for into a poll set and what the poll
//! saw into the next turn. Out of scope: accepting, threads and processes (see
//! the parent module), the pool's waiter (`pool.rs`).

use crate::protocol::CloseReason;

use super::session::{Ready, Session, Step, Wait, READ_CHUNK};
use super::sys::{self, PollFd};

/// Runs `session` until the connection ends; returns why it ended (after
/// telling the Protocol with `connection_lost`).
pub(super) fn run(mut session: Session) -> CloseReason {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut ready = Ready::default();
    loop {
        match session.turn(ready, &mut buf) {
            Step::Closed(reason) => return reason,
            Step::Wait(w) => match wait(&session, w) {
                Ok(r) => ready = r,
                Err(e) => return session.end(CloseReason::Error(e.to_string())),
            },
        }
    }
}

/// Polls the socket, the stop pipe and the wake pipe until something is ready
/// or the session's deadline passes. A stop fixes the grace deadline, which
/// the next turn reads (at once, when it began since the last turn).
fn wait(session: &Session, w: Wait) -> std::io::Result<Ready> {
    if session.missed_stop() {
        return Ok(Ready::default());
    }
    let life = session.life();
    let mut events = 0;
    if w.read {
        events |= sys::READ;
    }
    if w.write {
        events |= sys::WRITE;
    }
    let mut fds = [
        PollFd::new(session.fd(), events),
        PollFd::new(-1, 0),
        PollFd::new(session.wake_fd().unwrap_or(-1), sys::READ),
    ];
    // Stopping fixes the grace deadline before the stop pipe is written, so
    // a session that saw no deadline above hears the pipe.
    if life.grace_deadline().is_none() {
        fds[1] = PollFd::new(life.stop_fd(), sys::READ);
    }
    sys::poll(&mut fds, w.deadline)?;
    if fds[1].has(sys::READ) {
        life.begin();
    }
    let sock = fds[0].revents();
    Ok(Ready {
        readable: sock & sys::READ != 0,
        hangup: sock & sys::HANGUP != 0,
        woken: fds[2].has(sys::READ),
    })
}
