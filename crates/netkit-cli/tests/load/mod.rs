//! A ping-pong client load that checks every echo, for restart tests: each
//! session connects, sends [`MESSAGES`] distinct messages one at a time and
//! reads each echo back. A session that fails before its first echo (refused,
//! reset, closed) is counted as a retry and run again on a new connection; a
//! session that fails after an echo, or an echo that differs, is a failure.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Messages per session.
pub const MESSAGES: usize = 20;

/// What the load saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Sessions whose every echo came back intact.
    pub sessions: usize,
    /// Sessions that failed before any echo and were run again.
    pub retries: usize,
    /// What went wrong, one line per failure.
    pub failures: Vec<String>,
}

/// A running load; [`Load::finish`] stops it and returns the report.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    threads: Vec<thread::JoinHandle<Report>>,
}

enum Outcome {
    Ok,
    Retry(String),
    Fail(String),
}

fn message(t: usize, s: usize, m: usize) -> Vec<u8> {
    let mut v = format!("t{t} s{s} m{m} ").into_bytes();
    let len = 1 + (t * 7919 + s * 104_729 + m * 31) % 3000;
    v.extend((0..len).map(|k| b'a' + ((k + t + s + m) % 26) as u8));
    v.push(b'\n');
    v
}

fn session(addr: SocketAddr, t: usize, s: usize) -> Outcome {
    let sock = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(x) => x,
        Err(e) => return Outcome::Retry(format!("connect: {e}")),
    };
    let _ = sock.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = sock.set_write_timeout(Some(Duration::from_secs(15)));
    let mut sock = sock;
    for m in 0..MESSAGES {
        let msg = message(t, s, m);
        let lost = |what: String| {
            if m == 0 {
                Outcome::Retry(what)
            } else {
                Outcome::Fail(format!("t{t} s{s}: lost after {m} echoes: {what}"))
            }
        };
        if let Err(e) = sock.write_all(&msg) {
            return lost(format!("write: {e}"));
        }
        let mut back = vec![0u8; msg.len()];
        if let Err(e) = sock.read_exact(&mut back) {
            return lost(format!("read: {e}"));
        }
        if back != msg {
            return Outcome::Fail(format!(
                "t{t} s{s} m{m}: echo differs: sent {:?}.., got {:?}..",
                String::from_utf8_lossy(&msg[..msg.len().min(40)]),
                String::from_utf8_lossy(&back[..back.len().min(40)])
            ));
        }
    }
    Outcome::Ok
}

impl Load {
    /// Starts `threads` clients running sessions against `addr` until finished.
    pub fn start(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|t| {
                let (stop, done) = (stop.clone(), done.clone());
                thread::spawn(move || {
                    let mut r = Report::default();
                    let mut s = 0;
                    // Bounded: at most this many sessions per thread.
                    while !stop.load(Ordering::SeqCst) && s < 100_000 {
                        match session(addr, t, s) {
                            Outcome::Ok => {
                                r.sessions += 1;
                                done.fetch_add(1, Ordering::SeqCst);
                            }
                            Outcome::Retry(_) => {
                                r.retries += 1;
                                thread::sleep(Duration::from_millis(20));
                            }
                            Outcome::Fail(f) => r.failures.push(f),
                        }
                        s += 1;
                    }
                    r
                })
            })
            .collect();
        Load {
            stop,
            done,
            threads,
        }
    }

    /// Sessions completed so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until `n` more sessions complete, at most `limit`; false on timeout.
    pub fn wait_more(&self, n: usize, limit: Duration) -> bool {
        let target = self.done() + n;
        let deadline = Instant::now() + limit;
        while self.done() < target {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Stops the clients (each finishes its session) and sums their reports.
    pub fn finish(self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let total = Mutex::new(Report::default());
        for t in self.threads {
            let r = t.join().unwrap();
            let mut tot = total.lock().unwrap();
            tot.sessions += r.sessions;
            tot.retries += r.retries;
            tot.failures.extend(r.failures);
        }
        total.into_inner().unwrap()
    }
}
