//! The concurrency modes: the accept loop (poll(2) over every listener plus the
//! stop and wake pipes) and what each mode does with an accepted connection —
//! hand it to the event pool (`pool` and `sequential` with a Protocol factory:
//! a connection holds a worker only while there is work to do for it), serve it
//! inline (`sequential` with a blocking handler), on a worker of a handler pool
//! with a bounded queue (`pool` with a blocking handler), on a new thread
//! (`threads`) or in a child process (`fork`) — and how each drains at shutdown.
//!
//! Out of scope: serving a connection (`conn.rs`), the event pool (`pool.rs`),
//! the fork system calls (`fork.rs`).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{Listener, Stream};
use crate::protocol::PeerAddr;

use super::conn::Ctx;
use super::pool::Pool;
use super::shutdown::{ActiveGuard, Lifecycle};
use super::{fork, sys, ServerError, StreamApp, ACCEPT_PAUSE, AFTER_GRACE};

/// Connections accepted at most from the listen backlog once stopping.
const DRAIN_MAX: usize = 4096;

/// The accept side: polls every listener plus the stop and wake pipes.
///
/// Once the server stops, the connections the kernel already completed (waiting
/// in the listen backlog) are still accepted and served, within the limits and
/// at most [`DRAIN_MAX`], so a restart does not reset them; then the caller
/// closes the listeners.
pub(super) struct Acceptor<'a> {
    listeners: Vec<Listener>,
    life: &'a Lifecycle,
    next: usize,
    paused_until: Option<Instant>,
    draining: bool,
    drained: usize,
}

impl<'a> Acceptor<'a> {
    pub(super) fn new(listeners: Vec<Listener>, life: &'a Lifecycle) -> Self {
        Acceptor {
            listeners,
            life,
            next: 0,
            paused_until: None,
            draining: false,
            drained: 0,
        }
    }

    /// Stops listening: closes every listener (a Unix listener's socket file
    /// goes with it).
    pub(super) fn close(&mut self) {
        self.listeners.clear();
    }

    /// The listeners' descriptors (a forked child closes its copies).
    fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.listeners.iter().map(|l| l.as_raw_fd()).collect()
    }

    /// Once stopping: one connection left in a listen backlog. While the limits
    /// allow no more connections, waits for a slot (until the grace deadline)
    /// rather than leaving a queued client to be reset.
    fn drain_one(&mut self, open: &mut dyn FnMut() -> bool) -> Option<(Stream, PeerAddr)> {
        if self.drained >= DRAIN_MAX {
            return None;
        }
        let deadline = self.life.begin();
        loop {
            let mut fds: Vec<_> = self
                .listeners
                .iter()
                .map(|l| sys::PollFd::new(l.as_raw_fd(), sys::READ))
                .collect();
            if !matches!(sys::poll(&mut fds, Some(Instant::now())), Ok(n) if n > 0) {
                return None;
            }
            if open() {
                break;
            }
            if Instant::now() >= deadline {
                return None;
            }
            let mut wake = [sys::PollFd::new(self.life.wake_fd(), sys::READ)];
            let _ = sys::poll(&mut wake, Some(deadline));
            self.life.drain_wake();
        }
        for l in &self.listeners {
            if let Ok(conn) = l.accept() {
                self.drained += 1;
                return Some(conn);
            }
        }
        None
    }

    /// Waits for the next connection while `open()` says there is room; `None`
    /// once the server is stopping.
    fn accept(&mut self, open: &mut dyn FnMut() -> bool) -> io::Result<Option<(Stream, PeerAddr)>> {
        if self.draining {
            return Ok(self.drain_one(open));
        }
        loop {
            if self.paused_until.is_some_and(|t| Instant::now() >= t) {
                self.paused_until = None;
            }
            let listening = self.paused_until.is_none() && open();
            let mut fds = vec![
                sys::PollFd::new(self.life.stop_fd(), sys::READ),
                sys::PollFd::new(self.life.wake_fd(), sys::READ),
            ];
            if listening {
                fds.extend(
                    self.listeners
                        .iter()
                        .map(|l| sys::PollFd::new(l.as_raw_fd(), sys::READ)),
                );
            }
            sys::poll(&mut fds, self.paused_until)?;
            if fds[0].has(sys::READ) {
                self.life.begin();
                self.draining = true;
                return Ok(self.drain_one(open));
            }
            if fds[1].has(sys::READ) {
                self.life.drain_wake();
            }
            if !listening {
                continue;
            }
            let n = self.listeners.len();
            for k in 0..n {
                let i = (self.next + k) % n;
                if !fds
                    .get(2 + i)
                    .is_some_and(|f| f.has(sys::READ | sys::HANGUP))
                {
                    continue;
                }
                let Some(l) = self.listeners.get(i) else {
                    continue;
                };
                match l.accept() {
                    Ok(conn) => {
                        self.next = (i + 1) % n;
                        return Ok(Some(conn));
                    }
                    Err(e) if is_transient(&e) => {}
                    Err(e) => {
                        tracing::warn!("accept on {} failed: {e}; pausing", l.local_address());
                        self.paused_until = Some(sys::after(ACCEPT_PAUSE));
                    }
                }
            }
        }
    }
}

/// Accept errors that only mean "try again" (the connection went away first).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    ) || e.raw_os_error() == Some(libc::EPROTO)
}

/// `sequential`: a Protocol server is an event pool of one worker, so a
/// connection waiting for its peer never holds up another and no two Protocol
/// callbacks ever run at once; a blocking handler's connections are served to
/// the end, one at a time, on the accepting thread.
pub(super) fn serve_sequential(ctx: &Arc<Ctx>, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    if matches!(ctx.app, StreamApp::Protocol(_)) {
        return serve_events(ctx, acc, 1);
    }
    while let Some((stream, peer)) = acc.accept(&mut || true)? {
        let _guard = ctx.enter(&stream);
        ctx.serve(stream, peer);
    }
    Ok(())
}

/// `threads`: a thread per connection, within `max_conns`.
pub(super) fn serve_threads(ctx: &Arc<Ctx>, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    while let Some((stream, peer)) = acc.accept(&mut || ctx.below_limit(ctx.life.active()))? {
        let guard = ctx.enter(&stream);
        let c = ctx.clone();
        let spawned = thread::Builder::new()
            .name("netkit-conn".into())
            .spawn(move || {
                let _guard = guard;
                c.serve(stream, peer);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a connection thread: {e}; connection dropped");
        }
    }
    Ok(())
}

/// A handler pool job: an accepted connection, counted in flight while queued.
type Job = (Stream, PeerAddr, ActiveGuard);

/// `pool`: `workers` threads. A Protocol server runs them as an event pool
/// (`pool.rs`), accepting as long as `max_conns` allows. A blocking handler
/// keeps a worker for its whole connection (it reads with blocking calls), so
/// its workers take connections from a queue of `workers` slots, and while
/// every worker is busy and the queue is full, accepting stops.
pub(super) fn serve_pool(ctx: &Arc<Ctx>, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    let workers = ctx.config.workers.max(1);
    if matches!(ctx.app, StreamApp::Protocol(_)) {
        return serve_events(ctx, acc, workers);
    }
    let (tx, rx) = mpsc::sync_channel::<Job>(workers);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..workers {
        let (rx, c) = (rx.clone(), ctx.clone());
        thread::Builder::new()
            .name("netkit-worker".into())
            .spawn(move || worker(&rx, &c))?;
    }
    let capacity = workers * 2;
    let mut open = || {
        let active = ctx.life.active();
        active < capacity && ctx.below_limit(active)
    };
    while let Some((stream, peer)) = acc.accept(&mut open)? {
        let guard = ctx.enter(&stream);
        if tx.send((stream, peer, guard)).is_err() {
            tracing::error!("the worker pool is gone; connection dropped");
        }
    }
    Ok(())
}

/// The event pool: every accepted connection goes to the pool at once (only
/// `max_conns` bounds them); at a shutdown, the listeners close and every
/// connection is served through the grace period before the pool stops.
fn serve_events(ctx: &Arc<Ctx>, acc: &mut Acceptor<'_>, workers: usize) -> Result<(), ServerError> {
    let pool = Pool::start(ctx, workers)?;
    while let Some((stream, peer)) = acc.accept(&mut || ctx.below_limit(ctx.life.active()))? {
        let guard = ctx.enter(&stream);
        pool.open(stream, peer, guard);
    }
    acc.close();
    wait_for_connections(&ctx.life);
    pool.stop();
    Ok(())
}

/// A handler pool worker: serves queued connections until the queue closes.
fn worker(rx: &Mutex<mpsc::Receiver<Job>>, ctx: &Ctx) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            rx.recv()
        };
        let Ok((stream, peer, guard)) = job else {
            return;
        };
        ctx.serve(stream, peer);
        drop(guard);
    }
}

/// `fork`: a child process per connection, within `max_conns`; children are
/// reaped as they exit.
pub(super) fn serve_fork(ctx: &Ctx, acc: &mut Acceptor<'_>) -> Result<(), ServerError> {
    let sigchld = signal_hook::low_level::pipe::register(
        signal_hook::consts::SIGCHLD,
        ctx.life.wake_writer()?,
    )?;
    let mut children = fork::Children::default();
    let result = fork_loop(ctx, acc, &mut children);
    acc.close();
    drain_children(ctx, &mut children);
    signal_hook::low_level::unregister(sigchld);
    result
}

fn fork_loop(
    ctx: &Ctx,
    acc: &mut Acceptor<'_>,
    children: &mut fork::Children,
) -> Result<(), ServerError> {
    loop {
        let mut open = || {
            children.reap();
            ctx.below_limit(children.len())
        };
        let Some((stream, peer)) = acc.accept(&mut open)? else {
            return Ok(());
        };
        match fork::fork() {
            Ok(fork::Forked::Child) => {
                // The child serves one connection: its copies of the listeners
                // would keep them open (and queueing) after the parent closes them.
                fork::close_fds(&acc.raw_fds());
                ctx.serve(stream, peer);
                fork::exit_child(0);
            }
            Ok(fork::Forked::Parent(pid)) => children.add(pid),
            Err(e) => tracing::error!(%peer, "fork failed: {e}; connection dropped"),
        }
    }
}

/// After a shutdown: waits for the children through the grace period, then
/// kills the ones left.
fn drain_children(ctx: &Ctx, children: &mut fork::Children) {
    let deadline = ctx.life.begin();
    let kill_at = deadline + Duration::from_millis(500);
    let give_up = kill_at + AFTER_GRACE;
    let mut killed = false;
    loop {
        children.reap();
        if children.len() == 0 {
            return;
        }
        let now = Instant::now();
        if now >= give_up {
            tracing::warn!("{} child processes did not exit", children.len());
            return;
        }
        if now >= kill_at && !killed {
            tracing::info!(
                "grace period over: killing {} child processes",
                children.len()
            );
            children.signal_all(libc::SIGKILL);
            killed = true;
        }
        let next = if killed { give_up } else { kill_at };
        let mut fds = [sys::PollFd::new(ctx.life.wake_fd(), sys::READ)];
        let _ = sys::poll(
            &mut fds,
            Some(next.min(sys::after(Duration::from_millis(100)))),
        );
        ctx.life.drain_wake();
    }
}

/// Waits for connections in flight to end: through the grace period (runners and
/// the watchdog close them when it ends) and a little after.
pub(super) fn wait_for_connections(life: &Lifecycle) {
    let deadline = life.begin();
    let give_up = deadline + AFTER_GRACE;
    while life.active() > 0 {
        if Instant::now() >= give_up {
            tracing::warn!("{} connections did not finish", life.active());
            return;
        }
        let mut fds = [sys::PollFd::new(life.wake_fd(), sys::READ)];
        let _ = sys::poll(&mut fds, Some(give_up));
        life.drain_wake();
    }
}

/// Shuts down blocking handlers' sockets when the grace period ends (a blocking
/// read cannot watch the stop pipe). Stops when dropped.
pub(super) struct Watchdog {
    done: Option<std::os::unix::net::UnixStream>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    pub(super) fn spawn(life: &Arc<Lifecycle>) -> io::Result<Watchdog> {
        let (done_rx, done_tx) = std::os::unix::net::UnixStream::pair()?;
        let life = life.clone();
        let thread = thread::Builder::new()
            .name("netkit-watchdog".into())
            .spawn(move || {
                let mut fds = [
                    sys::PollFd::new(life.stop_fd(), sys::READ),
                    sys::PollFd::new(done_rx.as_raw_fd(), sys::READ),
                ];
                if sys::poll(&mut fds, None).is_err() || fds[1].revents() != 0 {
                    return;
                }
                let deadline = life.begin();
                let mut fds = [sys::PollFd::new(done_rx.as_raw_fd(), sys::READ)];
                if matches!(sys::poll(&mut fds, Some(deadline)), Ok(0)) {
                    let n = life.close_blocking();
                    if n > 0 {
                        tracing::info!("grace period over: closed {n} connections");
                    }
                }
            })?;
        Ok(Watchdog {
            done: Some(done_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
