//! The io_uring backend (`Backend::Uring`, Linux): one loop per thread that runs
//! the same Protocols as the epoll loop, but learns about I/O from completions
//! instead of readiness. It owns its ring, its provided-buffer ring (`bufring`),
//! its connections and their send queues; it reuses the epoll loop's timers and
//! ready list (`conn::Ctx`), its cross-thread inbox (`LoopShared`) and the
//! Protocol contract unchanged. Building the loops and binding listeners stay in
//! `reactor/mod.rs`.
//!
//! # How I/O flows
//!
//! - **Accept**: one multishot `accept` per listener; each completion is a new
//!   connection. A shared Unix listener is accepted from by every loop at once.
//! - **Receive**: one multishot `recv` per connection, selecting buffers from the
//!   loop's provided-buffer ring (512 × 16 KiB); the buffer goes back to the ring as
//!   soon as `data_received` returns. Pausing (by the Protocol or by back-pressure)
//!   cancels the `recv`; data that was already in flight when the cancel landed is
//!   copied aside (the ring buffer goes back at once) and delivered on resume, one
//!   buffer's worth per `data_received` so back-pressure applies between pieces.
//!   A paused connection holds no ring buffers; what it holds aside is bounded by
//!   what the kernel completed before the cancel landed (at most the ring, 8 MiB).
//! - **Send**: `Transport::write` only appends to the connection's queue. After the
//!   Protocol call returns, the loop submits one `send` per connection (never two in
//!   flight); a short send resubmits the tail, and a completed send starts the next
//!   chunk. File segments (`write_file`) are read with `pread` into the send buffer,
//!   256 KiB at a time, and sent like memory (no `sendfile` on this path).
//! - **Ring setup**: `COOP_TASKRUN`, `SINGLE_ISSUER` and `DEFER_TASKRUN`: each
//!   ring is built and driven by its loop's thread alone, and completion work
//!   runs only when the loop enters the kernel to wait (no interrupts).
//! - **Batching**: every SQE of a turn goes to the kernel in ONE `io_uring_enter`,
//!   which also waits for the next completion with the earliest timer as its
//!   timeout (`IORING_ENTER_EXT_ARG`).
//! - **Waking**: the loop keeps a multishot poll on the epoll instance that holds
//!   the loop's `mio::Waker`; when another thread wakes the loop (mailbox, shutdown,
//!   a freed connection slot) the poll completes and the loop drains the epoll
//!   instance and handles the wake-up as the epoll loop does.
//! - **Closing**: a connection's socket stays open until its `recv` and `send` have
//!   completed (they are cancelled first), so the kernel never writes into memory
//!   that is gone and the peer sees the close only after the operations end.
//!
//! # Not supported by this backend
//!
//! Datagram sockets (`Reactor::listen_datagram` returns `Unsupported`) and client
//! connections (`Handle::connect` reports `Unsupported`). The per-turn read budget
//! does not apply: each completion carries at most one 16 KiB buffer, which keeps
//! connections fair. At `max_conns`, the loop cancels its multishot accepts and
//! holds connections that were accepted while the cancel was in flight until a
//! slot frees (they wait as they would in the kernel backlog).

mod bufring;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use io_uring::{cqueue, opcode, squeue, types, IoUring};

use self::bufring::BufRing;
use super::conn::{drained_reason, loop_idle_check, loop_transport, unix_peer, Ctx, Timer};
use super::event_loop::{lock, Cmd, ListenSock, LoopShared};
use super::{mailbox_overflow, Shared};
use crate::protocol::{
    CloseReason, ConnInfo, DynFactory, MailboxReceiver, PeerAddr, Protocol, TimerId,
};

/// Submission queue entries.
const RING_ENTRIES: u32 = 1024;
/// Receive buffers in the provided-buffer ring (a power of two).
const BUF_COUNT: u16 = 512;
/// Bytes per receive buffer.
const BUF_SIZE: usize = 16 * 1024;
/// The loop's buffer group.
const BGID: u16 = 0;
/// Bytes of a file segment read per send.
const FILE_CHUNK: usize = 256 * 1024;
/// `resume_producing` calls per connection per turn.
const PRODUCE_TURNS: usize = 16;
/// How long a listener rests after running out of file descriptors.
const EMFILE_PAUSE: Duration = Duration::from_millis(100);

/// What a completion is for: the top byte of its user data.
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_ACCEPT: u64 = 3;
const OP_WAKE: u64 = 4;
const OP_IGNORE: u64 = 5;

fn ud(op: u64, key: usize) -> u64 {
    (op << 56) | (key as u64 & ((1 << 56) - 1))
}

/// Checks that io_uring can be set up here (the kernel may forbid it).
///
/// The probe ring lives on a short-lived thread of its own: tearing a ring down
/// queues kernel work that would interrupt the creating thread's next blocking
/// socket call with `EINTR`.
pub(crate) fn probe() -> io::Result<()> {
    std::thread::spawn(|| IoUring::new(8).map(drop))
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("io_uring probe panicked")))
}

/// A listener handed to a uring loop.
pub(crate) struct UringListener {
    pub(crate) sock: ListenSock,
    pub(crate) factory: DynFactory,
    pub(crate) local: PeerAddr,
}

struct ListenerEntry {
    sock: Option<ListenSock>,
    factory: DynFactory,
    /// `None` when bound to a wildcard IP (ask the socket).
    local: Option<PeerAddr>,
    unix: bool,
    armed: bool,
    paused: bool,
    closed: bool,
}

impl ListenerEntry {
    fn fd(&self) -> Option<RawFd> {
        self.sock.as_ref().map(|s| match s {
            ListenSock::Tcp(l) => l.as_raw_fd(),
            ListenSock::Unix(l) => l.as_raw_fd(),
        })
    }
}

/// A connected stream socket.
enum StdSock {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl StdSock {
    fn fd(&self) -> RawFd {
        match self {
            StdSock::Tcp(s) => s.as_raw_fd(),
            StdSock::Unix(s) => s.as_raw_fd(),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            StdSock::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            StdSock::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
}

/// One queued piece of output.
enum Seg {
    Mem(Vec<u8>),
    File(Arc<File>, u64, u64),
}

/// Everything about a connection but its Protocol.
struct Io {
    sock: StdSock,
    key: usize,
    out: VecDeque<Seg>,
    /// Bytes in `out`.
    out_len: u64,
    /// The buffer of the send in flight (its heap memory must not move or be
    /// freed until the send completes) and how much of it has gone.
    inflight: Vec<u8>,
    sent: usize,
    spare: Vec<u8>,
    send_active: bool,
    recv_active: bool,
    cancel_sent: bool,
    /// Bytes received while reading was paused, and an end of stream behind them.
    held: Vec<u8>,
    /// How much of `held` was delivered.
    held_pos: usize,
    held_eof: bool,
    written: u64,
    closing: bool,
    aborting: bool,
    shut_wr: bool,
    fin_sent: bool,
    peer_eof: bool,
    user_paused: bool,
    bp_paused: bool,
    in_ready: bool,
    mail_waiting: bool,
    accepted: bool,
    error: Option<io::Error>,
    peer: PeerAddr,
    local: PeerAddr,
    last_read: Instant,
    /// Queued bytes at the last idle check after the idle timeout fired.
    idle_drain: Option<usize>,
    mailbox: Option<MailboxReceiver>,
}

impl Io {
    fn queued(&self) -> usize {
        let inflight = if self.send_active {
            self.inflight.len().saturating_sub(self.sent)
        } else {
            0
        };
        usize::try_from(self.out_len)
            .unwrap_or(usize::MAX)
            .saturating_add(inflight)
    }

    fn live(&self) -> bool {
        !self.closing && !self.aborting && self.error.is_none()
    }

    fn deliverable(&self) -> bool {
        self.live() && !self.user_paused && !self.bp_paused
    }

    fn schedule(&mut self, ready: &mut VecDeque<usize>) {
        if !self.in_ready {
            self.in_ready = true;
            ready.push_back(self.key);
        }
    }

    fn write(&mut self, data: &[u8]) {
        if data.is_empty() || self.closing || self.aborting || self.shut_wr || self.error.is_some()
        {
            return;
        }
        self.written += data.len() as u64;
        self.out_len += data.len() as u64;
        if let Some(Seg::Mem(v)) = self.out.back_mut() {
            v.extend_from_slice(data);
            return;
        }
        let mut v = std::mem::take(&mut self.spare);
        v.extend_from_slice(data);
        self.out.push_back(Seg::Mem(v));
    }

    fn write_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if len == 0 || self.closing || self.aborting || self.shut_wr || self.error.is_some() {
            return;
        }
        self.written += len;
        self.out_len += len;
        self.out.push_back(Seg::File(file, offset, len));
    }

    /// Fills `inflight` with the next chunk of `out`; false when there is none.
    fn next_chunk(&mut self) -> bool {
        let mut buf = std::mem::take(&mut self.inflight);
        buf.clear();
        if self.spare.capacity() == 0 {
            self.spare = std::mem::take(&mut buf);
        }
        self.sent = 0;
        match self.out.front_mut() {
            None => return false,
            Some(Seg::Mem(v)) => {
                buf = std::mem::take(v);
                self.out.pop_front();
            }
            Some(Seg::File(f, off, len)) => {
                let want = usize::try_from(*len).unwrap_or(FILE_CHUNK).min(FILE_CHUNK);
                buf.resize(want, 0);
                match f.read_at(&mut buf, *off) {
                    Ok(0) => {
                        self.error = Some(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shorter than the range given to write_file",
                        ));
                        return false;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        *off += n as u64;
                        *len -= n as u64;
                        if *len == 0 {
                            self.out.pop_front();
                        }
                    }
                    Err(e) => {
                        self.error = Some(e);
                        return false;
                    }
                }
            }
        }
        self.out_len = self.out_len.saturating_sub(buf.len() as u64);
        self.inflight = buf;
        true
    }
}

/// A connection: its Protocol and its I/O state.
struct Conn {
    proto: Box<dyn Protocol>,
    io: Io,
}

/// The socket and buffer of a closed connection whose operations have not ended.
struct Grave {
    _sock: StdSock,
    _inflight: Vec<u8>,
    recv_active: bool,
    send_active: bool,
}

struct Slot {
    gen: u32,
    conn: Option<Conn>,
}

/// Connections by index; a key is `generation (24 bits) << 32 | index`.
#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<usize>,
    len: usize,
}

const GEN_MASK: u32 = (1 << 24) - 1;

impl Slab {
    fn vacant_key(&mut self) -> usize {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot { gen: 0, conn: None });
            self.slots.len() - 1
        });
        let gen = self.slots.get(idx).map_or(0, |s| s.gen);
        ((gen as usize) << 32) | idx
    }

    fn insert(&mut self, key: usize, conn: Conn) {
        if let Some(s) = self.slots.get_mut(key & 0xFFFF_FFFF) {
            s.conn = Some(conn);
            self.len += 1;
        }
    }

    fn slot(&mut self, key: usize) -> Option<&mut Slot> {
        let s = self.slots.get_mut(key & 0xFFFF_FFFF)?;
        (s.gen as usize == key >> 32).then_some(s)
    }

    fn get_mut(&mut self, key: usize) -> Option<&mut Conn> {
        self.slot(key)?.conn.as_mut()
    }

    fn remove(&mut self, key: usize) -> Option<Conn> {
        let s = self.slot(key)?;
        let c = s.conn.take()?;
        s.gen = (s.gen + 1) & GEN_MASK;
        self.free.push(key & 0xFFFF_FFFF);
        self.len -= 1;
        Some(c)
    }

    fn keys(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(i, s)| ((s.gen as usize) << 32) | i)
            .collect()
    }
}

/// The Transport a Protocol sees on this backend.
struct Tx<'a> {
    io: &'a mut Io,
    ctx: &'a mut Ctx,
}

loop_transport!(Tx, key);

/// Pushes `e` on the submission queue, submitting first when it is full.
fn push(ring: &mut IoUring, e: &squeue::Entry) {
    loop {
        // SAFETY: every buffer an entry points at (send buffers, the buffer ring)
        // stays alive and unmoved until its completion arrives (see `Grave`).
        if unsafe { ring.submission().push(e) }.is_ok() {
            return;
        }
        if let Err(err) = ring.submit() {
            tracing::warn!("reactor: io_uring submit failed: {err}");
            if err.kind() != io::ErrorKind::Interrupted && err.raw_os_error() != Some(libc::EBUSY) {
                return;
            }
        }
    }
}

/// One io_uring event loop. Field order matters: the ring is dropped before the
/// buffer ring and the sockets and buffers its operations point at.
pub(crate) struct Loop {
    ring: IoUring,
    bufs: BufRing,
    poll: mio::Poll,
    events: mio::Events,
    shared: Arc<Shared>,
    conns: Slab,
    graves: HashMap<usize, Grave>,
    listeners: Vec<ListenerEntry>,
    /// Connections accepted while at `max_conns`, waiting for a slot.
    waiting: VecDeque<(usize, std::os::fd::OwnedFd)>,
    ctx: Ctx,
    cqes: Vec<(u64, i32, u32)>,
    mail: Vec<Bytes>,
    woken: Vec<usize>,
    shutting_down: bool,
}

// SAFETY: the buffer ring's raw pointer is private memory this loop alone touches;
// the loop moves to its thread once, before it runs.
unsafe impl Send for Loop {}

impl Loop {
    /// A loop around an epoll loop's poll (kept for its waker) and shared state.
    pub(crate) fn new(
        poll: mio::Poll,
        ls: Arc<LoopShared>,
        shared: Arc<Shared>,
        listeners: Vec<UringListener>,
    ) -> io::Result<Loop> {
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(RING_ENTRIES)?;
        let bufs = BufRing::new(&ring.submitter(), BUF_COUNT, BUF_SIZE, BGID)?;
        let mailbox_limit = shared.config.mailbox_limit;
        let listeners = listeners
            .into_iter()
            .map(|l| {
                let wildcard = l.local.inet().is_some_and(|a| a.ip().is_unspecified());
                ListenerEntry {
                    unix: matches!(l.sock, ListenSock::Unix(_)),
                    sock: Some(l.sock),
                    factory: l.factory,
                    local: (!wildcard).then_some(l.local),
                    armed: false,
                    paused: false,
                    closed: false,
                }
            })
            .collect();
        Ok(Loop {
            ring,
            bufs,
            poll,
            events: mio::Events::with_capacity(64),
            shared,
            conns: Slab::default(),
            graves: HashMap::new(),
            listeners,
            waiting: VecDeque::new(),
            ctx: Ctx {
                now: Instant::now(),
                timers: BTreeMap::new(),
                timer_at: HashMap::new(),
                seq: 0,
                ready: VecDeque::new(),
                ls,
                mailbox_limit,
            },
            cqes: Vec::with_capacity(1024),
            mail: Vec::new(),
            woken: Vec::new(),
            shutting_down: false,
        })
    }

    /// Runs until shutdown has finished every connection.
    pub(crate) fn run(mut self) -> io::Result<()> {
        self.ctx.now = Instant::now();
        self.arm_wake();
        for li in 0..self.listeners.len() {
            self.arm_accept(li);
        }
        self.handle_wake();
        loop {
            if self.shutting_down && self.conns.len == 0 {
                break;
            }
            self.enter()?;
            self.ctx.now = Instant::now();
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(data, res, flags) in &cqes {
                let key = (data & ((1 << 56) - 1)) as usize;
                match data >> 56 {
                    OP_RECV => self.guard(key, |lp| lp.on_recv(key, res, flags)),
                    OP_SEND => self.guard(key, |lp| lp.on_send(key, res)),
                    OP_ACCEPT => self.on_accept(key, res, flags),
                    OP_WAKE => {
                        if !cqueue::more(flags) {
                            self.arm_wake();
                        }
                        // Consume the waker's event so the epoll instance goes quiet.
                        let _ = self.poll.poll(&mut self.events, Some(Duration::ZERO));
                        self.handle_wake();
                    }
                    _ => {}
                }
            }
            cqes.clear();
            self.cqes = cqes;
            self.fire_timers();
            self.run_ready();
        }
        Ok(())
    }

    /// Submits the turn's entries and waits for a completion or the next timer.
    fn enter(&mut self) -> io::Result<()> {
        let timeout = if self.ctx.ready.is_empty() {
            self.ctx
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()))
        } else {
            Some(Duration::ZERO)
        };
        let r = match timeout {
            Some(Duration::ZERO) => {
                if self.ring.submission().is_empty() {
                    return Ok(());
                }
                self.ring.submit()
            }
            Some(d) => {
                let ts = types::Timespec::new()
                    .sec(d.as_secs())
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn arm_wake(&mut self) {
        let fd = self.poll.as_raw_fd();
        let e = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(ud(OP_WAKE, 0));
        push(&mut self.ring, &e);
    }

    fn arm_accept(&mut self, li: usize) {
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        if l.armed || l.paused || l.closed || self.shutting_down {
            return;
        }
        let Some(fd) = l.fd() else {
            return;
        };
        l.armed = true;
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ud(OP_ACCEPT, li));
        push(&mut self.ring, &e);
    }

    fn cancel(&mut self, op: u64, key: usize) {
        let e = opcode::AsyncCancel::new(ud(op, key))
            .build()
            .user_data(ud(OP_IGNORE, 0));
        push(&mut self.ring, &e);
    }

    /// Another thread woke the loop: shutdown, commands, mail, accepting again.
    fn handle_wake(&mut self) {
        if self.shared.shutdown.load(Ordering::SeqCst) && !self.shutting_down {
            self.begin_shutdown();
        }
        let cmds = std::mem::take(&mut *lock(&self.ctx.ls.cmds));
        for cmd in cmds {
            match cmd {
                Cmd::Connect { state, .. } => state.finish(Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "client connections are not supported by the io_uring backend",
                ))),
            }
        }
        std::mem::swap(&mut *lock(&self.ctx.ls.woken), &mut self.woken);
        let woken = std::mem::take(&mut self.woken);
        for &t in &woken {
            self.guard(t, |lp| lp.deliver_mail(t));
        }
        self.woken = woken;
        self.woken.clear();
        if self.ctx.ls.retry_accept.swap(false, Ordering::SeqCst) {
            while let Some((li, fd)) = self.waiting.pop_front() {
                if self.shutting_down {
                    continue;
                }
                if !self.shared.reserve_slot() {
                    self.waiting.push_front((li, fd));
                    return;
                }
                self.start_conn(li, fd);
            }
            for (li, l) in self.listeners.iter_mut().enumerate() {
                if l.paused {
                    l.paused = false;
                    self.ctx.add_timer(self.ctx.now, Timer::AcceptResume(li));
                }
            }
        }
    }

    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        for _ in self.waiting.drain(..) {
            self.shared.release_slot();
        }
        for li in 0..self.listeners.len() {
            let armed = self.listeners.get_mut(li).is_some_and(|l| {
                l.closed = true;
                if !l.armed {
                    l.sock = None;
                }
                l.armed
            });
            if armed {
                self.cancel(OP_ACCEPT, li);
            }
        }
        let at = self.ctx.now + self.shared.config.grace;
        self.ctx.add_timer(at, Timer::Grace);
    }

    fn on_accept(&mut self, li: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let Some(l) = self.listeners.get_mut(li) else {
            if res >= 0 {
                // SAFETY: the kernel just gave us this descriptor; we own it.
                drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(res) });
            }
            return;
        };
        if !more {
            l.armed = false;
        }
        if res < 0 {
            let e = io::Error::from_raw_os_error(-res);
            if res == -libc::ECANCELED {
            } else if is_out_of_fds(&e) {
                tracing::warn!(
                    "reactor: accept failed ({e}); pausing this listener for {EMFILE_PAUSE:?}"
                );
                let was_armed = l.armed;
                l.paused = true;
                let at = self.ctx.now + EMFILE_PAUSE;
                self.ctx.add_timer(at, Timer::AcceptResume(li));
                if was_armed {
                    self.cancel(OP_ACCEPT, li);
                }
            } else if e.kind() != io::ErrorKind::ConnectionAborted {
                tracing::warn!("reactor: accept failed: {e}");
            }
        } else {
            // SAFETY: a new descriptor from the kernel, owned from here on.
            let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(res) };
            if l.closed || self.shutting_down {
                drop(fd);
            } else if !self.shared.reserve_slot() {
                // At max_conns: hold the connection (it waits as it would in the
                // backlog) and stop accepting until a close wakes the loops.
                self.waiting.push_back((li, fd));
                if !l.paused {
                    l.paused = true;
                    if l.armed {
                        self.cancel(OP_ACCEPT, li);
                    }
                }
            } else {
                self.start_conn(li, fd);
            }
        }
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        if l.closed && !l.armed {
            l.sock = None;
        } else if !l.armed {
            self.arm_accept(li);
        }
    }

    /// Starts a connection accepted on listener `li` (its slot is reserved).
    fn start_conn(&mut self, li: usize, fd: std::os::fd::OwnedFd) {
        let Some(l) = self.listeners.get(li) else {
            self.shared.release_slot();
            return;
        };
        let sock = if l.unix {
            StdSock::Unix(std::os::unix::net::UnixStream::from(fd))
        } else {
            let s = std::net::TcpStream::from(fd);
            let _ = s.set_nodelay(true);
            StdSock::Tcp(s)
        };
        let factory = l.factory.clone();
        let local = l.local.clone();
        self.add_conn(sock, factory, local);
    }

    fn add_conn(&mut self, sock: StdSock, factory: DynFactory, local: Option<PeerAddr>) {
        let addrs = match &sock {
            StdSock::Tcp(s) => s.peer_addr().map(PeerAddr::Inet).and_then(|p| {
                let l = match local {
                    Some(l) => l,
                    None => PeerAddr::Inet(s.local_addr()?),
                };
                Ok((p, l))
            }),
            StdSock::Unix(s) => s.peer_addr().map(|a| unix_peer(&a)).map(|p| {
                let l = local.unwrap_or(PeerAddr::Unix(None));
                (p, l)
            }),
        };
        let (peer, local) = match addrs {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("reactor: accepted socket failed: {e}");
                self.shared.release_slot();
                return;
            }
        };
        let key = self.conns.vacant_key();
        let now = self.ctx.now;
        let info = ConnInfo {
            peer: peer.clone(),
            local: local.clone(),
        };
        let proto = match catch_unwind(AssertUnwindSafe(|| factory.build(&info))) {
            Ok(p) => p,
            Err(_) => {
                tracing::error!("reactor: the factory panicked building a Protocol for {peer}; dropping the connection");
                self.conns.free.push(key & 0xFFFF_FFFF);
                self.shared.release_slot();
                return;
            }
        };
        if let Some(idle) = self.shared.config.idle_timeout {
            self.ctx.add_timer(now + idle, Timer::Idle(key));
        }
        let io = Io {
            sock,
            key,
            out: VecDeque::new(),
            out_len: 0,
            inflight: Vec::new(),
            sent: 0,
            spare: Vec::new(),
            send_active: false,
            recv_active: false,
            cancel_sent: false,
            held: Vec::new(),
            held_pos: 0,
            held_eof: false,
            written: 0,
            closing: false,
            aborting: false,
            shut_wr: false,
            fin_sent: false,
            peer_eof: false,
            user_paused: false,
            bp_paused: false,
            in_ready: false,
            mail_waiting: false,
            accepted: true,
            error: None,
            peer,
            local,
            last_read: now,
            idle_drain: None,
            mailbox: None,
        };
        self.conns.insert(key, Conn { proto, io });
        self.ctx.ls.conns.fetch_add(1, Ordering::SeqCst);
        self.guard(key, |lp| {
            if let Some(c) = lp.conns.get_mut(key) {
                c.proto.connection_made(&mut Tx {
                    io: &mut c.io,
                    ctx: &mut lp.ctx,
                });
            }
            lp.settle(key);
        });
    }

    fn on_recv(&mut self, key: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let Loop {
            conns, ctx, bufs, ..
        } = self;
        let Some(c) = conns.get_mut(key) else {
            if let Some(b) = bid {
                bufs.recycle(b);
            }
            if !more {
                self.bury(key, true, false);
            }
            return;
        };
        if !more {
            c.io.recv_active = false;
            c.io.cancel_sent = false;
        }
        if res > 0 {
            let n = usize::try_from(res).unwrap_or(0);
            let data = bid.and_then(|b| bufs.get(b, n)).unwrap_or_default();
            c.io.last_read = ctx.now;
            if c.io.deliverable() && c.io.held_pos >= c.io.held.len() {
                c.proto.data_received(data, &mut Tx { io: &mut c.io, ctx });
            } else if c.io.live() {
                c.io.held.extend_from_slice(data);
            }
        } else if res == 0 {
            if c.io.deliverable() && c.io.held_pos >= c.io.held.len() {
                c.io.peer_eof = true;
                c.proto.eof_received(&mut Tx { io: &mut c.io, ctx });
            } else {
                c.io.held_eof = true;
            }
        } else if res != -libc::ECANCELED && res != -libc::ENOBUFS {
            c.io.error = Some(io::Error::from_raw_os_error(-res));
        }
        if let Some(b) = bid {
            bufs.recycle(b);
        }
        self.settle(key);
    }

    fn on_send(&mut self, key: usize, res: i32) {
        let Some(c) = self.conns.get_mut(key) else {
            self.bury(key, false, true);
            return;
        };
        let io = &mut c.io;
        io.send_active = false;
        if res < 0 {
            if res != -libc::ECANCELED {
                io.error = Some(io::Error::from_raw_os_error(-res));
            }
        } else {
            io.sent += usize::try_from(res).unwrap_or(0);
            if io.sent < io.inflight.len() {
                self.submit_send(key);
            }
        }
        self.settle(key);
    }

    /// A closed connection's operation ended: close its socket once all have.
    fn bury(&mut self, key: usize, recv: bool, send: bool) {
        if let Some(g) = self.graves.get_mut(&key) {
            if recv {
                g.recv_active = false;
            }
            if send {
                g.send_active = false;
            }
            if !g.recv_active && !g.send_active {
                self.graves.remove(&key);
            }
        }
    }

    /// Submits a send of the in-flight buffer's unsent tail, or of the next chunk.
    fn submit_send(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let io = &mut c.io;
        if io.send_active || io.error.is_some() || io.aborting {
            return;
        }
        if io.sent >= io.inflight.len() && !io.next_chunk() {
            return;
        }
        let Some(tail) = io.inflight.get(io.sent..) else {
            return;
        };
        let len = u32::try_from(tail.len()).unwrap_or(u32::MAX);
        let e = opcode::Send::new(types::Fd(io.sock.fd()), tail.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(ud(OP_SEND, key));
        io.send_active = true;
        push(&mut self.ring, &e);
    }

    /// After any event: deliver held input, send, close if asked and sent,
    /// apply back-pressure, feed producers, then start or cancel the `recv`.
    fn settle(&mut self, key: usize) {
        let high = self.shared.config.high_water;
        let low = self.shared.config.low_water;
        let mut turns = 0;
        let reason = loop {
            let Loop { conns, ctx, .. } = self;
            let Some(c) = conns.get_mut(key) else {
                return;
            };
            if c.io.aborting {
                break Some(CloseReason::Aborted);
            }
            if c.io.deliverable() && c.io.held_pos < c.io.held.len() {
                // Held input goes out a buffer at a time, so back-pressure can
                // stop it again between pieces.
                let mut held = std::mem::take(&mut c.io.held);
                let end = held.len().min(c.io.held_pos + BUF_SIZE);
                let piece = held.get(c.io.held_pos..end).unwrap_or_default();
                c.proto.data_received(piece, &mut Tx { io: &mut c.io, ctx });
                if end == held.len() {
                    held.clear();
                    c.io.held_pos = 0;
                } else {
                    c.io.held_pos = end;
                }
                if c.io.held.is_empty() {
                    c.io.held = held;
                }
                if c.io.queued() > high {
                    c.io.bp_paused = true;
                }
                continue;
            }
            if c.io.deliverable() && c.io.held_eof && !c.io.peer_eof {
                c.io.held_eof = false;
                c.io.peer_eof = true;
                c.proto.eof_received(&mut Tx { io: &mut c.io, ctx });
                continue;
            }
            if !c.io.send_active && c.io.error.is_none() {
                self.submit_send(key);
            }
            let Loop { conns, ctx, .. } = self;
            let Some(c) = conns.get_mut(key) else {
                return;
            };
            let io = &mut c.io;
            if let Some(e) = io.error.take() {
                break Some(CloseReason::Error(e.to_string()));
            }
            if io.queued() == 0 && !io.send_active {
                if io.closing {
                    break Some(drained_reason(io.idle_drain));
                }
                if io.shut_wr && !io.fin_sent {
                    io.fin_sent = true;
                    if let Err(e) = io.sock.shutdown_write() {
                        break Some(CloseReason::Error(e.to_string()));
                    }
                }
            }
            if io.fin_sent && io.peer_eof {
                break Some(CloseReason::Done);
            }
            if io.queued() > high {
                io.bp_paused = true;
            } else if io.bp_paused && io.queued() <= low {
                io.bp_paused = false;
                io.schedule(&mut ctx.ready);
            }
            let producing = io.live() && !io.shut_wr && io.queued() < low;
            if !producing || !c.proto.is_producer() {
                break None;
            }
            if turns >= PRODUCE_TURNS {
                c.io.schedule(&mut ctx.ready);
                break None;
            }
            turns += 1;
            let before = c.io.written;
            c.proto.resume_producing(&mut Tx { io: &mut c.io, ctx });
            let io = &c.io;
            if io.written == before && io.live() && !io.shut_wr && !io.aborting {
                break None;
            }
        };
        if let Some(r) = reason {
            self.finalize(key, r);
            return;
        }
        self.arm_recv(key);
    }

    /// Starts the multishot `recv` when the connection wants input, cancels it
    /// when it does not.
    fn arm_recv(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let io = &mut c.io;
        let want = io.deliverable() && !io.peer_eof && !io.held_eof && io.held_pos >= io.held.len();
        if want && !io.recv_active {
            io.recv_active = true;
            let e = opcode::RecvMulti::new(types::Fd(io.sock.fd()), BGID)
                .build()
                .user_data(ud(OP_RECV, key));
            push(&mut self.ring, &e);
        } else if !want && io.recv_active && !io.cancel_sent {
            io.cancel_sent = true;
            self.cancel(OP_RECV, key);
            // Submit now: every completion before the cancel lands is held.
            if let Err(e) = self.ring.submit() {
                tracing::debug!("reactor: io_uring submit failed: {e}");
            }
        }
    }

    /// Removes a connection and tells its Protocol, last. Its socket closes once
    /// its cancelled operations have ended.
    fn finalize(&mut self, key: usize, reason: CloseReason) {
        let Some(mut c) = self.conns.remove(key) else {
            return;
        };
        self.ctx.ls.conns.fetch_sub(1, Ordering::SeqCst);
        if let Some(rx) = c.io.mailbox.take() {
            rx.close();
        }
        let Conn { mut proto, io } = c;
        let (recv, send) = (io.recv_active, io.send_active);
        if recv {
            self.cancel(OP_RECV, key);
        }
        if send {
            self.cancel(OP_SEND, key);
        }
        let accepted = io.accepted;
        let peer = io.peer.clone();
        if recv || send {
            self.graves.insert(
                key,
                Grave {
                    _sock: io.sock,
                    _inflight: io.inflight,
                    recv_active: recv,
                    send_active: send,
                },
            );
        } else {
            drop(io);
        }
        if accepted {
            self.shared.release_slot();
        }
        tracing::debug!("reactor: {peer}: {reason}");
        proto.connection_lost(&reason);
    }

    fn deliver_mail(&mut self, key: usize) {
        let Loop {
            conns, ctx, mail, ..
        } = self;
        let Some(c) = conns.get_mut(key) else {
            return;
        };
        let Some(rx) = &c.io.mailbox else {
            return;
        };
        if c.io.bp_paused && !c.io.mail_waiting {
            c.io.mail_waiting = true;
            return;
        }
        c.io.mail_waiting = false;
        let overflowed = rx.drain(mail);
        for msg in mail.drain(..) {
            if !c.io.live() {
                continue;
            }
            c.proto
                .message_received(msg, &mut Tx { io: &mut c.io, ctx });
        }
        if overflowed {
            tracing::warn!(
                "reactor: closing connection from {}: its mailbox is full (the peer is not reading)",
                c.io.peer
            );
            self.finalize(key, mailbox_overflow());
        } else {
            self.settle(key);
        }
    }

    fn fire_timers(&mut self) {
        let now = self.ctx.now;
        while let Some(((at, seq), timer)) = self.ctx.timers.pop_first() {
            if at > now {
                self.ctx.timers.insert((at, seq), timer);
                return;
            }
            match timer {
                Timer::Proto { token: t, id } => {
                    self.ctx.timer_at.remove(&seq);
                    self.guard(t, |lp| lp.timer(t, id));
                }
                Timer::Idle(t) => self.guard(t, |lp| lp.check_idle(t)),
                Timer::ConnectTimeout(_) => {}
                Timer::AcceptResume(li) => {
                    if let Some(l) = self.listeners.get_mut(li) {
                        l.paused = false;
                    }
                    self.arm_accept(li);
                }
                Timer::Grace => self.close_all(),
            }
        }
    }

    fn timer(&mut self, key: usize, id: TimerId) {
        let Loop { conns, ctx, .. } = self;
        if let Some(c) = conns.get_mut(key) {
            if c.io.live() {
                c.proto.timer_fired(id, &mut Tx { io: &mut c.io, ctx });
            }
            self.settle(key);
        }
    }

    loop_idle_check!();

    fn close_all(&mut self) {
        for key in self.conns.keys() {
            if let Some(c) = self.conns.get_mut(key) {
                tracing::info!(peer = %c.io.peer, "closed: {}", CloseReason::Shutdown);
            }
            self.guard(key, |lp| lp.finalize(key, CloseReason::Shutdown));
        }
    }

    /// Connections with work left from an earlier turn (reading resumed,
    /// producers with turns left).
    fn run_ready(&mut self) {
        for _ in 0..self.ctx.ready.len() {
            let Some(key) = self.ctx.ready.pop_front() else {
                break;
            };
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            c.io.in_ready = false;
            self.guard(key, |lp| {
                lp.settle(key);
                let mail = lp
                    .conns
                    .get_mut(key)
                    .is_some_and(|c| c.io.mail_waiting && !c.io.bp_paused);
                if mail {
                    lp.deliver_mail(key);
                }
            });
        }
    }

    /// Runs `f`, which calls connection `key`'s Protocol; if that panics, the
    /// connection is dropped and the loop carries on.
    fn guard(&mut self, key: usize, f: impl FnOnce(&mut Self)) {
        if catch_unwind(AssertUnwindSafe(|| f(self))).is_ok() {
            return;
        }
        let Some(c) = self.conns.get_mut(key) else {
            tracing::error!("reactor: a Protocol panicked in connection_lost");
            return;
        };
        tracing::error!(
            "reactor: the Protocol for {} panicked; closing its connection",
            c.io.peer
        );
        let reason = CloseReason::Error("the Protocol panicked".into());
        if catch_unwind(AssertUnwindSafe(|| self.finalize(key, reason))).is_err() {
            tracing::error!("reactor: a Protocol panicked in connection_lost");
        }
    }
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
