//! The pool of `pool` and `sequential` mode for Protocols, shaped like Apache's
//! event MPM rather than its prefork: a connection holds a worker only while
//! there is work to do for it.
//!
//! Every connection is a [`Session`] (`session.rs`), run in turns. Between turns
//! it is *parked* in one waiter thread, which watches every parked socket in an
//! epoll set (`mio`) with the interest the last turn asked for, and keeps the
//! sessions' next deadlines (timers, idle, grace, linger) in an ordered map that
//! becomes the epoll timeout. When a parked socket is ready, a deadline passes,
//! or a mailbox post wakes it, the waiter queues the connection to the workers;
//! the first free worker runs one turn (read until the socket would block within
//! a budget, deliver, fire due timers, flush until it would block) and hands the
//! connection back. So a client sending a byte a second, a stalled TLS
//! handshake, a half-sent HTTP header or a peer that never reads waits in the
//! waiter, never on a worker, and a fresh client is served while thousands
//! wait. Accepting is bounded only by `--max-conns`.
//!
//! The waiter alone changes the epoll set, and only for connections it holds: a
//! connection is registered (or re-armed, epoll's `EPOLL_CTL_MOD`, which reports
//! readiness that is already there) when it is parked, so an event that arrives
//! while a worker has the connection is not lost, and one for a connection that
//! is not parked is dropped. Connection ids are never reused, so a stale event
//! cannot reach a later connection. A mailbox post sets the connection's
//! `pending` flag and names it to the waiter; a worker clears the flag before a
//! turn, and a connection handed back with the flag set is queued again at once.
//!
//! The cost: every turn passes a connection from the waiter to a worker and
//! back (a queue, a condition variable, the waiter's eventfd and an
//! `epoll_ctl`), so with a few busy connections a ping-pong's latency is higher
//! than with a thread per connection; in exchange no number of idle, slow or
//! stalled connections can keep a fresh one from being served, and a parked
//! connection costs no thread and no read buffer (the workers lend theirs).
//!
//! At a shutdown every connection is in the waiter or on a worker, so all of
//! them are served through the grace period as in every other mode; when it
//! ends the waiter runs one last turn for each, which closes it.
//!
//! Out of scope: accepting (`modes.rs`), blocking [`Handler`](super::Handler)s,
//! which read with blocking calls and so keep a worker for their whole
//! connection (`modes.rs`'s handler pool).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::net::Stream;
use crate::protocol::{CloseReason, PeerAddr, Wake};

use super::conn::{log_close, panic_message, Ctx};
use super::session::{Ready, Session, Step, Wait, READ_CHUNK};
use super::shutdown::{ActiveGuard, Lifecycle};
use super::sys;

/// The waiter's token for its waker.
const WAKE: Token = Token(usize::MAX);
/// The waiter's token for the server's stop pipe.
const STOP: Token = Token(usize::MAX - 1);
/// Events taken per `epoll_wait`.
const EVENTS: usize = 1024;

/// A running pool: the waiter and the workers. Stops them when dropped.
pub(super) struct Pool {
    shared: Arc<Shared>,
}

/// What the accept loop, the waiter and the workers share.
struct Shared {
    jobs: Mutex<VecDeque<Job>>,
    job_ready: Condvar,
    back: Mutex<Vec<(Box<Conn>, Wait)>>,
    woken: Mutex<Vec<u64>>,
    waker: Waker,
    exit: AtomicBool,
    next_id: AtomicU64,
}

/// Work for a worker.
enum Job {
    /// A connection just accepted: build its Protocol and run its first turn.
    Open(Stream, PeerAddr, ActiveGuard),
    /// A turn of a connection the waiter held.
    Turn(Box<Conn>, Ready),
}

/// A connection between turns.
struct Conn {
    id: u64,
    session: Session,
    notify: Arc<Notify>,
    registered: bool,
    _guard: ActiveGuard,
}

/// A connection's mailbox wake: flags the connection and names it to the waiter.
struct Notify {
    id: u64,
    pending: AtomicBool,
    shared: Weak<Shared>,
}

impl Wake for Notify {
    fn wake(&self) {
        if self.pending.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            if push(&shared.woken, self.id) {
                let _ = shared.waker.wake();
            }
        }
    }
}

/// Locks a mutex whose data stays usable after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pushes onto a waiter inbox; whether it was empty (then the waiter needs a wake:
/// otherwise one is on its way for the items already there).
fn push<T>(inbox: &Mutex<Vec<T>>, item: T) -> bool {
    let mut v = lock(inbox);
    v.push(item);
    v.len() == 1
}

impl Pool {
    /// Starts the waiter and `workers` worker threads.
    pub(super) fn start(ctx: &Arc<Ctx>, workers: usize) -> io::Result<Pool> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let stop_fd = ctx.life.stop_fd();
        poll.registry()
            .register(&mut SourceFd(&stop_fd), STOP, Interest::READABLE)?;
        let shared = Arc::new(Shared {
            jobs: Mutex::new(VecDeque::new()),
            job_ready: Condvar::new(),
            back: Mutex::new(Vec::new()),
            woken: Mutex::new(Vec::new()),
            waker,
            exit: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        });
        let pool = Pool {
            shared: shared.clone(),
        };
        let life = ctx.life.clone();
        let s = shared.clone();
        thread::Builder::new()
            .name("netkit-waiter".into())
            .spawn(move || Waiter::new(poll, s, life).run())?;
        for _ in 0..workers.max(1) {
            let (s, c) = (shared.clone(), ctx.clone());
            thread::Builder::new()
                .name("netkit-worker".into())
                .spawn(move || worker(&s, &c))?;
        }
        Ok(pool)
    }

    /// Hands an accepted connection to the workers.
    pub(super) fn open(&self, stream: Stream, peer: PeerAddr, guard: ActiveGuard) {
        self.shared.queue(Job::Open(stream, peer, guard));
    }

    /// Tells the waiter and the workers to exit (connections still held are
    /// dropped: call this once none are left).
    pub(super) fn stop(&self) {
        self.shared.exit.store(true, Ordering::SeqCst);
        self.shared.job_ready.notify_all();
        let _ = self.shared.waker.wake();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    /// Queues a job for the first free worker.
    fn queue(&self, job: Job) {
        lock(&self.jobs).push_back(job);
        self.job_ready.notify_one();
    }

    /// The next job; `None` once the pool stops.
    fn next_job(&self) -> Option<Job> {
        let mut jobs = lock(&self.jobs);
        loop {
            if self.exit.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(job) = jobs.pop_front() {
                return Some(job);
            }
            jobs = self.job_ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Gives a connection back to the waiter after a turn.
    fn hand_back(&self, conn: Box<Conn>, wait: Wait) {
        if push(&self.back, (conn, wait)) {
            let _ = self.waker.wake();
        }
    }
}

/// A worker: runs turns until the pool stops.
fn worker(shared: &Arc<Shared>, ctx: &Ctx) {
    let mut buf = vec![0u8; READ_CHUNK];
    while let Some(job) = shared.next_job() {
        let (conn, ready) = match job {
            Job::Turn(conn, ready) => (conn, ready),
            Job::Open(stream, peer, guard) => match open(shared, ctx, stream, peer, guard) {
                // Data often arrives with the connection: read at once.
                Some(conn) => (conn, Ready::readable()),
                None => continue,
            },
        };
        turn(shared, conn, ready, &mut buf);
    }
}

/// Builds a new connection's session (its Protocol, through the factory).
fn open(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    stream: Stream,
    peer: PeerAddr,
    guard: ActiveGuard,
) -> Option<Box<Conn>> {
    tracing::debug!(%peer, "connection");
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let notify = Arc::new(Notify {
        id,
        pending: AtomicBool::new(false),
        shared: Arc::downgrade(shared),
    });
    let wake: Arc<dyn Wake> = notify.clone();
    let built = panic::catch_unwind(AssertUnwindSafe(|| {
        ctx.session(stream, peer.clone(), Some(wake))
    }));
    let session = match built {
        Ok(s) => s?,
        Err(p) => {
            tracing::error!(%peer, "handler panicked: {}", panic_message(&*p));
            return None;
        }
    };
    Some(Box::new(Conn {
        id,
        session,
        notify,
        registered: false,
        _guard: guard,
    }))
}

/// Runs one turn of `conn` and hands it back, or ends it.
fn turn(shared: &Shared, mut conn: Box<Conn>, ready: Ready, buf: &mut [u8]) {
    conn.notify.pending.store(false, Ordering::SeqCst);
    let step = panic::catch_unwind(AssertUnwindSafe(|| conn.session.turn(ready, buf)));
    match step {
        Ok(Step::Wait(w)) => shared.hand_back(conn, w),
        Ok(Step::Closed(reason)) => log_close(conn.session.peer(), &reason),
        Err(p) => {
            let peer = conn.session.peer().clone();
            tracing::error!(%peer, "handler panicked: {}", panic_message(&*p));
        }
    }
}

/// A connection the waiter holds, with the deadline it is filed under.
struct Parked {
    conn: Box<Conn>,
    deadline: Option<Instant>,
}

/// The waiter: every connection between turns, its epoll set and deadlines.
struct Waiter {
    poll: Poll,
    shared: Arc<Shared>,
    life: Arc<Lifecycle>,
    parked: HashMap<u64, Parked>,
    deadlines: BTreeSet<(Instant, u64)>,
    swept: bool,
}

impl Waiter {
    fn new(poll: Poll, shared: Arc<Shared>, life: Arc<Lifecycle>) -> Waiter {
        Waiter {
            poll,
            shared,
            life,
            parked: HashMap::new(),
            deadlines: BTreeSet::new(),
            swept: false,
        }
    }

    /// Waits and dispatches until the pool stops.
    fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS);
        while !self.shared.exit.load(Ordering::SeqCst) {
            let grace = self.life.grace_deadline().filter(|_| !self.swept);
            let next = sys::earliest([self.deadlines.first().map(|(at, _)| *at), grace]);
            let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("the pool's waiter failed: {e}; its connections are closed");
                    return;
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKE => {}
                    STOP => {
                        self.life.begin();
                    }
                    Token(id) => {
                        let hangup = ev.is_error() || (ev.is_read_closed() && ev.is_write_closed());
                        let ready = Ready {
                            readable: ev.is_readable() || ev.is_read_closed(),
                            hangup,
                            woken: false,
                        };
                        self.dispatch(id as u64, ready);
                    }
                }
            }
            let back = std::mem::take(&mut *lock(&self.shared.back));
            for (conn, wait) in back {
                self.park(conn, wait);
            }
            let woken = std::mem::take(&mut *lock(&self.shared.woken));
            for id in woken {
                let pending = self
                    .parked
                    .get(&id)
                    .is_some_and(|p| p.conn.notify.pending.load(Ordering::SeqCst));
                if pending {
                    self.dispatch(id, Ready::woken());
                }
            }
            self.due();
        }
    }

    /// Queues the connections whose deadline passed; all of them when the
    /// grace period ends (later ones have the grace deadline as their own).
    fn due(&mut self) {
        let now = Instant::now();
        while self.deadlines.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, id)) = self.deadlines.pop_first() {
                self.dispatch(id, Ready::default());
            }
        }
        if !self.swept && self.life.grace_deadline().is_some_and(|g| now >= g) {
            self.swept = true;
            let ids: Vec<u64> = self.parked.keys().copied().collect();
            for id in ids {
                self.dispatch(id, Ready::default());
            }
        }
    }

    /// Takes a parked connection out and queues its turn (nothing if it is not
    /// parked: on a worker, or gone).
    fn dispatch(&mut self, id: u64, ready: Ready) {
        let Some(p) = self.parked.remove(&id) else {
            return;
        };
        if let Some(at) = p.deadline {
            self.deadlines.remove(&(at, id));
        }
        self.shared.queue(Job::Turn(p.conn, ready));
    }

    /// Holds a connection until its socket is ready as `wait` asks, its deadline
    /// passes or its mailbox is posted to.
    fn park(&mut self, mut conn: Box<Conn>, wait: Wait) {
        if conn.notify.pending.load(Ordering::SeqCst) || conn.session.has_messages() {
            self.shared.queue(Job::Turn(conn, Ready::woken()));
            return;
        }
        // Due already, or the grace period ended while it was on a worker that
        // had not seen it begin (the sweep at its end has passed it by).
        if wait.deadline.is_some_and(|at| at <= Instant::now())
            || (self.swept && conn.session.missed_stop())
        {
            self.shared.queue(Job::Turn(conn, Ready::readable()));
            return;
        }
        if let Err(e) = arm(self.poll.registry(), &mut conn, wait) {
            let reason = conn.session.end(CloseReason::Error(e.to_string()));
            log_close(conn.session.peer(), &reason);
            return;
        }
        let id = conn.id;
        if let Some(at) = wait.deadline {
            self.deadlines.insert((at, id));
        }
        self.parked.insert(
            id,
            Parked {
                conn,
                deadline: wait.deadline,
            },
        );
    }
}

/// Registers (or re-arms) a connection's socket with the interest `wait` asks
/// for. With neither, it still hears a hangup or an error (epoll reports those
/// whatever the interest), as a blocking poll with no events does.
fn arm(registry: &Registry, conn: &mut Conn, wait: Wait) -> io::Result<()> {
    let interest = match (wait.read, wait.write) {
        (true, true) => Interest::READABLE | Interest::WRITABLE,
        (true, false) => Interest::READABLE,
        (false, true) => Interest::WRITABLE,
        (false, false) => Interest::PRIORITY,
    };
    let fd = conn.session.fd();
    let token = Token(conn.id as usize);
    if conn.registered {
        registry.reregister(&mut SourceFd(&fd), token, interest)
    } else {
        registry.register(&mut SourceFd(&fd), token, interest)?;
        conn.registered = true;
        Ok(())
    }
}
