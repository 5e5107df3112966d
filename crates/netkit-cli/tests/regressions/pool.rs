//! Regressions in pool: connections that wait for their peer (slow lines, slow
//! HTTP heads, stalled TLS handshakes, peers that never read) must not hold the
//! workers of `pool` (or the one of `sequential`), so a fresh client is served
//! at once; and at a shutdown every accepted connection is served through the
//! grace period, so nothing a client sent before SIGTERM is lost.
//!
//! The heavy tests take a lock, so they do not run at once and do not skew
//! each other's timings; each opens at most [`SLOW_CLIENTS`] sockets.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::util::{run_bounded, Served, TempDir, MODES, STEP};

/// How fast a fresh client must be served while slow ones wait (the
/// acceptance criterion of the bug: best of three single attempts).
const FRESH_LIMIT: Duration = Duration::from_millis(100);
/// Slow connections held open at once.
const SLOW_CLIENTS: usize = 1000;
/// How long one measured attempt may take before it counts as failed.
const ATTEMPT: Duration = Duration::from_secs(5);

/// One heavy test at a time.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises this process's descriptor limit to its hard limit (the server, started
/// afterwards, inherits it).
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit write/read the one struct passed by pointer.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn stop(mut served: Served, mode: &str) {
    served.signal(libc::SIGTERM);
    let st = served.wait_exit(STEP);
    assert!(st.success(), "{mode}: exit {st}\n{}", served.log());
}

/// Slow clients: each sends `first`, then one more byte of `more` every second,
/// never finishing; they close when dropped.
struct Slow {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Slow {
    fn start(addr: &str, n: usize, first: &[u8], more: &'static [u8]) -> Slow {
        let socks: Vec<TcpStream> = (0..n)
            .map(|i| {
                let s = TcpStream::connect(addr)
                    .unwrap_or_else(|e| panic!("slow client {i} cannot connect: {e}"));
                s.set_nonblocking(true).unwrap();
                let _ = (&s).write(first);
                s
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            for k in 0..120 {
                for _ in 0..20 {
                    if flag.load(Ordering::SeqCst) {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                let byte = [more[k % more.len()]];
                for s in &socks {
                    let _ = (&*s).write(&byte);
                }
            }
        });
        Slow {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Slow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fresh client: connects, sends `request`, reads until `done` says the reply
/// is whole (or end-of-file); the reply and how long it took from connect on.
fn round_trip(
    addr: &str,
    request: &[u8],
    limit: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut reply = Vec::new();
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (reply, start.elapsed());
    };
    s.set_read_timeout(Some(limit)).unwrap();
    if s.write_all(request).is_err() {
        return (reply, start.elapsed());
    }
    let mut buf = [0u8; 4096];
    while !done(&reply) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    (reply, start.elapsed())
}

/// The best of three single attempts of `attempt` (a failed one counts as
/// [`ATTEMPT`]).
fn best_of_three(attempt: impl Fn() -> Option<Duration>) -> Duration {
    (0..3)
        .map(|_| attempt().unwrap_or(ATTEMPT))
        .min()
        .unwrap_or(ATTEMPT)
}

/// An echo round trip of a fresh client; `None` when the echo did not come back.
fn echo_once(addr: &str, limit: Duration) -> Option<Duration> {
    let (reply, took) = round_trip(addr, b"ping\n", limit, |r| r.len() >= 5);
    (reply == b"ping\n").then_some(took)
}

/// Waits (unmeasured) until a fresh client is served at all: it queues behind
/// every slow connection, so once it is served all of them were accepted.
fn served_at_all(served: &Served, mode: &str, what: &str, attempt: impl Fn() -> bool) {
    assert!(
        attempt(),
        "{mode}: a fresh client was not served within {STEP:?} while {what}\n{}",
        served.log()
    );
}

fn assert_fresh(best: Duration, mode: &str, what: &str) {
    eprintln!("{mode}: a fresh client served in {best:?} while {what}");
    assert!(
        best < FRESH_LIMIT,
        "{mode}: a fresh client took {best:?} (best of 3) while {what}; want < {FRESH_LIMIT:?}"
    );
}

#[test]
fn pool_slowloris_clients_do_not_starve_a_fresh_client() {
    let _heavy = heavy();
    raise_nofile();
    let what = format!("{SLOW_CLIENTS} slowloris clients trickle partial lines");
    for &mode in MODES {
        let served = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "2s",
        ]);
        let addr = served.addr("tcp");
        let slow = Slow::start(&addr, SLOW_CLIENTS, b"a partial line", b"x");
        served_at_all(&served, mode, &what, || echo_once(&addr, STEP).is_some());
        let best = best_of_three(|| echo_once(&addr, ATTEMPT));
        assert_fresh(best, mode, &what);
        drop(slow);
        stop(served, mode);
    }
}

/// `GET /hello.txt` over HTTP/1.0; `None` unless the whole file came back.
fn get_once(addr: &str, limit: Duration) -> Option<Duration> {
    let req = b"GET /hello.txt HTTP/1.0\r\nHost: localhost\r\n\r\n";
    let (reply, took) = round_trip(addr, req, limit, |r| r.ends_with(b"hello, world\n"));
    (reply.starts_with(b"HTTP/1.1 200") && reply.ends_with(b"hello, world\n")).then_some(took)
}

#[test]
fn pool_slow_http_header_clients_do_not_starve_a_fresh_request() {
    let _heavy = heavy();
    raise_nofile();
    let dir = TempDir::new("pool-http");
    std::fs::write(dir.path("hello.txt"), "hello, world\n").unwrap();
    let root = dir.0.to_string_lossy().into_owned();
    let what = format!("{SLOW_CLIENTS} clients trickle HTTP request heads");
    for mode in ["pool", "sequential"] {
        let served = Served::start(&[
            "http",
            "--mode",
            mode,
            "--workers",
            "2",
            "--root",
            &root,
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "2s",
        ]);
        let addr = served.addr("tcp");
        let head = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
        let slow = Slow::start(&addr, SLOW_CLIENTS, head, b"abc");
        served_at_all(&served, mode, &what, || get_once(&addr, STEP).is_some());
        let best = best_of_three(|| get_once(&addr, ATTEMPT));
        assert_fresh(best, mode, &what);
        drop(slow);
        stop(served, mode);
    }
}

#[test]
fn pool_clients_that_never_read_do_not_hold_the_workers() {
    let _heavy = heavy();
    raise_nofile();
    let mode = "pool";
    let served = Served::start(&[
        "echo",
        "--mode",
        mode,
        "--workers",
        "2",
        "--listen",
        "127.0.0.1:0",
        "--grace",
        "2s",
    ]);
    let addr = served.addr("tcp");
    // Each sends far more than the socket buffers and the server's write queue
    // hold, and reads nothing: the echo backs up until the server stops reading.
    let chunk = vec![b'n'; 64 * 1024];
    let readers_not: Vec<TcpStream> = (0..20)
        .map(|_| {
            let s = TcpStream::connect(&addr).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut sent = vec![0usize; readers_not.len()];
    while Instant::now() < deadline {
        for (s, n) in readers_not.iter().zip(sent.iter_mut()) {
            loop {
                match (&*s).write(&chunk) {
                    Ok(k) => *n += k,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sent.iter().all(|&n| n > 1 << 20),
        "the non-readers could not fill their buffers: {sent:?}"
    );
    let what = "20 clients send much and never read";
    served_at_all(&served, mode, what, || echo_once(&addr, STEP).is_some());
    let best = best_of_three(|| echo_once(&addr, ATTEMPT));
    assert_fresh(best, mode, what);
    drop(readers_not);
    stop(served, mode);
}

/// A TLS client in Python: handshakes with `netkit serve --tls-self-signed`,
/// sends a line, reads it back, and prints the seconds it took from connect on.
const PY_TLS_ECHO: &str = r#"
import socket, ssl, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
ctx = ssl._create_unverified_context()
start = time.monotonic()
s = socket.create_connection(("127.0.0.1", port), timeout=limit)
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"ping\n")
got = b""
while len(got) < 5:
    chunk = t.recv(64)
    if not chunk:
        break
    got += chunk
took = time.monotonic() - start
assert got == b"ping\n", got
print(took)
"#;

/// One TLS echo of a fresh Python client: its time from connect on (measured by
/// the client, so the interpreter's start does not count).
fn tls_echo_once(port: u16, limit: Duration) -> Option<Duration> {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PY_TLS_ECHO])
        .arg(port.to_string())
        .arg(limit.as_secs_f64().to_string());
    let out = run_bounded(cmd, b"", limit + STEP);
    if !out.status.success() {
        return None;
    }
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

#[test]
fn pool_stalled_tls_handshakes_do_not_starve_a_fresh_client() {
    let _heavy = heavy();
    raise_nofile();
    let mode = "pool";
    let served = Served::start(&[
        "echo",
        "--mode",
        mode,
        "--workers",
        "2",
        "--tls-self-signed",
        "--listen",
        "127.0.0.1:0",
        "--grace",
        "2s",
    ]);
    let (_, port) = served.host_port();
    let addr = served.addr("tcp");
    // The first bytes of a TLS record header, and then nothing more of it.
    let slow = Slow::start(&addr, SLOW_CLIENTS, b"\x16\x03", b"\x01");
    let what = format!("{SLOW_CLIENTS} TLS handshakes stall");
    served_at_all(&served, mode, &what, || tls_echo_once(port, STEP).is_some());
    let best = best_of_three(|| tls_echo_once(port, ATTEMPT));
    assert_fresh(best, mode, &what);
    drop(slow);
    stop(served, mode);
}

/// A client streaming to `echo` and reading the echo back.
struct Streamer {
    sent: Arc<AtomicU64>,
    writer: JoinHandle<()>,
    reader: JoinHandle<u64>,
}

impl Streamer {
    /// Writes 16 KiB every 5 ms for `length` (or until the server closes);
    /// reads until the server closes.
    fn start(addr: &str, length: Duration) -> Streamer {
        let s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut r = s.try_clone().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let count = sent.clone();
        let writer = thread::spawn(move || {
            let chunk = vec![b's'; 16 * 1024];
            let end = Instant::now() + length;
            while Instant::now() < end {
                match (&s).write(&chunk) {
                    Ok(n) => {
                        count.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return,
                }
                thread::sleep(Duration::from_millis(5));
            }
        });
        let reader = thread::spawn(move || {
            let mut got = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            got
        });
        Streamer {
            sent,
            writer,
            reader,
        }
    }
}

#[test]
fn pool_grace_serves_queued_connections() {
    let _heavy = heavy();
    for &mode in MODES {
        let mut served = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--workers",
            "2",
            "--grace",
            "2s",
            "--listen",
            "127.0.0.1:0",
        ]);
        let addr = served.addr("tcp");
        // More clients than workers, each streaming for longer than the grace.
        let clients: Vec<Streamer> = (0..6)
            .map(|_| Streamer::start(&addr, Duration::from_secs(5)))
            .collect();
        thread::sleep(Duration::from_millis(1500));
        let before: Vec<u64> = clients
            .iter()
            .map(|c| c.sent.load(Ordering::SeqCst))
            .collect();
        served.signal(libc::SIGTERM);
        let st = served.wait_exit(STEP);
        assert!(st.success(), "{mode}: exit {st}\n{}", served.log());
        for (i, c) in clients.into_iter().enumerate() {
            c.writer.join().unwrap();
            let back = c.reader.join().unwrap();
            assert!(before[i] > 0, "{mode}: client {i} sent nothing");
            assert!(
                back >= before[i],
                "{mode}: client {i} sent {} bytes before SIGTERM and got {back} back ({} lost)\n{}",
                before[i],
                before[i] - back,
                served.log()
            );
        }
    }
}
