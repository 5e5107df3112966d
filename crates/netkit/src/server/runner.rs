//! The blocking Protocol runner: drives one [`Protocol`] over one connection, on the
//! thread (or process) that owns the connection, in every blocking mode.
//!
//! Per connection: a non-blocking socket and a small `poll(2)` loop over the socket,
//! the server's stop pipe and, once the Protocol asks for a mailbox, a wake pipe.
//! The write queue has a high and a low watermark ([`HIGH_WATER`], [`LOW_WATER`]):
//! over the high one the runner stops reading until the queue drains below the low
//! one, and producers are asked for output only below the low one. Timers live in
//! an ordered map whose earliest deadline, with the idle and grace deadlines,
//! becomes the poll timeout, so an idle connection makes no wakeups.
//!
//! The runner keeps the Transport contract of `protocol`: `close` flushes first,
//! `abort` does not, `shutdown_write` sends FIN after the flush, no event but
//! `connection_lost` after a close, and `connection_lost` last with the reason.
//! Out of scope: accepting, threads and processes (see the parent module).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::net::{Stream, WriteQueue};
use crate::protocol::{
    CloseReason, Mailbox, MailboxReceiver, PeerAddr, Protocol, TimerId, Transport, Wake,
};

use super::shutdown::Lifecycle;
use super::sys::{self, PollFd};

/// Queued output above which the runner stops reading from the peer.
pub const HIGH_WATER: usize = 256 * 1024;
/// Queued output below which reading resumes and producers are asked for more.
pub const LOW_WATER: usize = 64 * 1024;
/// Bytes of undelivered mailbox messages a connection may hold.
pub const MAILBOX_LIMIT: usize = 1024 * 1024;

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// Reads per wakeup, so a fast peer cannot starve timers and messages.
const READ_BUDGET: usize = 4;
/// Timers fired per wakeup, so a timer that re-arms itself at 0 cannot spin forever.
const TIMER_BUDGET: usize = 64;
/// `resume_producing` calls per wakeup.
const PRODUCE_BUDGET: usize = 16;
/// How often a mailbox without a wake pipe (none could be made) is checked.
const MAILBOX_FALLBACK: Duration = Duration::from_millis(50);
/// How long a close waits for the peer's end-of-file, discarding its input, so
/// unread input does not turn the close into a reset that loses our last bytes.
const LINGER: Duration = Duration::from_secs(1);
/// Input discarded at most while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// Runs `proto` over `stream` until the connection ends; returns why it ended
/// (after telling the Protocol with `connection_lost`). `first` is data already
/// read from the peer (what followed a PROXY header), delivered right after
/// `connection_made`.
pub(crate) fn run(
    stream: &Stream,
    proto: &mut dyn Protocol,
    peer: PeerAddr,
    local: PeerAddr,
    first: &[u8],
    idle: Option<Duration>,
    life: &Lifecycle,
) -> CloseReason {
    let mut runner = Runner {
        stream,
        life,
        idle,
        tx: Tx::new(peer, local),
        eof: false,
        fin_sent: false,
        backpressure: false,
        producing: false,
        last_recv: Instant::now(),
        last_sent: Instant::now(),
        grace: None,
        buf: vec![0u8; READ_CHUNK],
        msgs: Vec::new(),
    };
    if let Err(e) = stream.set_nonblocking(true) {
        let reason = CloseReason::Error(e.to_string());
        proto.connection_lost(&reason);
        return reason;
    }
    let reason = runner.run(proto, first);
    let must_linger = reason == CloseReason::Done && !runner.eof;
    if let Some(mb) = runner.tx.mailbox.take() {
        mb.close();
    }
    proto.connection_lost(&reason);
    match reason {
        CloseReason::Done if must_linger => linger(stream, &mut runner.buf),
        CloseReason::Done => {}
        _ => {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
    reason
}

/// After our FIN: reads and discards until the peer's end-of-file, for at most
/// [`LINGER`] and [`LINGER_BYTES`].
fn linger(stream: &Stream, buf: &mut [u8]) {
    let deadline = sys::after(LINGER);
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let mut fds = [PollFd::new(stream.as_raw_fd(), sys::READ)];
        match sys::poll(&mut fds, Some(deadline)) {
            Ok(1) => {}
            _ => return,
        }
        match (&*stream).read(buf) {
            Ok(0) => return,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Wakes a runner's poll loop by writing to its wake pipe.
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

/// The runner's [`Transport`]: what a Protocol can ask of its connection.
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
    wake_rx: Option<UnixStream>,
}

impl Tx {
    fn new(peer: PeerAddr, local: PeerAddr) -> Tx {
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
            wake_rx: None,
        }
    }

    /// Whether the Protocol closed or aborted: no more events but `connection_lost`.
    fn done(&self) -> bool {
        self.close || self.abort
    }

    fn make_mailbox(&mut self) -> MailboxReceiver {
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

/// One connection's loop state.
struct Runner<'a> {
    stream: &'a Stream,
    life: &'a Lifecycle,
    idle: Option<Duration>,
    tx: Tx,
    eof: bool,
    fin_sent: bool,
    backpressure: bool,
    producing: bool,
    last_recv: Instant,
    last_sent: Instant,
    grace: Option<Instant>,
    buf: Vec<u8>,
    msgs: Vec<Bytes>,
}

/// What the poll said about each watched descriptor.
#[derive(Default)]
struct Ready {
    sock: i16,
    stop: bool,
    wake: bool,
}

impl Runner<'_> {
    fn run(&mut self, proto: &mut dyn Protocol, first: &[u8]) -> CloseReason {
        proto.connection_made(&mut self.tx);
        if !first.is_empty() && !self.tx.done() {
            proto.data_received(first, &mut self.tx);
            if self.tx.buffered() >= HIGH_WATER {
                self.backpressure = true;
            }
        }
        loop {
            if let Some(reason) = self.output(proto) {
                return reason;
            }
            let ready = match self.wait() {
                Ok(r) => r,
                Err(e) => return CloseReason::Error(e.to_string()),
            };
            if ready.stop && self.grace.is_none() {
                self.grace = Some(self.life.begin());
            }
            if self.grace.is_some_and(|g| Instant::now() >= g) {
                return CloseReason::Shutdown;
            }
            if let Some(reason) = self.input(proto, ready.sock) {
                return reason;
            }
            if self.tx.mailbox.is_some() {
                if let Some(reason) = self.messages(proto, ready.wake) {
                    return reason;
                }
            }
            self.timers(proto);
            if let Some(idle) = self.idle {
                if Instant::now() >= self.idle_since() + idle {
                    return CloseReason::IdleTimeout;
                }
            }
        }
    }

    /// Produces, flushes, sends FIN and decides whether the connection is over.
    fn output(&mut self, proto: &mut dyn Protocol) -> Option<CloseReason> {
        if self.tx.abort {
            return Some(CloseReason::Aborted);
        }
        self.produce(proto);
        if self.tx.abort {
            return Some(CloseReason::Aborted);
        }
        match self.flush() {
            // The queue fell below the low watermark after `produce` found it
            // full: ask the producer again on the next turn.
            Ok(true) if proto.is_producer() && self.tx.buffered() < LOW_WATER => {
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
    fn produce(&mut self, proto: &mut dyn Protocol) {
        self.producing = false;
        if !proto.is_producer() || self.tx.done() || self.tx.shut_wr {
            return;
        }
        for _ in 0..PRODUCE_BUDGET {
            if self.tx.done() || self.tx.shut_wr || self.tx.buffered() >= LOW_WATER {
                return;
            }
            let before = self.tx.buffered();
            proto.resume_producing(&mut self.tx);
            if self.tx.buffered() == before {
                return;
            }
            self.producing = true;
        }
    }

    /// Hands queued bytes to the kernel until it would block. Returns whether the
    /// kernel took anything.
    fn flush(&mut self) -> io::Result<bool> {
        let tx = &mut self.tx;
        let flushed = tx.out.flush(self.stream)?;
        if flushed.sent > 0 {
            self.last_sent = Instant::now();
        }
        if tx.buffered() >= HIGH_WATER {
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

    /// Whether the runner reads from the peer now.
    fn wants_read(&self) -> bool {
        !self.tx.done() && !self.eof && !self.tx.paused && !self.backpressure
    }

    /// Polls the socket, the stop pipe and the wake pipe until something is ready
    /// or the earliest deadline passes.
    fn wait(&mut self) -> io::Result<Ready> {
        let mut events = 0;
        if self.wants_read() {
            events |= sys::READ;
        }
        // A producer is asked for more whenever the socket can take it.
        if self.tx.buffered() > 0 || self.producing {
            events |= sys::WRITE;
        }
        let mut fds = [
            PollFd::new(self.stream.as_raw_fd(), events),
            PollFd::new(-1, 0),
            PollFd::new(-1, 0),
        ];
        if self.grace.is_none() {
            fds[1] = PollFd::new(self.life.stop_fd(), sys::READ);
        }
        let mut fallback = None;
        match (&self.tx.wake_rx, &self.tx.mailbox) {
            (Some(w), _) => fds[2] = PollFd::new(w.as_raw_fd(), sys::READ),
            (None, Some(_)) => fallback = Some(sys::after(MAILBOX_FALLBACK)),
            (None, None) => {}
        }
        let idle = self.idle.map(|d| self.idle_since() + d);
        let timer = self.tx.timers.first().map(|(at, _)| *at);
        let deadline = sys::earliest([timer, idle, self.grace, fallback]);
        sys::poll(&mut fds, deadline)?;
        Ok(Ready {
            sock: fds[0].revents(),
            stop: fds[1].has(sys::READ),
            wake: fds[2].has(sys::READ),
        })
    }

    /// Reads what the peer sent (a bounded number of reads) and delivers it.
    fn input(&mut self, proto: &mut dyn Protocol, revents: i16) -> Option<CloseReason> {
        let hangup = revents & sys::HANGUP != 0;
        if revents & sys::READ == 0 && !hangup {
            return None;
        }
        if !self.wants_read() {
            if hangup && self.tx.buffered() == 0 {
                // The peer is gone and nothing is being read or written: find out why.
                return Some(match (&*self.stream).read(&mut self.buf) {
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
            match (&*self.stream).read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    proto.eof_received(&mut self.tx);
                    break;
                }
                Ok(n) => {
                    self.last_recv = Instant::now();
                    let full = n == self.buf.len();
                    proto.data_received(&self.buf[..n], &mut self.tx);
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
    fn messages(&mut self, proto: &mut dyn Protocol, woken: bool) -> Option<CloseReason> {
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
            proto.message_received(msg, &mut self.tx);
        }
        None
    }

    /// Fires the timers whose deadline passed, earliest first.
    fn timers(&mut self, proto: &mut dyn Protocol) {
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
            proto.timer_fired(TimerId(id), &mut self.tx);
        }
    }
}
