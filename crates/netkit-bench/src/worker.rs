//! One load-generating thread: its own mio `Poll`, its share of the connections, the
//! open-loop send schedule and the periodic timeout check, all bounded by the end of
//! the run.
//!
//! Connections are dialled up front, all at once (non-blocking connects), and the loop
//! runs until the end of the measurement window or until every connection has closed,
//! whichever comes first. Per-connection behaviour lives in `conn`; the split of
//! connections over threads and the merging of results in `mod.rs`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::conn::{Conn, Ctx, Schedule};
use super::stats::Tally;
use super::target::Endpoint;

/// How long to sleep before the next scheduled send: whole milliseconds (epoll's
/// unit, which mio rounds up), ending at least a millisecond early; the rest is spent
/// polling without sleeping, so sends leave on time instead of up to 2 ms late.
fn spin_margin(wait: Duration) -> Duration {
    let ms = wait.as_millis().saturating_sub(1);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Counters one worker publishes for the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Messages completed, warmup included.
    pub completed: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
    /// Connections established so far.
    pub connected: AtomicU64,
}

/// What one worker is asked to do.
#[derive(Debug)]
pub struct Job {
    /// Run-wide numbers of this worker's connections, ascending.
    pub ids: Vec<u64>,
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Message size in bytes.
    pub size: u64,
    /// Messages in flight per connection.
    pub depth: u64,
    /// No-progress timeout.
    pub timeout: Duration,
    /// Start of the run (schedule origin).
    pub start: Instant,
    /// Start of the measurement window (end of warmup).
    pub window_start: Instant,
    /// End of the run.
    pub window_end: Instant,
    /// Messages per second over the whole run, if open-loop.
    pub rate: Option<u64>,
    /// Connections in the whole run.
    pub connections: u64,
}

/// Runs one worker to the end of the run and returns what it counted.
pub fn run(job: Job, progress: &Progress) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let schedule = job.rate.map(|rate| Schedule {
        start: job.start,
        connections: job.connections,
        rate,
    });
    let mut ctx = Ctx {
        size: job.size,
        depth: job.depth,
        window_start: job.window_start,
        window_end: job.window_end,
        schedule,
        timeout: job.timeout,
        now: Instant::now(),
        live: job.ids.len(),
        completed: 0,
        tally: Tally::new(),
    };
    let mut conns: Vec<Conn> = job
        .ids
        .iter()
        .enumerate()
        .map(|(i, &id)| Conn::new(id, Token(i), &ctx))
        .collect();
    for conn in &mut conns {
        conn.dial(&job.endpoint, poll.registry(), &mut ctx);
    }
    let check_every =
        (job.timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
    let mut next_check = ctx.now + check_every;
    let mut next_tick = 0u64;
    loop {
        let now = Instant::now();
        ctx.now = now;
        if now >= job.window_end || ctx.live == 0 {
            break;
        }
        let mut wake = job.window_end.min(next_check);
        if let Some(s) = &schedule {
            let due_at = release_due(s, &mut next_tick, &mut conns, poll.registry(), &mut ctx);
            wake = wake.min(due_at);
        }
        if now >= next_check {
            for conn in &mut conns {
                conn.check(&job.endpoint, poll.registry(), &mut ctx);
            }
            next_check = now + check_every;
        }
        let mut wait = wake.saturating_duration_since(now);
        if schedule.is_some() {
            wait = spin_margin(wait);
        }
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        ctx.now = Instant::now();
        for event in events.iter() {
            if let Some(conn) = conns.get_mut(event.token().0) {
                conn.on_event(event, poll.registry(), &mut ctx);
            }
        }
        progress.completed.store(ctx.completed, Ordering::Relaxed);
        progress
            .errors
            .store(ctx.tally.errors.total(), Ordering::Relaxed);
        progress
            .connected
            .store(ctx.tally.connected, Ordering::Relaxed);
    }
    Ok(ctx.tally)
}

/// Walks the schedule up to now, releasing each due message to its connection, and
/// returns when the next one is due. Ticks run round by round over this worker's
/// connections (ascending ids), which is the order of their intended times.
fn release_due(
    schedule: &Schedule,
    next_tick: &mut u64,
    conns: &mut [Conn],
    registry: &mio::Registry,
    ctx: &mut Ctx,
) -> Instant {
    let m = conns.len() as u64;
    if m == 0 {
        return ctx.window_end;
    }
    loop {
        let round = *next_tick / m;
        let Some(conn) = conns.get_mut((*next_tick % m) as usize) else {
            return ctx.window_end;
        };
        let at = schedule.intended(conn.id(), round);
        if at > ctx.now {
            return at;
        }
        conn.due = round + 1;
        if conn.is_open() {
            conn.pump(ctx.now, registry, ctx);
        }
        *next_tick += 1;
    }
}
