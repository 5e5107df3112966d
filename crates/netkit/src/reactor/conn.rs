//! One connection's I/O state inside a loop — its socket, write queue and flags —
//! and the [`Transport`] a Protocol sees. The loop (`event_loop`) decides when to
//! read, flush and close; this file only records what the Protocol asked for and
//! performs writes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use super::event_loop::LoopShared;
use super::ConnectState;
use crate::net::WriteQueue;
use crate::protocol::{CloseReason, MailboxReceiver, PeerAddr, Protocol, TimerId, Wake};

/// A connected stream socket.
pub(crate) enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

pub(crate) fn unix_peer(a: &std::os::unix::net::SocketAddr) -> PeerAddr {
    PeerAddr::Unix(a.as_pathname().map(Path::to_path_buf))
}

impl AsFd for Sock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Tcp(s) => s.as_fd(),
            Sock::Unix(s) => s.as_fd(),
        }
    }
}

impl Sock {
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }

    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }

    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.shutdown(Shutdown::Write),
            Sock::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Sock::Tcp(s) => s.take_error(),
            Sock::Unix(s) => s.take_error(),
        }
    }

    /// The peer's address; `NotConnected` while a connect is in progress.
    pub(crate) fn peer(&self) -> io::Result<PeerAddr> {
        match self {
            Sock::Tcp(s) => s.peer_addr().map(PeerAddr::Inet),
            Sock::Unix(s) => s.peer_addr().map(|a| unix_peer(&a)),
        }
    }

    pub(crate) fn local(&self) -> io::Result<PeerAddr> {
        match self {
            Sock::Tcp(s) => s.local_addr().map(PeerAddr::Inet),
            Sock::Unix(s) => s.local_addr().map(|a| unix_peer(&a)),
        }
    }

    pub(crate) fn register(&mut self, reg: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self {
            Sock::Tcp(s) => reg.register(s, token, interest),
            Sock::Unix(s) => reg.register(s, token, interest),
        }
    }
}

/// What a loop's timer is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Timer {
    /// A Protocol's `call_later`.
    Proto { token: usize, id: TimerId },
    /// Check a connection for idleness.
    Idle(usize),
    /// A client connect that has not finished.
    ConnectTimeout(usize),
    /// Accept again on a listener paused after `EMFILE`.
    AcceptResume(usize),
    /// The shutdown grace period is over.
    Grace,
}

/// What a connection's idle timer decides; both loops act on it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleStep {
    /// Not idle yet: check again at this instant.
    Wait(Instant),
    /// Idle with output queued: stop reading (the connection closes as if its
    /// Protocol had asked), send what is queued, and check again at this instant.
    Drain(Instant),
    /// Close now with `CloseReason::IdleTimeout`, dropping anything still queued.
    Close,
}

/// The idle-timeout lifecycle of one connection, for both backends. A peer that
/// has sent nothing for `idle` is closed as Twisted's `TimeoutMixin` does with
/// `loseConnection`: output already queued is sent first. While draining, each
/// further `idle` with no byte of the queue taken by the peer ends it at once,
/// so a peer that reads nothing cannot hold the connection open. `drain` is the
/// connection's memory of the queue length at the last check (`None` until the
/// timeout first fires); `queued` is what is queued now.
pub(crate) fn idle_step(
    idle: Duration,
    now: Instant,
    last_read: Instant,
    queued: usize,
    drain: &mut Option<usize>,
    peer: &PeerAddr,
) -> IdleStep {
    if let Some(before) = *drain {
        if queued > 0 && queued < before {
            *drain = Some(queued);
            return IdleStep::Drain(now + idle);
        }
        tracing::info!(%peer, "idle timeout: the peer took none of the {queued} queued bytes for {idle:?}; closing the connection");
        return IdleStep::Close;
    }
    let deadline = last_read + idle;
    if deadline > now {
        return IdleStep::Wait(deadline);
    }
    if queued == 0 {
        tracing::info!(%peer, "idle timeout: closing the connection (silent for {idle:?})");
        return IdleStep::Close;
    }
    tracing::info!(%peer, "idle timeout: sending the {queued} queued bytes, then closing the connection (silent for {idle:?})");
    *drain = Some(queued);
    IdleStep::Drain(now + idle)
}

/// Why a connection whose Protocol or idle timer asked to close ends once its
/// queue is sent: `IdleTimeout` when the idle timer closed it (`drain` is set).
pub(crate) fn drained_reason(drain: Option<usize>) -> CloseReason {
    if drain.is_some() {
        CloseReason::IdleTimeout
    } else {
        CloseReason::Done
    }
}

/// Loop state a Transport may touch: the clock, timers, the ready list.
pub(crate) struct Ctx {
    pub(crate) now: Instant,
    pub(crate) timers: BTreeMap<(Instant, u64), Timer>,
    /// Deadline of each live Protocol timer, for `cancel_timer`.
    pub(crate) timer_at: HashMap<u64, Instant>,
    pub(crate) seq: u64,
    /// Connections with work left over (budget spent, reading resumed).
    pub(crate) ready: VecDeque<usize>,
    pub(crate) ls: Arc<LoopShared>,
    pub(crate) mailbox_limit: usize,
}

impl Ctx {
    pub(crate) fn add_timer(&mut self, at: Instant, t: Timer) -> u64 {
        self.seq += 1;
        self.timers.insert((at, self.seq), t);
        self.seq
    }

    /// When the next timer is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(&(at, _), _)| at)
    }
}

/// A connection: its Protocol and its I/O state.
pub(crate) struct Conn {
    pub(crate) proto: Box<dyn Protocol>,
    pub(crate) io: ConnIo,
}

/// Everything about a connection but its Protocol.
pub(crate) struct ConnIo {
    pub(crate) sock: Sock,
    pub(crate) token: usize,
    wq: WriteQueue,
    /// Bytes the Protocol has written in total (producer progress).
    pub(crate) written: u64,
    pub(crate) closing: bool,
    pub(crate) aborting: bool,
    pub(crate) shut_wr: bool,
    pub(crate) fin_sent: bool,
    pub(crate) peer_eof: bool,
    pub(crate) user_paused: bool,
    pub(crate) bp_paused: bool,
    pub(crate) read_ready: bool,
    pub(crate) write_ready: bool,
    /// The last event said the peer hung up or the socket failed: read to the end.
    pub(crate) rdhup: bool,
    pub(crate) in_ready: bool,
    /// Mail is waiting undelivered while the write queue is over high water.
    pub(crate) mail_waiting: bool,
    /// Counts against `max_conns`.
    pub(crate) accepted: bool,
    pub(crate) connecting: Option<Arc<ConnectState>>,
    pub(crate) error: Option<io::Error>,
    pub(crate) peer: PeerAddr,
    pub(crate) local: PeerAddr,
    pub(crate) last_read: Instant,
    /// Queued bytes at the last idle check after the idle timeout fired
    /// ([`idle_step`]).
    pub(crate) idle_drain: Option<usize>,
    pub(crate) mailbox: Option<MailboxReceiver>,
}

impl ConnIo {
    pub(crate) fn new(
        sock: Sock,
        token: usize,
        peer: PeerAddr,
        local: PeerAddr,
        now: Instant,
    ) -> Self {
        ConnIo {
            sock,
            token,
            wq: WriteQueue::new(),
            written: 0,
            closing: false,
            aborting: false,
            shut_wr: false,
            fin_sent: false,
            peer_eof: false,
            user_paused: false,
            bp_paused: false,
            read_ready: false,
            write_ready: true,
            rdhup: false,
            in_ready: false,
            mail_waiting: false,
            accepted: false,
            connecting: None,
            error: None,
            peer,
            local,
            last_read: now,
            idle_drain: None,
            mailbox: None,
        }
    }

    /// Bytes queued and not yet handed to the kernel.
    pub(crate) fn queued(&self) -> usize {
        usize::try_from(self.wq.len()).unwrap_or(usize::MAX)
    }

    /// Whether the Protocol still gets events (it has not closed, aborted or failed).
    pub(crate) fn live(&self) -> bool {
        !self.closing && !self.aborting && self.error.is_none() && self.connecting.is_none()
    }

    /// Whether the loop should read from the socket now.
    pub(crate) fn can_read(&self) -> bool {
        self.read_ready && !self.user_paused && !self.bp_paused && !self.peer_eof && self.live()
    }

    /// Puts the connection on the ready list once.
    pub(crate) fn schedule(&mut self, ready: &mut VecDeque<usize>) {
        if !self.in_ready {
            self.in_ready = true;
            ready.push_back(self.token);
        }
    }

    /// Write-through: send at once when nothing is queued, queue the rest.
    fn write(&mut self, mut data: &[u8]) {
        if data.is_empty() || self.closing || self.aborting || self.shut_wr || self.error.is_some()
        {
            return;
        }
        self.written += data.len() as u64;
        if self.queued() == 0 && self.write_ready && self.connecting.is_none() {
            while !data.is_empty() {
                match self.sock.write(data) {
                    Ok(0) => {
                        self.error = Some(io::ErrorKind::WriteZero.into());
                        return;
                    }
                    Ok(n) => data = data.get(n..).unwrap_or_default(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.write_ready = false;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.error = Some(e);
                        return;
                    }
                }
            }
            if data.is_empty() {
                return;
            }
        }
        self.wq.push(data);
    }

    /// Queues a file range behind whatever is queued; `flush` sends it with `sendfile`.
    fn write_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if len == 0 || self.closing || self.aborting || self.shut_wr || self.error.is_some() {
            return;
        }
        self.written += len;
        self.wq.push_file(file, offset, len);
        if self.write_ready && self.connecting.is_none() {
            self.flush();
        }
    }

    /// Hands queued bytes to the kernel until it is all sent or the socket is full.
    pub(crate) fn flush(&mut self) {
        if self.wq.is_empty() || self.error.is_some() {
            return;
        }
        match self.wq.flush(&self.sock) {
            Ok(f) if !f.drained => self.write_ready = false,
            Ok(_) => {}
            Err(e) => self.error = Some(e),
        }
    }
}

/// Rouses a loop for one connection's mailbox.
pub(crate) struct ConnWake {
    pub(crate) ls: Arc<LoopShared>,
    pub(crate) token: usize,
}

impl Wake for ConnWake {
    fn wake(&self) {
        self.ls.wake_conn(self.token);
    }
}

/// The Transport the loop hands a Protocol.
pub(crate) struct Tx<'a> {
    pub(crate) io: &'a mut ConnIo,
    pub(crate) ctx: &'a mut Ctx,
}

/// Implements `Transport` for a loop's `$tx { io, ctx }`, on either backend:
/// `io` holds the connection's write queue, flags, addresses and mailbox (its
/// slot in the loop is the field `$key`), `ctx` the loop's timers.
macro_rules! loop_transport {
    ($tx:ident, $key:ident) => {
        impl $crate::protocol::Transport for $tx<'_> {
            fn write(&mut self, data: &[u8]) {
                self.io.write(data);
            }

            fn write_file(&mut self, file: ::std::sync::Arc<::std::fs::File>, offset: u64, len: u64) {
                self.io.write_file(file, offset, len);
            }

            fn buffered(&self) -> usize {
                self.io.queued()
            }

            fn close(&mut self) {
                self.io.closing = true;
            }

            fn abort(&mut self) {
                self.io.aborting = true;
            }

            fn shutdown_write(&mut self) {
                self.io.shut_wr = true;
            }

            fn pause_reading(&mut self) {
                self.io.user_paused = true;
            }

            fn resume_reading(&mut self) {
                if self.io.user_paused {
                    self.io.user_paused = false;
                    // Edge-triggered: data that arrived while paused raises no new event.
                    self.io.schedule(&mut self.ctx.ready);
                }
            }

            fn peer_addr(&self) -> &$crate::protocol::PeerAddr {
                &self.io.peer
            }

            fn local_addr(&self) -> &$crate::protocol::PeerAddr {
                &self.io.local
            }

            fn call_later(&mut self, delay: ::std::time::Duration) -> $crate::protocol::TimerId {
                let at = ::std::time::Instant::now() + delay;
                let seq = self.ctx.seq + 1;
                let id = $crate::protocol::TimerId(seq);
                self.ctx.add_timer(
                    at,
                    $crate::reactor::conn::Timer::Proto {
                        token: self.io.$key,
                        id,
                    },
                );
                self.ctx.timer_at.insert(seq, at);
                id
            }

            fn cancel_timer(&mut self, id: $crate::protocol::TimerId) {
                let Some(&at) = self.ctx.timer_at.get(&id.0) else {
                    return;
                };
                let mine = matches!(
                    self.ctx.timers.get(&(at, id.0)),
                    Some($crate::reactor::conn::Timer::Proto { token, .. }) if *token == self.io.$key
                );
                if mine {
                    self.ctx.timers.remove(&(at, id.0));
                    self.ctx.timer_at.remove(&id.0);
                }
            }

            fn mailbox(&mut self) -> $crate::protocol::Mailbox {
                if let Some(rx) = &self.io.mailbox {
                    return rx.mailbox();
                }
                let wake = ::std::sync::Arc::new($crate::reactor::conn::ConnWake {
                    ls: self.ctx.ls.clone(),
                    token: self.io.$key,
                });
                let (tx, rx) = $crate::protocol::Mailbox::channel(self.ctx.mailbox_limit, wake);
                self.io.mailbox = Some(rx);
                tx
            }
        }
    };
}

pub(crate) use loop_transport;

/// Defines `fn check_idle(&mut self, key: usize)`, what a loop does when a
/// connection's idle timer fires, on either backend: it acts on [`idle_step`].
/// The loop keeps its connections in `self.conns` (each with `io.last_read`,
/// `io.idle_drain`, `io.peer`, `io.closing` and `io.queued()`), its timers in
/// `self.ctx`, and has `settle` (flush, close once drained) and `finalize`.
/// The loops call it under their panic guard: closing calls `connection_lost`.
macro_rules! loop_idle_check {
    () => {
        /// A connection's idle timer fired: wait on, drain its queue, or close it.
        fn check_idle(&mut self, key: usize) {
            use $crate::reactor::conn::{idle_step, IdleStep, Timer};
            let Some(idle) = self.shared.config.idle_timeout else {
                return;
            };
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            let io = &mut c.io;
            let queued = io.queued();
            let now = self.ctx.now;
            match idle_step(
                idle,
                now,
                io.last_read,
                queued,
                &mut io.idle_drain,
                &io.peer,
            ) {
                IdleStep::Wait(at) => {
                    self.ctx.add_timer(at, Timer::Idle(key));
                }
                IdleStep::Drain(at) => {
                    io.closing = true;
                    self.ctx.add_timer(at, Timer::Idle(key));
                    self.settle(key);
                }
                IdleStep::Close => {
                    self.finalize(key, $crate::protocol::CloseReason::IdleTimeout);
                }
            }
        }
    };
}
pub(crate) use loop_idle_check;

loop_transport!(Tx, token);

/// Tokens of connections with mail, filled by other threads.
pub(crate) type WokenList = Mutex<Vec<usize>>;
