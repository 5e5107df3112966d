//! `netkit bench` end to end: the real binary against echo servers in this file
//! (thread-per-connection on std::net, and a one-thread mio/epoll server) and in
//! Python's stdlib (`tests/py/bench_echo_server.py`: echo, corrupt, silent; TCP and
//! Unix), and against `netkit serve echo` itself (reactor and threads modes). Runs
//! are short and use few connections; no assertion depends on speed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

mod util;
use util::{Served, STEP};

/// Every field the JSON report promises.
const FIELDS: &[&str] = &[
    "address",
    "mode",
    "connections",
    "threads",
    "size",
    "pipeline",
    "rate",
    "duration_s",
    "warmup_s",
    "timeout_s",
    "elapsed_s",
    "connected",
    "messages",
    "bytes",
    "msgs_per_s",
    "mb_per_s",
    "min_us",
    "mean_us",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "errors",
    "error_kinds",
    "error_details",
];

/// Every error kind the JSON report counts.
const KINDS: &[&str] = &[
    "mismatch",
    "short_read",
    "reset",
    "timeout",
    "connect",
    "other",
];

/// `netkit bench ARGS...`.
fn bench(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netkit"));
    cmd.arg("bench").args(args);
    cmd
}

/// What a `--json` run printed, parsed, with its exit code and stderr.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

impl Run {
    fn of(out: Output) -> Run {
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let json = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}; stderr: {stderr}"));
        Run {
            code: out.status.code(),
            json,
            stderr,
        }
    }

    fn u(&self, key: &str) -> u64 {
        self.json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} is not a count: {}", self.json))
    }

    fn kind(&self, kind: &str) -> u64 {
        self.json["error_kinds"][kind].as_u64().unwrap()
    }
}

/// Runs a `--json` bench to completion.
fn run_json(addr: &str, args: &[&str]) -> Run {
    let mut all = vec![addr, "--json"];
    all.extend_from_slice(args);
    Run::of(bench(&all).output().unwrap())
}

/// Checks that every field is there and that the counts agree with each other.
fn assert_consistent(run: &Run) {
    let v = &run.json;
    for field in FIELDS {
        assert!(v.get(field).is_some(), "missing {field}: {v}");
    }
    let mut sum = 0;
    for kind in KINDS {
        sum += run.kind(kind);
    }
    assert_eq!(sum, run.u("errors"), "error kinds add up: {v}");
    assert_eq!(run.u("bytes"), run.u("messages") * run.u("size"), "{v}");
    let duration = v["duration_s"].as_f64().unwrap();
    let rate = v["msgs_per_s"].as_f64().unwrap();
    assert!(
        (rate * duration - run.u("messages") as f64).abs() <= 1.0,
        "{v}"
    );
}

/// Checks a clean run: exit 0, messages, no errors, latencies present and ordered.
fn assert_clean(run: &Run) {
    assert_consistent(run);
    let v = &run.json;
    assert_eq!(run.code, Some(0), "{v}; stderr: {}", run.stderr);
    assert_eq!(run.u("errors"), 0, "{v}");
    assert!(run.u("messages") > 0, "{v}");
    assert_eq!(run.u("connected"), run.u("connections"), "{v}");
    let lat: Vec<f64> = ["min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"]
        .iter()
        .map(|k| v[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {v}")))
        .collect();
    assert!(
        lat.windows(2).all(|w| w[0] <= w[1]),
        "percentiles ascend: {v}"
    );
}

/// A Python stdlib server from `tests/py/bench_echo_server.py`, killed on drop.
struct PyServer {
    child: Child,
    /// The port, or the Unix socket path, it printed.
    addr: String,
}

impl PyServer {
    fn start(args: &[&str]) -> PyServer {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/bench_echo_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().to_owned();
        assert!(!addr.is_empty(), "the python server printed no address");
        PyServer { child, addr }
    }

    /// A TCP server in `mode`; returns it and its `127.0.0.1:PORT`.
    fn tcp(mode: &str) -> (PyServer, String) {
        let server = PyServer::start(&["--mode", mode]);
        let addr = format!("127.0.0.1:{}", server.addr);
        (server, addr)
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Unix socket path in the temp dir, unique to this process and `name`.
fn socket_path(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("netkit-bench-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// An echo server with a thread per connection, on std::net; stopped on drop.
struct ThreadEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ThreadEcho {
    fn start() -> ThreadEcho {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                conn.set_nodelay(true).unwrap();
                thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        ThreadEcho {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for ThreadEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the acceptor
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A one-thread echo server on mio (epoll), stopped on drop: the cheapest server to
/// drive, with a bounded per-connection buffer.
struct EpollEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpollEcho {
    fn start() -> EpollEcho {
        use mio::net::TcpListener;
        use mio::{Events, Interest, Poll, Token};

        let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut poll = Poll::new().unwrap();
            poll.registry()
                .register(&mut listener, Token(0), Interest::READABLE)
                .unwrap();
            let mut events = Events::with_capacity(256);
            // Each connection: its stream and the bytes read but not yet written back.
            let mut conns: Vec<Option<(mio::net::TcpStream, Vec<u8>)>> = vec![None];
            let mut buf = vec![0u8; 64 * 1024];
            while !flag.load(Ordering::SeqCst) {
                poll.poll(&mut events, Some(Duration::from_millis(50)))
                    .unwrap();
                for event in events.iter() {
                    let i = event.token().0;
                    if i == 0 {
                        while let Ok((mut s, _)) = listener.accept() {
                            s.set_nodelay(true).unwrap();
                            let token = Token(conns.len());
                            poll.registry()
                                .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)
                                .unwrap();
                            conns.push(Some((s, Vec::new())));
                        }
                        continue;
                    }
                    let Some(slot) = conns.get_mut(i) else {
                        continue;
                    };
                    let Some((s, pending)) = slot.as_mut() else {
                        continue;
                    };
                    let mut closed = false;
                    // Read only while nothing is pending, so the buffer stays bounded.
                    loop {
                        while !pending.is_empty() {
                            match s.write(pending) {
                                Ok(n) => drop(pending.drain(..n)),
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                                Err(_) => {
                                    closed = true;
                                    break;
                                }
                            }
                        }
                        if closed || !pending.is_empty() {
                            break;
                        }
                        match s.read(&mut buf) {
                            Ok(0) => closed = true,
                            Ok(n) => {
                                pending.extend_from_slice(&buf[..n]);
                                continue;
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => closed = true,
                        }
                        break;
                    }
                    if closed {
                        *slot = None;
                    }
                }
            }
        });
        EpollEcho {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpollEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn ping_pong_against_python_echo() {
    let (_server, addr) = PyServer::tcp("echo");
    let run = run_json(&addr, &["-c", "4", "-d", "1s", "-w", "200ms"]);
    assert_clean(&run);
    let v = &run.json;
    assert_eq!(v["address"], addr.as_str());
    assert_eq!(v["mode"], "ping-pong");
    assert_eq!(v["connections"], 4);
    assert_eq!(v["size"], 64);
    assert_eq!(v["pipeline"], 1);
    assert_eq!(v["rate"], Value::Null);
    assert_eq!(v["threads"], 1);
    assert_eq!(v["duration_s"], 1.0);
    assert_eq!(v["warmup_s"], 0.2);
    assert_eq!(v["error_details"], serde_json::json!({}));
}

#[test]
fn ping_pong_against_rust_thread_echo_on_two_threads() {
    let server = ThreadEcho::start();
    let addr = format!("tcp://{}", server.addr);
    let run = run_json(
        &addr,
        &[
            "-c", "5", "-t", "2", "-s", "1KiB", "-d", "1s", "-w", "100ms",
        ],
    );
    assert_clean(&run);
    assert_eq!(run.u("size"), 1024);
    assert_eq!(run.u("threads"), 2);
    assert_eq!(run.json["address"], server.addr.to_string());
}

#[test]
fn pipelined_against_rust_thread_echo() {
    let server = ThreadEcho::start();
    let run = run_json(
        &server.addr.to_string(),
        &["-c", "3", "-p", "16", "-s", "100", "-d", "1s", "-w", "0s"],
    );
    assert_clean(&run);
    assert_eq!(run.json["mode"], "pipelined");
    assert_eq!(run.u("pipeline"), 16);
}

#[test]
fn pipelined_large_messages_against_epoll_echo() {
    // 200 KiB messages span several reads and writes (64 KiB at most each).
    let server = EpollEcho::start();
    let run = run_json(
        &server.addr.to_string(),
        &["-c", "2", "-p", "3", "-s", "200KiB", "-d", "1s", "-w", "0s"],
    );
    assert_clean(&run);
    assert_eq!(run.u("size"), 200 * 1024);
}

#[test]
fn many_connections_against_epoll_echo() {
    let server = EpollEcho::start();
    let run = run_json(
        &server.addr.to_string(),
        &["-c", "64", "-t", "2", "-d", "1s", "-w", "100ms"],
    );
    assert_clean(&run);
    assert_eq!(run.u("connected"), 64);
}

/// Runs `run` against `netkit serve echo --mode MODE`, then stops the server with
/// SIGTERM and checks that it exits cleanly.
fn against_netkit_echo(mode: &str, run: impl FnOnce(&str)) {
    let mut server = Served::start(&["echo", "--listen", "127.0.0.1:0", "--mode", mode]);
    run(&server.addr("tcp"));
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(STEP);
    assert_eq!(status.code(), Some(0), "{mode}: {}", server.log());
}

#[test]
fn ping_pong_against_netkit_serve_echo() {
    for mode in ["reactor", "threads"] {
        against_netkit_echo(mode, |addr| {
            let run = run_json(addr, &["-c", "8", "-d", "1s", "-w", "200ms"]);
            assert_clean(&run);
            assert_eq!(run.u("connected"), 8, "{mode}: {}", run.json);
        });
    }
}

#[test]
fn pipelined_against_netkit_serve_echo_reactor() {
    against_netkit_echo("reactor", |addr| {
        let run = run_json(addr, &["-c", "8", "-p", "8", "-d", "1s", "-w", "200ms"]);
        assert_clean(&run);
        assert_eq!(run.json["mode"], "pipelined");
    });
}

#[test]
fn open_loop_stays_within_its_rate() {
    let server = ThreadEcho::start();
    let (rate, duration, conns) = (2000u64, 1.0f64, 4u64);
    let run = run_json(
        &server.addr.to_string(),
        &["-c", "4", "-r", "2000", "-d", "1s", "-w", "0s"],
    );
    assert_clean(&run);
    assert_eq!(run.json["mode"], "open-loop");
    assert_eq!(run.u("rate"), rate);
    // A bound on the scheduler, not a speed test: it never sends ahead of schedule.
    let bound = rate as f64 * duration * 1.1 + conns as f64;
    assert!((run.u("messages") as f64) <= bound, "{}", run.json);
}

#[test]
fn open_loop_with_pipelining_against_python_echo() {
    let (_server, addr) = PyServer::tcp("echo");
    let run = run_json(
        &addr,
        &["-c", "2", "-p", "4", "-r", "500", "-d", "1s", "-w", "0s"],
    );
    assert_clean(&run);
    assert!(
        run.u("messages") as f64 <= 500.0 * 1.1 + 8.0,
        "{}",
        run.json
    );
}

#[test]
fn unix_socket_against_python_echo() {
    let path = socket_path("unix-echo");
    let server = PyServer::start(&["--unix", path.to_str().unwrap()]);
    let addr = format!("unix://{}", server.addr);
    let run = run_json(&addr, &["-c", "3", "-p", "2", "-d", "1s", "-w", "100ms"]);
    assert_clean(&run);
    assert_eq!(run.json["address"], addr.as_str());
    drop(server);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn unix_connects_wait_while_the_backlog_is_full() {
    // Backlog 1 and a slow accept: most non-blocking connects first fail with EAGAIN
    // and are retried until the server makes room, within --timeout.
    let path = socket_path("unix-backlog");
    let server = PyServer::start(&[
        "--unix",
        path.to_str().unwrap(),
        "--backlog",
        "1",
        "--accept-delay",
        "0.05",
    ]);
    let addr = format!("unix://{}", server.addr);
    let run = run_json(
        &addr,
        &["-c", "6", "-d", "1s", "-w", "0s", "--timeout", "5s"],
    );
    assert_clean(&run);
    drop(server);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn killed_server_is_counted_and_the_report_still_printed() {
    let (mut server, addr) = PyServer::tcp("echo");
    let child = bench(&[&addr, "--json", "-c", "4", "-d", "3s", "-w", "0s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_secs(1));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let run = Run::of(child.wait_with_output().unwrap());
    assert_consistent(&run);
    assert_eq!(run.code, Some(1), "{}", run.json);
    assert!(
        run.kind("reset") + run.kind("short_read") > 0,
        "{}",
        run.json
    );
    assert!(
        run.u("messages") > 0,
        "messages before the kill count: {}",
        run.json
    );
}

#[test]
fn corrupted_byte_is_a_mismatch() {
    let (_server, addr) = PyServer::tcp("corrupt");
    let run = run_json(&addr, &["-c", "2", "-d", "1s", "-w", "0s"]);
    assert_consistent(&run);
    assert_eq!(run.code, Some(1), "{}", run.json);
    assert_eq!(run.kind("mismatch"), 2, "one per connection: {}", run.json);
    let detail = run.json["error_details"]["mismatch"].as_str().unwrap();
    assert!(detail.contains("message 1: byte 36 differs"), "{detail}");
}

#[test]
fn bytes_nobody_sent_are_a_mismatch() {
    let (_server, addr) = PyServer::tcp("extra");
    let run = run_json(&addr, &["-c", "2", "-d", "1s", "-w", "0s"]);
    assert_consistent(&run);
    assert_eq!(run.code, Some(1), "{}", run.json);
    assert_eq!(run.kind("mismatch"), 2, "one per connection: {}", run.json);
    let detail = run.json["error_details"]["mismatch"].as_str().unwrap();
    // The extra byte arrives with the first echo (or, split by TCP, before the second).
    assert!(
        detail.contains("1 bytes more than it was sent") || detail.contains("byte 0 differs"),
        "{detail}"
    );
}

#[test]
fn silent_server_times_out() {
    let (_server, addr) = PyServer::tcp("silent");
    let run = run_json(
        &addr,
        &["-c", "3", "-d", "20s", "-w", "0s", "--timeout", "300ms"],
    );
    assert_consistent(&run);
    assert_eq!(run.code, Some(1), "{}", run.json);
    assert_eq!(run.kind("timeout"), 3, "{}", run.json);
    assert_eq!(run.u("messages"), 0);
    assert_eq!(run.json["p50_us"], Value::Null);
    // With every connection failed the run stops rather than idling to the end.
    assert!(
        run.json["elapsed_s"].as_f64().unwrap() < 20.0,
        "{}",
        run.json
    );
}

#[test]
fn refused_connections_are_connect_errors() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = run_json(
        &format!("127.0.0.1:{port}"),
        &["-c", "3", "-d", "1s", "-w", "0s"],
    );
    assert_consistent(&run);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.kind("connect"), 3, "{}", run.json);
    assert_eq!(run.u("connected"), 0);
}

#[test]
fn human_report_is_a_table_without_progress_noise() {
    let server = ThreadEcho::start();
    let out = bench(&[
        &server.addr.to_string(),
        "-c",
        "2",
        "-d",
        "500ms",
        "-w",
        "0s",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for row in [
        "address",
        "mode",
        "messages",
        "throughput",
        "latency",
        "p99.9",
        "errors       0",
    ] {
        assert!(stdout.contains(row), "{row:?} missing from:\n{stdout}");
    }
    assert!(
        out.stderr.is_empty(),
        "no progress line off a terminal: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "ADDR"),
        (&["127.0.0.1:1", "--connections", "0"], "connections"),
        (&["127.0.0.1:1", "--duration", "5x"], "invalid duration"),
        (&["127.0.0.1:1", "--duration", "0s"], "longer than zero"),
        (&["127.0.0.1:1", "--size", "0"], "1 byte to 1GiB"),
        (&["127.0.0.1:1", "--size", "12QB"], "invalid size"),
        (&["127.0.0.1:1", "--pipeline", "0"], "pipeline"),
        (&["127.0.0.1:1", "--rate", "0"], "rate"),
        (&["127.0.0.1:1", "--timeout", "never"], "invalid duration"),
        (
            &["127.0.0.1:1", "-c", "2", "--threads", "3"],
            "exceeds --connections",
        ),
        (
            &["127.0.0.1:1", "-c", "100000", "-s", "1MiB"],
            "MiB of buffers",
        ),
        (&["udp://127.0.0.1:1"], "stream address"),
        (&["localhost"], "missing :PORT"),
        (&["127.0.0.1:0"], "port 0"),
    ];
    for (args, needle) in cases {
        let out = bench(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
