//! One Protocol connection as a state machine driven in turns: the [`Session`]
//! owns the socket, the [`Protocol`], the write queue, the timers, the idle and
//! grace deadlines and the mailbox, and [`Session::turn`] does what one wakeup
//! asks (read until the socket would block within a budget, deliver the bytes,
//! deliver mailbox messages, fire due timers, produce, flush until the socket
//! would block) and returns what the connection waits for next: readable,
//! writable, a deadline — or that it is over.
//!
//! A turn never blocks, so whoever drives it decides where a connection waits:
//! the blocking runner (`runner.rs`, threads and fork modes) waits in `poll(2)`
//! on the connection's own thread; the pool (`pool.rs`, pool and sequential
//! modes) parks it in one waiter thread's epoll set and runs its turns on
//! whichever worker is free. Both call the same turn, so every decision about a
//! connection is made once, here.
//!
//! The write queue has a high and a low watermark ([`HIGH_WATER`], [`LOW_WATER`]):
//! over the high one the session stops reading until the queue drains below the
//! low one, and producers are asked for output only below the low one. Timers
//! live in an ordered map whose earliest deadline, with the idle and grace
//! deadlines, is the deadline a turn returns, so an idle connection makes no
//! wakeups.
//!
//! The session keeps the Transport contract of `protocol`: `close` flushes first,
//! `abort` does not, `shutdown_write` sends FIN after the flush, no event but
//! `connection_lost` after a close, and `connection_lost` last with the reason.
//! After an orderly close it lingers (reading and discarding, at most [`LINGER`])
//! until the peer's end-of-file, so unread input does not turn the close into a
//! reset; lingering is a state like any other, so it never holds a thread.
//! Out of scope: accepting, threads, processes and waiting (the drivers).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::net::{Stream, WriteQueue};
use crate::protocol::{
    CloseReason, Mailbox, MailboxReceiver, PeerAddr, Protocol, TimerId, Transport, Wake,
    HIGH_WATER, LOW_WATER, MAILBOX_LIMIT,
};

use super::shutdown::Lifecycle;
use super::sys;

/// Bytes read per `read` call: the size of the buffer a driver lends each turn.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// Reads per turn, so a fast peer cannot starve timers, messages and others.
const READ_BUDGET: usize = 4;
/// Timers fired per turn, so a timer that re-arms itself at 0 cannot spin forever.
const TIMER_BUDGET: usize = 64;
/// `resume_producing` calls per turn.
const PRODUCE_BUDGET: usize = 16;
/// How often a mailbox without a wake pipe (none could be made) is checked.
const MAILBOX_FALLBACK: Duration = Duration::from_millis(50);
/// How long a close waits for the peer's end-of-file, discarding its input, so
/// unread input does not turn the close into a reset that loses our last bytes.
pub(super) const LINGER: Duration = Duration::from_secs(1);
/// Input discarded at most while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// What the driver saw since the previous turn. Spurious readiness is harmless
/// (reads and writes stop at `WouldBlock`); `hangup` must be real.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Ready {
    /// The socket is readable (or reached end-of-file).
    pub(super) readable: bool,
    /// The socket hung up or failed.
    pub(super) hangup: bool,
    /// The connection's wake pipe is readable (the blocking runner's mailbox).
    pub(super) woken: bool,
}

impl Ready {
    /// Worth a read (a new connection, a deadline that came with input left).
    pub(super) fn readable() -> Ready {
        Ready {
            readable: true,
            ..Ready::default()
        }
    }

    /// A mailbox post.
    pub(super) fn woken() -> Ready {
        Ready {
            woken: true,
            ..Ready::default()
        }
    }
}

/// What a connection waits for after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Wait {
    /// Wake on readable.
    pub(super) read: bool,
    /// Wake on writable.
    pub(super) write: bool,
    /// Wake by then at the latest (`None`: only for an event).
    pub(super) deadline: Option<Instant>,
}

/// The outcome of a turn.
#[derive(Debug)]
pub(super) enum Step {
    /// Run the next turn when the socket or the deadline says so.
    Wait(Wait),
    /// The connection is over (the Protocol was told with `connection_lost`).
    Closed(CloseReason),
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `connection_made` not yet called.
    New,
    /// Serving the Protocol.
    Open,
    /// Closed in order; discarding input until the peer's end-of-file.
    Lingering { until: Instant, discarded: usize },
    /// Over.
    Closed,
}

/// One Protocol connection: everything its turns need, owning no thread.
pub(super) struct Session {
    stream: Stream,
    proto: Box<dyn Protocol>,
    life: Arc<Lifecycle>,
    idle: Option<Duration>,
    tx: Tx,
    phase: Phase,
    eof: bool,
    fin_sent: bool,
    backpressure: bool,
    producing: bool,
    last_recv: Instant,
    last_sent: Instant,
    /// The idle timeout closed the connection and its queue is being sent.
    idle_closed: bool,
    grace: Option<Instant>,
    msgs: Vec<Bytes>,
}

impl Session {
    /// A session for `proto` over the non-blocking `stream`; `wake` is how a mailbox post reaches the driver (`None`: a wake pipe of
    /// the connection's own, see [`Session::wake_fd`]).
    pub(super) fn new(
        stream: Stream,
        proto: Box<dyn Protocol>,
        peer: PeerAddr,
        local: PeerAddr,
        idle: Option<Duration>,
        life: Arc<Lifecycle>,
        wake: Option<Arc<dyn Wake>>,
    ) -> Session {
        let now = Instant::now();
        Session {
            stream,
            proto,
            life,
            idle,
            tx: Tx::new(peer, local, wake),
            phase: Phase::New,
            eof: false,
            fin_sent: false,
            backpressure: false,
            producing: false,
            last_recv: now,
            last_sent: now,
            idle_closed: false,
            grace: None,
            msgs: Vec::new(),
        }
    }

    /// The socket's descriptor, for the driver's poll or epoll set.
    pub(super) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// The server's lifecycle (stop pipe, grace deadline).
    pub(super) fn life(&self) -> &Lifecycle {
        &self.life
    }

    /// The peer's address.
    pub(super) fn peer(&self) -> &PeerAddr {
        &self.tx.peer
    }

    /// The read end of the connection's wake pipe, once a mailbox made one.
    pub(super) fn wake_fd(&self) -> Option<RawFd> {
        self.tx.wake_rx.as_ref().map(|w| w.as_raw_fd())
    }

    /// Whether the server began stopping since this session's last turn: its
    /// deadline does not count the grace period yet, so it needs a turn now.
    /// (A lingering session heeds no grace period: it has its own deadline.)
    pub(super) fn missed_stop(&self) -> bool {
        matches!(self.phase, Phase::New | Phase::Open)
            && self.grace.is_none()
            && self.life.grace_deadline().is_some()
    }

    /// Whether mailbox messages wait to be delivered.
    pub(super) fn has_messages(&self) -> bool {
        self.phase == Phase::Open && self.tx.mailbox.as_ref().is_some_and(|m| m.has_pending())
    }

    /// Runs one turn: what `ready` and the clock ask for, with `buf` (at least
    /// one byte; [`READ_CHUNK`] is right) for reading. Never blocks.
    pub(super) fn turn(&mut self, ready: Ready, buf: &mut [u8]) -> Step {
        match self.phase {
            Phase::Lingering { until, discarded } => self.linger(until, discarded, buf),
            Phase::Closed => Step::Closed(CloseReason::Done),
            Phase::New | Phase::Open => match self.serve(ready, buf) {
                Some(reason) => self.close(reason),
                None => Step::Wait(self.waits_for()),
            },
        }
    }

    /// Ends the connection now for `reason` (the driver could not wait for it),
    /// telling the Protocol unless it was told already.
    pub(super) fn end(&mut self, reason: CloseReason) -> CloseReason {
        if matches!(self.phase, Phase::New | Phase::Open) {
            self.phase = Phase::Open;
            self.finish(&reason);
        }
        self.phase = Phase::Closed;
        let _ = self.stream.shutdown(Shutdown::Both);
        reason
    }

    /// The Protocol's part of a turn; `Some` when the connection is over.
    fn serve(&mut self, ready: Ready, buf: &mut [u8]) -> Option<CloseReason> {
        if self.phase == Phase::New {
            self.phase = Phase::Open;
            self.proto.connection_made(&mut self.tx);
        }
        if self.grace.is_none() {
            self.grace = self.life.grace_deadline();
        }
        if self.grace.is_some_and(|g| Instant::now() >= g) {
            return Some(CloseReason::Shutdown);
        }
        if let Some(reason) = self.input(ready, buf) {
            return Some(reason);
        }
        if self.tx.mailbox.is_some() {
            if let Some(reason) = self.messages(ready.woken) {
                return Some(reason);
            }
        }
        self.timers();
        if let Some(idle) = self.idle {
            let now = Instant::now();
            if now >= self.idle_since() + idle {
                if self.idle_closed || self.tx.done() || self.tx.buffered() == 0 {
                    return Some(CloseReason::IdleTimeout);
                }
                // Silent with output queued: close as `Transport::close` does,
                // after the queue; from now on each `idle` the peer takes none of
                // it ends the connection (see `idle_since`).
                self.idle_closed = true;
                self.tx.close = true;
                self.last_sent = now;
            }
        }
        self.output()
    }

    /// Tells the Protocol the connection is over; lingers after an orderly close
    /// the peer has not answered with its end-of-file yet.
    fn close(&mut self, reason: CloseReason) -> Step {
        self.finish(&reason);
        match reason {
            CloseReason::Done if !self.eof => {
                let until = sys::after(LINGER);
                self.phase = Phase::Lingering {
                    until,
                    discarded: 0,
                };
                Step::Wait(Wait {
                    read: true,
                    write: false,
                    deadline: Some(until),
                })
            }
            CloseReason::Done => {
                self.phase = Phase::Closed;
                Step::Closed(reason)
            }
            _ => {
                self.phase = Phase::Closed;
                let _ = self.stream.shutdown(Shutdown::Both);
                Step::Closed(reason)
            }
        }
    }

    /// Closes the mailbox and calls `connection_lost`.
    fn finish(&mut self, reason: &CloseReason) {
        if let Some(mb) = self.tx.mailbox.take() {
            mb.close();
        }
        self.proto.connection_lost(reason);
    }

    /// After our FIN: reads and discards until the peer's end-of-file, for at
    /// most [`LINGER`] and [`LINGER_BYTES`].
    fn linger(&mut self, until: Instant, mut discarded: usize, buf: &mut [u8]) -> Step {
        for _ in 0..READ_BUDGET {
            if discarded >= LINGER_BYTES {
                break;
            }
            match (&self.stream).read(buf) {
                Ok(n) if n > 0 => discarded += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        break;
                    }
                    self.phase = Phase::Lingering { until, discarded };
                    return Step::Wait(Wait {
                        read: true,
                        write: false,
                        deadline: Some(until),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // End-of-file or an error: the peer is done.
                _ => {
                    self.phase = Phase::Closed;
                    return Step::Closed(CloseReason::Done);
                }
            }
        }
        if discarded >= LINGER_BYTES || Instant::now() >= until {
            self.phase = Phase::Closed;
            return Step::Closed(CloseReason::Done);
        }
        // The read budget ran out with input left: come back at once.
        self.phase = Phase::Lingering { until, discarded };
        Step::Wait(Wait {
            read: true,
            write: false,
            deadline: Some(Instant::now()),
        })
    }

    /// Produces, flushes, sends FIN and decides whether the connection is over.
    fn output(&mut self) -> Option<CloseReason> {
        if self.tx.abort {
            return Some(CloseReason::Aborted);
        }
        self.produce();
        if self.tx.abort {
            return Some(CloseReason::Aborted);
        }
        match self.flush() {
            // The queue fell below the low watermark after `produce` found it
            // full: ask the producer again on the next turn.
            Ok(true) if self.proto.is_producer() && self.tx.buffered() < LOW_WATER => {
                self.producing = true;
            }
            Ok(_) => {}
            Err(e) => return Some(CloseReason::Error(e.to_string())),
        }
        if self.backpressure && self.tx.buffered() <= LOW_WATER {
            self.backpressure = false;
        }
        if self.tx.buffered() > 0 {
            return None;
        }
        if self.tx.close {
            if !self.fin_sent {
                let _ = self.stream.shutdown(Shutdown::Write);
                self.fin_sent = true;
            }
            if self.idle_closed {
                return Some(CloseReason::IdleTimeout);
            }
            return Some(CloseReason::Done);
        }
        if self.tx.shut_wr && !self.fin_sent {
            if let Err(e) = self.stream.shutdown(Shutdown::Write) {
                return Some(CloseReason::Error(e.to_string()));
            }
            self.fin_sent = true;
        }
        if self.eof && self.fin_sent {
            return Some(CloseReason::Done);
        }
        None
    }

    /// Asks a producer for output while the queue is below the low watermark.
    /// A producer that had nothing to give is asked again after the next event,
    /// not on every writable wakeup (that would spin).
    fn produce(&mut self) {
        self.producing = false;
        if !self.proto.is_producer() || self.tx.done() || self.tx.shut_wr {
            return;
        }
        for _ in 0..PRODUCE_BUDGET {
            if self.tx.done() || self.tx.shut_wr || self.tx.buffered() >= LOW_WATER {
                return;
            }
            let before = self.tx.buffered();
            self.proto.resume_producing(&mut self.tx);
            if self.tx.buffered() == before {
                return;
            }
            self.producing = true;
        }
    }

    /// Hands queued bytes to the kernel until it would block. Returns whether the
    /// kernel took anything.
    fn flush(&mut self) -> io::Result<bool> {
        let flushed = self.tx.out.flush(&self.stream)?;
        if flushed.sent > 0 {
            self.last_sent = Instant::now();
        }
        if self.tx.buffered() >= HIGH_WATER {
            self.backpressure = true;
        }
        Ok(flushed.sent > 0)
    }

    /// When the connection last made progress, for the idle timeout: the last
    /// bytes received; once closing (nothing is read any more), also the last
    /// bytes the peer took, so a peer that stops reading cannot hold a closing
    /// connection forever.
    fn idle_since(&self) -> Instant {
        if self.tx.done() {
            self.last_recv.max(self.last_sent)
        } else {
            self.last_recv
        }
    }

    /// Whether the session reads from the peer now.
    fn wants_read(&self) -> bool {
        !self.tx.done() && !self.eof && !self.tx.paused && !self.backpressure
    }

    /// What the connection waits for once a turn is over: readable while it
    /// reads, writable while output is queued (or a producer may give more),
    /// and the earliest of its timers, idle and grace deadlines.
    fn waits_for(&self) -> Wait {
        let mut fallback = None;
        if self.tx.mailbox.is_some() && self.tx.wake_rx.is_none() && self.tx.wake.is_none() {
            fallback = Some(sys::after(MAILBOX_FALLBACK));
        }
        let idle = self.idle.map(|d| self.idle_since() + d);
        let timer = self.tx.timers.first().map(|(at, _)| *at);
        Wait {
            read: self.wants_read(),
            write: self.tx.buffered() > 0 || self.producing,
            deadline: sys::earliest([timer, idle, self.grace, fallback]),
        }
    }

    /// Reads what the peer sent (a bounded number of reads) and delivers it.
    fn input(&mut self, ready: Ready, buf: &mut [u8]) -> Option<CloseReason> {
        if !ready.readable && !ready.hangup {
            return None;
        }
        if !self.wants_read() {
            if ready.hangup && self.tx.buffered() == 0 {
                // The peer is gone and nothing is being read or written: find out why.
                return Some(match (&self.stream).read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) => CloseReason::Error(e.to_string()),
                    Ok(_) => CloseReason::Done,
                });
            }
            return None;
        }
        for _ in 0..READ_BUDGET {
            if !self.wants_read() {
                break;
            }
            match (&self.stream).read(buf) {
                Ok(0) => {
                    self.eof = true;
                    self.proto.eof_received(&mut self.tx);
                    break;
                }
                Ok(n) => {
                    self.last_recv = Instant::now();
                    let full = n == buf.len();
                    self.proto.data_received(&buf[..n], &mut self.tx);
                    if self.tx.buffered() >= HIGH_WATER {
                        self.backpressure = true;
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(CloseReason::Error(e.to_string())),
            }
        }
        None
    }

    /// Delivers mailbox messages; a mailbox that overflowed closes the connection.
    fn messages(&mut self, woken: bool) -> Option<CloseReason> {
        if let (true, Some(w)) = (woken, &self.tx.wake_rx) {
            let mut scratch = [0u8; 64];
            while matches!((&*w).read(&mut scratch), Ok(n) if n > 0) {}
        }
        let Some(mb) = &self.tx.mailbox else {
            return None;
        };
        let overflowed = mb.drain(&mut self.msgs);
        let incoming: usize = self.msgs.iter().map(|m| m.len()).sum();
        // Messages go to the write queue; a peer that does not read lets it grow
        // only to the high watermark plus one mailbox's worth.
        if overflowed || self.tx.buffered() + incoming > HIGH_WATER + MAILBOX_LIMIT {
            tracing::warn!(peer = %self.tx.peer, "mailbox full: the peer is not reading; closing");
            self.msgs.clear();
            return Some(CloseReason::Error(
                "mailbox full: the peer is not reading".into(),
            ));
        }
        for msg in self.msgs.drain(..) {
            if self.tx.done() {
                break;
            }
            self.proto.message_received(msg, &mut self.tx);
        }
        None
    }

    /// Fires the timers whose deadline passed, earliest first.
    fn timers(&mut self) {
        let now = Instant::now();
        for _ in 0..TIMER_BUDGET {
            if self.tx.done() {
                return;
            }
            let Some(&(at, id)) = self.tx.timers.first() else {
                return;
            };
            if at > now {
                return;
            }
            self.tx.timers.remove(&(at, id));
            self.tx.deadlines.remove(&id);
            self.proto.timer_fired(TimerId(id), &mut self.tx);
        }
    }
}

/// Wakes a blocking runner's poll loop by writing to its wake pipe.
struct PipeWake(UnixStream);

impl Wake for PipeWake {
    fn wake(&self) {
        let _ = (&self.0).write(b"m");
    }
}

/// A wake that does nothing: the runner checks the mailbox on a short timer.
struct NoWake;

impl Wake for NoWake {
    fn wake(&self) {}
}

/// The session's [`Transport`]: what a Protocol can ask of its connection.
struct Tx {
    out: WriteQueue,
    close: bool,
    abort: bool,
    shut_wr: bool,
    paused: bool,
    peer: PeerAddr,
    local: PeerAddr,
    timers: BTreeSet<(Instant, u64)>,
    deadlines: HashMap<u64, Instant>,
    next_timer: u64,
    mailbox: Option<MailboxReceiver>,
    wake: Option<Arc<dyn Wake>>,
    wake_rx: Option<UnixStream>,
}

impl Tx {
    fn new(peer: PeerAddr, local: PeerAddr, wake: Option<Arc<dyn Wake>>) -> Tx {
        Tx {
            out: WriteQueue::new(),
            close: false,
            abort: false,
            shut_wr: false,
            paused: false,
            peer,
            local,
            timers: BTreeSet::new(),
            deadlines: HashMap::new(),
            next_timer: 0,
            mailbox: None,
            wake,
            wake_rx: None,
        }
    }

    /// Whether the Protocol closed or aborted: no more events but `connection_lost`.
    fn done(&self) -> bool {
        self.close || self.abort
    }

    /// A mailbox that wakes the driver's wake, or else a pipe of its own.
    fn make_mailbox(&mut self) -> MailboxReceiver {
        if let Some(w) = &self.wake {
            return Mailbox::channel(MAILBOX_LIMIT, w.clone()).1;
        }
        let wake: Arc<dyn Wake> = match UnixStream::pair() {
            Ok((rx, tx))
                if rx.set_nonblocking(true).is_ok() && tx.set_nonblocking(true).is_ok() =>
            {
                self.wake_rx = Some(rx);
                Arc::new(PipeWake(tx))
            }
            _ => Arc::new(NoWake),
        };
        Mailbox::channel(MAILBOX_LIMIT, wake).1
    }
}

impl Transport for Tx {
    fn write(&mut self, data: &[u8]) {
        if !self.done() && !self.shut_wr {
            self.out.push(data);
        }
    }

    fn write_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if !self.done() && !self.shut_wr {
            self.out.push_file(file, offset, len);
        }
    }

    fn buffered(&self) -> usize {
        usize::try_from(self.out.len()).unwrap_or(usize::MAX)
    }

    fn close(&mut self) {
        self.close = true;
    }

    fn abort(&mut self) {
        self.abort = true;
    }

    fn shutdown_write(&mut self) {
        self.shut_wr = true;
    }

    fn pause_reading(&mut self) {
        self.paused = true;
    }

    fn resume_reading(&mut self) {
        self.paused = false;
    }

    fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }

    fn local_addr(&self) -> &PeerAddr {
        &self.local
    }

    fn call_later(&mut self, delay: Duration) -> TimerId {
        let id = self.next_timer;
        self.next_timer += 1;
        let at = sys::after(delay);
        self.timers.insert((at, id));
        self.deadlines.insert(id, at);
        TimerId(id)
    }

    fn cancel_timer(&mut self, id: TimerId) {
        if let Some(at) = self.deadlines.remove(&id.0) {
            self.timers.remove(&(at, id.0));
        }
    }

    fn mailbox(&mut self) -> Mailbox {
        if self.mailbox.is_none() {
            self.mailbox = Some(self.make_mailbox());
        }
        match &self.mailbox {
            Some(rx) => rx.mailbox(),
            None => unreachable_mailbox(),
        }
    }
}

/// A closed mailbox, for the impossible case above (kept panic-free).
fn unreachable_mailbox() -> Mailbox {
    let (mb, rx) = Mailbox::channel(0, Arc::new(NoWake));
    rx.close();
    mb
}
