//! One event loop: a `mio::Poll`, the connections it owns (in a generational
//! slab, `slab`), its listeners and datagram sockets (`sockets`), its timers and
//! its ready list. It decides when to accept, read, flush, call the Protocol and
//! close. Building and starting loops is `mod.rs`'s job; a connection's write
//! queue and Transport are in `conn`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Interest, Poll, Token, Waker};

use super::conn::{drained_reason, loop_idle_check, Conn, ConnIo, Ctx, Sock, Timer, Tx, WokenList};
use super::slab::{idx_of, kind_of, token, Slab, KIND_CONN, KIND_DGRAM, KIND_LISTENER, WAKER};
pub(crate) use super::sockets::{DgramSock, ListenSock};
use super::{mailbox_overflow, ConnectState, ConnectTo, Shared};
use crate::net::{max_datagram_size, recv_datagram, Recv, TruncationLog};
use crate::protocol::{CloseReason, ConnInfo, DatagramService, DynFactory, PeerAddr, Protocol};

/// The shared read buffer's size: one per loop.
const READ_BUF: usize = 64 * 1024;
/// Reads per connection per turn (with the byte budget from the config).
const READS_PER_TURN: usize = 16;
/// `resume_producing` calls per connection per turn.
const PRODUCE_TURNS: usize = 16;
/// Accepts per listener per turn.
const ACCEPTS_PER_TURN: usize = 128;
/// At shutdown, accept turns per listener to empty its queue (32 × the per-turn
/// budget: 4096 connections, the most a backlog holds).
const SHUTDOWN_ACCEPT_TURNS: usize = 32;
/// Datagrams per socket per turn.
const DATAGRAMS_PER_TURN: usize = 64;
/// How long a listener rests after running out of file descriptors.
const EMFILE_PAUSE: Duration = Duration::from_millis(100);

/// Work handed to a loop from another thread.
pub(crate) enum Cmd {
    /// Start a client connection.
    Connect {
        to: ConnectTo,
        proto: Box<dyn Protocol>,
        timeout: Duration,
        state: Arc<ConnectState>,
    },
}

/// The part of a loop other threads reach: its waker and inboxes.
pub(crate) struct LoopShared {
    waker: Waker,
    pub(crate) woken: WokenList,
    pub(crate) cmds: Mutex<Vec<Cmd>>,
    /// Accept again: a connection slot was freed after `max_conns` was reached.
    pub(crate) retry_accept: AtomicBool,
    /// Connections open on this loop.
    pub(crate) conns: AtomicUsize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LoopShared {
    pub(crate) fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            tracing::warn!("reactor: waking a loop failed: {e}");
        }
    }

    /// A mailbox went non-empty: note the connection and rouse the loop.
    pub(crate) fn wake_conn(&self, token: usize) {
        let was_empty = {
            let mut w = lock(&self.woken);
            let was_empty = w.is_empty();
            w.push(token);
            was_empty
        };
        if was_empty {
            self.wake();
        }
    }

    pub(crate) fn send(&self, cmd: Cmd) {
        lock(&self.cmds).push(cmd);
        self.wake();
    }
}

/// Makes a loop's poll and the waker other threads use.
pub(crate) fn new_poll() -> io::Result<(Poll, Arc<LoopShared>)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    Ok((
        poll,
        Arc::new(LoopShared {
            waker,
            woken: Mutex::new(Vec::new()),
            cmds: Mutex::new(Vec::new()),
            retry_accept: AtomicBool::new(false),
            conns: AtomicUsize::new(0),
        }),
    ))
}

struct ListenerEntry {
    sock: ListenSock,
    factory: DynFactory,
    /// The listener's address; `None` when bound to a wildcard IP (ask the socket).
    local: Option<PeerAddr>,
    paused: bool,
}

struct DgramEntry {
    sock: DgramSock,
    service: Arc<dyn DatagramService>,
    ready: bool,
    /// Sized to take any datagram the socket can carry whole.
    buf: Vec<u8>,
    truncations: TruncationLog,
}

/// Where a new connection's Protocol comes from.
enum Source {
    Factory(DynFactory),
    Ready(Box<dyn Protocol>, Arc<ConnectState>, Duration),
}

/// One event loop and everything it owns.
pub(crate) struct Loop {
    poll: Poll,
    shared: Arc<Shared>,
    conns: Slab,
    listeners: Vec<ListenerEntry>,
    dgrams: Vec<DgramEntry>,
    ctx: Ctx,
    buf: Vec<u8>,
    mail: Vec<Bytes>,
    woken: Vec<usize>,
    accept_pending: bool,
    shutting_down: bool,
}

impl Loop {
    pub(crate) fn new(poll: Poll, ls: Arc<LoopShared>, shared: Arc<Shared>) -> Loop {
        let mailbox_limit = shared.config.mailbox_limit;
        Loop {
            poll,
            shared,
            conns: Slab::default(),
            listeners: Vec::new(),
            dgrams: Vec::new(),
            ctx: Ctx {
                now: Instant::now(),
                timers: BTreeMap::new(),
                timer_at: HashMap::new(),
                seq: 0,
                ready: VecDeque::new(),
                ls,
                mailbox_limit,
            },
            buf: vec![0; READ_BUF],
            mail: Vec::new(),
            woken: Vec::new(),
            accept_pending: false,
            shutting_down: false,
        }
    }

    /// The poll (for its waker) and shared state, for a loop of another backend.
    #[cfg(target_os = "linux")]
    pub(crate) fn into_poll(self) -> (Poll, Arc<LoopShared>) {
        (self.poll, self.ctx.ls)
    }

    pub(crate) fn add_listener(
        &mut self,
        mut sock: ListenSock,
        factory: DynFactory,
        local: PeerAddr,
    ) -> io::Result<()> {
        let idx = self.listeners.len();
        let t = Token(token(KIND_LISTENER, 0, idx));
        self.poll
            .registry()
            .register(sock.source(), t, Interest::READABLE)?;
        let wildcard = local.inet().is_some_and(|a| a.ip().is_unspecified());
        self.listeners.push(ListenerEntry {
            sock,
            factory,
            local: (!wildcard).then_some(local),
            paused: false,
        });
        Ok(())
    }

    pub(crate) fn add_datagram(
        &mut self,
        mut sock: DgramSock,
        service: Arc<dyn DatagramService>,
    ) -> io::Result<()> {
        let idx = self.dgrams.len();
        let t = Token(token(KIND_DGRAM, 0, idx));
        self.poll
            .registry()
            .register(sock.source(), t, Interest::READABLE)?;
        let size =
            (self.shared.config.max_datagram).unwrap_or_else(|| max_datagram_size(sock.is_unix()));
        let buf = vec![0; size];
        self.dgrams.push(DgramEntry {
            sock,
            service,
            // Datagrams may have arrived before the loop started.
            ready: true,
            buf,
            truncations: TruncationLog::default(),
        });
        Ok(())
    }

    /// Runs until shutdown has finished every connection.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        self.ctx.now = Instant::now();
        self.handle_wake();
        self.accept_pending = true;
        loop {
            if self.shutting_down && self.conns.len == 0 {
                break;
            }
            let busy = !self.ctx.ready.is_empty()
                || self.accept_pending
                || self.dgrams.iter().any(|d| d.ready);
            let timeout = if busy {
                Some(Duration::ZERO)
            } else {
                self.ctx
                    .next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.ctx.now = Instant::now();
            let mut woke = false;
            for ev in events.iter() {
                let t = ev.token().0;
                match kind_of(t) {
                    KIND_CONN => self.guard(t, |lp| lp.conn_event(t, ev)),
                    KIND_LISTENER => self.accept(idx_of(t)),
                    KIND_DGRAM => {
                        if let Some(d) = self.dgrams.get_mut(idx_of(t)) {
                            d.ready = true;
                        }
                        self.serve_datagrams(idx_of(t));
                    }
                    _ => woke = true,
                }
            }
            if woke {
                self.handle_wake();
            }
            self.fire_timers();
            self.run_ready();
        }
        Ok(())
    }

    /// Another thread woke the loop: shutdown, commands, mail, accepting again.
    fn handle_wake(&mut self) {
        if self.shared.shutdown.load(Ordering::SeqCst) && !self.shutting_down {
            self.begin_shutdown();
        }
        let cmds = std::mem::take(&mut *lock(&self.ctx.ls.cmds));
        for cmd in cmds {
            match cmd {
                Cmd::Connect {
                    to,
                    proto,
                    timeout,
                    state,
                } => self.start_connect(to, proto, timeout, state),
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
            self.accept_pending = true;
        }
    }

    fn begin_shutdown(&mut self) {
        // Connections the kernel already completed were promised service: take
        // them (within the connection limit) before the listeners close, as the
        // blocking modes do, so a rolling restart resets no queued client.
        for li in 0..self.listeners.len() {
            for _ in 0..SHUTDOWN_ACCEPT_TURNS {
                let before = self.conns.len;
                self.accept(li);
                if self.conns.len == before {
                    break;
                }
            }
        }
        self.shutting_down = true;
        for mut l in self.listeners.drain(..) {
            // Deregister explicitly: other loops hold duplicates of shared listeners.
            let _ = self.poll.registry().deregister(l.sock.source());
        }
        for mut d in self.dgrams.drain(..) {
            let _ = self.poll.registry().deregister(d.sock.source());
        }
        let at = self.ctx.now + self.shared.config.grace;
        self.ctx.add_timer(at, Timer::Grace);
    }

    /// Accepts what is waiting on listener `li`, within the turn's budget.
    fn accept(&mut self, li: usize) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(l) = self.listeners.get_mut(li) else {
                return;
            };
            if l.paused || self.shutting_down {
                return;
            }
            if !self.shared.reserve_slot() {
                // At max_conns; a close wakes every loop to accept again.
                return;
            }
            match l.sock.accept() {
                Ok((sock, peer)) => {
                    let local = match &l.local {
                        Some(a) => Ok(a.clone()),
                        None => sock.local(),
                    };
                    let factory = l.factory.clone();
                    match local {
                        Ok(local) => {
                            self.add_conn(sock, peer, local, Source::Factory(factory));
                        }
                        Err(e) => {
                            tracing::debug!("reactor: accepted socket failed: {e}");
                            self.shared.release_slot();
                        }
                    }
                }
                Err(e) => {
                    self.shared.release_slot();
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return,
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                        _ if is_out_of_fds(&e) => {
                            tracing::warn!(
                                "reactor: accept failed ({e}); pausing this listener for {:?}",
                                EMFILE_PAUSE
                            );
                            l.paused = true;
                            let at = self.ctx.now + EMFILE_PAUSE;
                            self.ctx.add_timer(at, Timer::AcceptResume(li));
                            return;
                        }
                        _ => {
                            tracing::warn!("reactor: accept failed: {e}");
                            return;
                        }
                    }
                }
            }
        }
        // Budget spent: more may be waiting and edge triggering will not say so.
        self.accept_pending = true;
    }

    /// Registers a new connection and starts its Protocol (or its connect).
    fn add_conn(&mut self, mut sock: Sock, peer: PeerAddr, local: PeerAddr, src: Source) {
        let accepted = matches!(src, Source::Factory(_));
        let (idx, gen) = self.conns.vacant();
        let t = token(KIND_CONN, gen, idx);
        if let Err(e) = sock.register(self.poll.registry(), Token(t)) {
            self.conns.give_back(idx);
            match src {
                Source::Factory(_) => {
                    tracing::warn!("reactor: registering a connection failed: {e}");
                    self.shared.release_slot();
                }
                Source::Ready(_, state, _) => state.finish(Err(e)),
            }
            return;
        }
        let now = self.ctx.now;
        let mut io = ConnIo::new(sock, t, peer, local, now);
        io.accepted = accepted;
        let proto = match src {
            Source::Factory(f) => {
                let info = ConnInfo {
                    peer: io.peer.clone(),
                    local: io.local.clone(),
                };
                if let Some(idle) = self.shared.config.idle_timeout {
                    self.ctx.add_timer(now + idle, Timer::Idle(t));
                }
                match catch_unwind(AssertUnwindSafe(|| f.build(&info))) {
                    Ok(p) => p,
                    Err(_) => {
                        tracing::error!("reactor: the factory panicked building a Protocol for {}; dropping the connection", info.peer);
                        drop(io);
                        self.conns.give_back(idx);
                        self.shared.release_slot();
                        return;
                    }
                }
            }
            Source::Ready(p, state, timeout) => {
                io.connecting = Some(state);
                io.write_ready = false;
                self.ctx.add_timer(now + timeout, Timer::ConnectTimeout(t));
                p
            }
        };
        let connecting = io.connecting.is_some();
        self.conns.insert(idx, Conn { proto, io });
        self.ctx.ls.conns.fetch_add(1, Ordering::SeqCst);
        if !connecting {
            self.guard(t, |lp| lp.made(t));
        }
    }

    /// `connection_made`, then whatever it asked for.
    fn made(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(t) else {
            return;
        };
        c.proto.connection_made(&mut Tx {
            io: &mut c.io,
            ctx: &mut self.ctx,
        });
        self.drive(t);
    }

    fn start_connect(
        &mut self,
        to: ConnectTo,
        proto: Box<dyn Protocol>,
        timeout: Duration,
        state: Arc<ConnectState>,
    ) {
        if self.shutting_down {
            state.finish(Err(io::Error::other("the reactor is shutting down")));
            return;
        }
        let (sock, peer) = match &to {
            ConnectTo::Tcp(a) => (
                mio::net::TcpStream::connect(*a).map(Sock::Tcp),
                PeerAddr::Inet(*a),
            ),
            ConnectTo::Unix(p) => (
                mio::net::UnixStream::connect(p).map(Sock::Unix),
                PeerAddr::Unix(Some(p.clone())),
            ),
        };
        match sock {
            Ok(sock) => self.add_conn(
                sock,
                peer,
                PeerAddr::Unix(None),
                Source::Ready(proto, state, timeout),
            ),
            Err(e) => state.finish(Err(e)),
        }
    }

    /// A client connect made progress: finish it or fail it.
    fn finish_connect(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(t) else {
            return;
        };
        let outcome = match c.io.sock.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match c.io.sock.peer() {
                Ok(peer) => Ok(peer),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(peer) => {
                c.io.peer = peer;
                if let Ok(local) = c.io.sock.local() {
                    c.io.local = local;
                }
                if let Some(state) = c.io.connecting.take() {
                    state.finish(Ok(()));
                }
                c.io.write_ready = true;
                self.guard(t, |lp| lp.made(t));
            }
            Err(e) => self.fail_connect(t, e),
        }
    }

    /// A connect failed: drop the connection without Protocol calls.
    fn fail_connect(&mut self, t: usize, e: io::Error) {
        if let Some(c) = self.conns.remove(t) {
            self.ctx.ls.conns.fetch_sub(1, Ordering::SeqCst);
            if let Some(state) = &c.io.connecting {
                state.finish(Err(e));
            }
        }
    }

    fn conn_event(&mut self, t: usize, ev: &mio::event::Event) {
        let Some(c) = self.conns.get_mut(t) else {
            return;
        };
        let io = &mut c.io;
        if ev.is_read_closed() || ev.is_error() {
            io.rdhup = true;
            io.read_ready = true;
        }
        if ev.is_readable() {
            io.read_ready = true;
        }
        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
            io.write_ready = true;
        }
        if io.connecting.is_some() {
            if io.write_ready {
                self.finish_connect(t);
            }
            return;
        }
        self.drive(t);
    }

    /// Reads what the budget allows, then settles the connection.
    fn drive(&mut self, t: usize) {
        self.read(t);
        self.settle(t);
    }

    fn read(&mut self, t: usize) {
        let budget = self.shared.config.read_budget;
        let high = self.shared.config.high_water;
        let Loop {
            conns, ctx, buf, ..
        } = self;
        let Some(c) = conns.get_mut(t) else {
            return;
        };
        let (mut reads, mut bytes) = (0, 0);
        while c.io.can_read() {
            if reads >= READS_PER_TURN || bytes >= budget {
                c.io.schedule(&mut ctx.ready);
                return;
            }
            match c.io.sock.read(buf) {
                Ok(0) => {
                    c.io.read_ready = false;
                    c.io.peer_eof = true;
                    c.proto.eof_received(&mut Tx { io: &mut c.io, ctx });
                }
                Ok(n) => {
                    reads += 1;
                    bytes += n;
                    c.io.last_read = ctx.now;
                    if n < buf.len() && !c.io.rdhup {
                        // A short read drained the socket; new data raises a new edge.
                        c.io.read_ready = false;
                    }
                    let data = buf.get(..n).unwrap_or_default();
                    c.proto.data_received(data, &mut Tx { io: &mut c.io, ctx });
                    if c.io.queued() > high {
                        c.io.bp_paused = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.io.read_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.io.read_ready = false;
                    c.io.error = Some(e);
                }
            }
        }
    }

    /// After any event: flush, close if asked and flushed, apply back-pressure,
    /// feed producers.
    fn settle(&mut self, t: usize) {
        let high = self.shared.config.high_water;
        let low = self.shared.config.low_water;
        let Loop { conns, ctx, .. } = self;
        let Some(c) = conns.get_mut(t) else {
            return;
        };
        let mut turns = 0;
        let reason = loop {
            let io = &mut c.io;
            if io.connecting.is_some() {
                break None;
            }
            if io.aborting {
                break Some(CloseReason::Aborted);
            }
            if io.queued() > 0 && io.write_ready {
                io.flush();
            }
            if let Some(e) = io.error.take() {
                break Some(CloseReason::Error(e.to_string()));
            }
            if io.queued() == 0 {
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
                if io.read_ready || io.mail_waiting {
                    io.schedule(&mut ctx.ready);
                }
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
            self.finalize(t, r);
        }
    }

    /// Removes a connection, closes its socket and tells its Protocol, last.
    fn finalize(&mut self, t: usize, reason: CloseReason) {
        let Some(mut c) = self.conns.remove(t) else {
            return;
        };
        self.ctx.ls.conns.fetch_sub(1, Ordering::SeqCst);
        if let Some(rx) = c.io.mailbox.take() {
            rx.close();
        }
        let Conn { mut proto, io } = c;
        let accepted = io.accepted;
        let peer = io.peer.clone();
        drop(io);
        if accepted {
            self.shared.release_slot();
        }
        tracing::debug!("reactor: {peer}: {reason}");
        proto.connection_lost(&reason);
    }

    /// Delivers a connection's mailbox.
    fn deliver_mail(&mut self, t: usize) {
        let Loop {
            conns, ctx, mail, ..
        } = self;
        let Some(c) = conns.get_mut(t) else {
            return;
        };
        let Some(rx) = &c.io.mailbox else {
            return;
        };
        if c.io.bp_paused && !c.io.mail_waiting {
            // The peer is behind: leave the mail in the mailbox, whose bound then
            // stops the senders. The next wake-up while waiting is the overflow one.
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
            self.finalize(t, mailbox_overflow());
        } else {
            self.settle(t);
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
                Timer::ConnectTimeout(t) => {
                    let pending = self
                        .conns
                        .get_mut(t)
                        .is_some_and(|c| c.io.connecting.is_some());
                    if pending {
                        let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                        self.fail_connect(t, e);
                    }
                }
                Timer::AcceptResume(li) => {
                    if let Some(l) = self.listeners.get_mut(li) {
                        l.paused = false;
                    }
                    self.accept(li);
                }
                Timer::Grace => self.close_all(),
            }
        }
    }

    /// A Protocol timer fired.
    fn timer(&mut self, t: usize, id: crate::protocol::TimerId) {
        let Loop { conns, ctx, .. } = self;
        if let Some(c) = conns.get_mut(t) {
            if c.io.live() {
                c.proto.timer_fired(id, &mut Tx { io: &mut c.io, ctx });
            }
            self.settle(t);
        }
    }

    /// Runs `f`, which calls connection `t`'s Protocol; if that panics, the
    /// connection is dropped (its Protocol told with `CloseReason::Error`) and the
    /// loop carries on serving the others, as Twisted logs and drops.
    fn guard(&mut self, t: usize, f: impl FnOnce(&mut Self)) {
        if catch_unwind(AssertUnwindSafe(|| f(self))).is_ok() {
            return;
        }
        let Some(mut c) = self.conns.remove(t) else {
            tracing::error!("reactor: a Protocol panicked in connection_lost");
            return;
        };
        tracing::error!(
            "reactor: the Protocol for {} panicked; closing its connection",
            c.io.peer
        );
        self.ctx.ls.conns.fetch_sub(1, Ordering::SeqCst);
        if let Some(rx) = c.io.mailbox.take() {
            rx.close();
        }
        if let Some(state) = c.io.connecting.take() {
            state.finish(Err(io::Error::other("the Protocol panicked")));
        }
        let Conn { mut proto, io } = c;
        let accepted = io.accepted;
        drop(io);
        if accepted {
            self.shared.release_slot();
        }
        let reason = CloseReason::Error("the Protocol panicked".into());
        if catch_unwind(AssertUnwindSafe(|| proto.connection_lost(&reason))).is_err() {
            tracing::error!("reactor: a Protocol panicked in connection_lost");
        }
    }

    loop_idle_check!();

    /// The grace period is over: close what is left with `CloseReason::Shutdown`.
    fn close_all(&mut self) {
        for t in self.conns.tokens() {
            if let Some(c) = self.conns.get_mut(t) {
                if c.io.connecting.is_some() {
                    let e = io::Error::other("the reactor shut down");
                    self.fail_connect(t, e);
                    continue;
                }
                if c.io.write_ready {
                    c.io.flush();
                }
                tracing::info!(peer = %c.io.peer, "closed: {}", CloseReason::Shutdown);
            }
            self.guard(t, |lp| lp.finalize(t, CloseReason::Shutdown));
        }
    }

    /// Connections, listeners and sockets with work left from an earlier turn.
    fn run_ready(&mut self) {
        for _ in 0..self.ctx.ready.len() {
            let Some(t) = self.ctx.ready.pop_front() else {
                break;
            };
            let Some(c) = self.conns.get_mut(t) else {
                continue;
            };
            c.io.in_ready = false;
            self.guard(t, |lp| {
                lp.drive(t);
                let mail = lp
                    .conns
                    .get_mut(t)
                    .is_some_and(|c| c.io.mail_waiting && !c.io.bp_paused);
                if mail {
                    lp.deliver_mail(t);
                }
            });
        }
        if std::mem::take(&mut self.accept_pending) {
            for li in 0..self.listeners.len() {
                self.accept(li);
            }
        }
        for i in 0..self.dgrams.len() {
            if self.dgrams.get(i).is_some_and(|d| d.ready) {
                self.serve_datagrams(i);
            }
        }
    }

    /// Answers the datagrams waiting on socket `i`, within the turn's budget.
    fn serve_datagrams(&mut self, i: usize) {
        let Some(d) = self.dgrams.get_mut(i) else {
            return;
        };
        for _ in 0..DATAGRAMS_PER_TURN {
            match recv_datagram(d.sock.as_fd(), &mut d.buf) {
                Ok(Recv {
                    truncated: true,
                    len,
                    peer,
                }) => {
                    let local = d.sock.local_name();
                    d.truncations.note(&local, &peer, len);
                }
                Ok(Recv { len, peer, .. }) => {
                    let data = d.buf.get(..len).unwrap_or_default();
                    let service = &d.service;
                    let answer =
                        catch_unwind(AssertUnwindSafe(|| service.datagram_received(data, &peer)));
                    let answer = answer.unwrap_or_else(|_| {
                        tracing::error!(
                            "reactor: the datagram service panicked on a datagram from {peer}"
                        );
                        None
                    });
                    if let Some(reply) = answer {
                        if let Err(e) = d.sock.send_to(&reply, &peer) {
                            tracing::debug!("reactor: reply to {peer} dropped: {e}");
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    d.ready = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => tracing::debug!("reactor: datagram receive failed: {e}"),
            }
        }
    }
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
