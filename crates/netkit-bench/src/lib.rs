//! netkit-bench: the load generator behind `netkit bench`, for any TCP or Unix
//! echo-style server.
//!
//! It opens every connection up front with non-blocking connects, then drives them
//! from one or more threads, each with its own mio `Poll`, in one of three modes:
//! ping-pong (one message in flight per connection), pipelined (up to `--pipeline`
//! in flight) and open-loop (`--rate` messages per second in all, with latency
//! measured from each message's intended send time so a stalled server cannot hide
//! behind the generator waiting for it — wrk2's correction for coordinated omission).
//! Every echoed byte is checked against what was sent ([`pattern`]); any error stops
//! its connection and is counted by kind ([`stats::ErrorKind`]). The run ends at
//! warmup + duration whatever the server does; figures count only messages whose echo
//! completed after the warmup.
//!
//! This crate owns the run and its [`report`] (a table or one JSON object); argument
//! parsing, the progress line and printing live in the `netkit bench` command. It is a
//! crate of its own so that `hdrhistogram` stays out of the `netkit` library.

pub mod conn;
pub mod pattern;
pub mod report;
pub mod stats;
pub mod target;
pub mod worker;

use std::io;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use stats::Tally;
use target::Target;
use worker::{Job, Progress};

/// A validated benchmark configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server under test.
    pub target: Target,
    /// Connections, opened up front.
    pub connections: u64,
    /// Length of the measurement window.
    pub duration: Duration,
    /// Time before the window whose messages are not counted.
    pub warmup: Duration,
    /// Message size in bytes.
    pub size: u64,
    /// Messages in flight per connection (1 = ping-pong).
    pub pipeline: u64,
    /// Open-loop rate in messages per second, all connections together.
    pub rate: Option<u64>,
    /// Worker threads, each with its own poll.
    pub threads: u64,
    /// A connection on which nothing moves this long while bytes are owed fails.
    pub timeout: Duration,
}

impl Config {
    /// The mode's name as reported: `ping-pong`, `pipelined` or `open-loop`.
    pub fn mode(&self) -> &'static str {
        match (self.rate, self.pipeline) {
            (Some(_), _) => "open-loop",
            (None, 1) => "ping-pong",
            (None, _) => "pipelined",
        }
    }
}

/// Where the run is, once a second, for the progress line.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Time since the start of the run.
    pub elapsed: Duration,
    /// Messages completed so far, warmup included.
    pub completed: u64,
    /// Errors so far.
    pub errors: u64,
    /// Connections established so far.
    pub connected: u64,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Everything counted, all workers merged.
    pub tally: Tally,
    /// Wall time from the first connect to the last worker's end.
    pub elapsed: Duration,
}

/// Runs the benchmark, calling `on_second` about once a second with the progress so
/// far. Fails only for local trouble (name resolution, threads, the poll); server
/// misbehaviour is counted in the outcome.
pub fn run(config: &Config, mut on_second: impl FnMut(Snapshot)) -> io::Result<Outcome> {
    let endpoint = config
        .target
        .resolve()
        .map_err(|e| io::Error::new(e.kind(), format!("resolving {}: {e}", config.target)))?;
    let start = Instant::now();
    let window_start = start + config.warmup;
    let window_end = window_start + config.duration;
    let threads = config.threads.clamp(1, config.connections.max(1));
    let progress: Arc<Vec<Progress>> =
        Arc::new((0..threads).map(|_| Progress::default()).collect());
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for t in 0..threads {
        let job = Job {
            ids: (t..config.connections).step_by(threads as usize).collect(),
            endpoint: endpoint.clone(),
            size: config.size,
            depth: config.pipeline,
            timeout: config.timeout,
            start,
            window_start,
            window_end,
            rate: config.rate,
            connections: config.connections,
        };
        let tx = tx.clone();
        let progress = Arc::clone(&progress);
        let handle = thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || {
                let slot = &progress[t as usize];
                // The receiver outlives every worker; a failed send means it is gone.
                let _ = tx.send(worker::run(job, slot));
            })?;
        handles.push(handle);
    }
    drop(tx);
    let mut total = Tally::new();
    let mut failure = None;
    let mut next_second = start + Duration::from_secs(1);
    loop {
        match rx.recv_timeout(next_second.saturating_duration_since(Instant::now())) {
            Ok(Ok(tally)) => total.merge(tally),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                on_second(snapshot(&progress, start));
                next_second += Duration::from_secs(1);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let elapsed = start.elapsed();
    for handle in handles {
        if handle.join().is_err() {
            failure = failure.or_else(|| Some(io::Error::other("a benchmark thread panicked")));
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Outcome {
            tally: total,
            elapsed,
        }),
    }
}

/// Sums the workers' published counters.
fn snapshot(progress: &[Progress], start: Instant) -> Snapshot {
    use std::sync::atomic::Ordering::Relaxed;
    let sum = |f: fn(&Progress) -> u64| progress.iter().map(f).sum();
    Snapshot {
        elapsed: start.elapsed(),
        completed: sum(|p| p.completed.load(Relaxed)),
        errors: sum(|p| p.errors.load(Relaxed)),
        connected: sum(|p| p.connected.load(Relaxed)),
    }
}
