//! Regressions in `netkit serve`: logging to a stderr that is gone, signals
//! during the drain, dual-stack listeners, the table of services.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{self, Served, TempDir, MODES, STEP};

/// The `--grace` the closed-stderr servers get, and the bound on their exit.
const GRACE: Duration = Duration::from_secs(10);

/// A server started with stderr on a pipe that is closed once the
/// `listening on` line has been read (`netkit serve ... 2>&1 | head -1`).
struct Orphaned {
    child: Child,
    addr: String,
}

impl Orphaned {
    fn start(args: &[&str]) -> Orphaned {
        let mut child = Command::new(util::netkit())
            .arg("serve")
            .args(args)
            .env("NETKIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if err.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("{args:?} ended before `listening on`");
            }
            if let Some(a) = line.trim_end().strip_prefix("listening on ") {
                break a.to_string();
            }
        };
        // Closing the only read end: every later stderr write fails with EPIPE.
        drop(err);
        Orphaned { child, addr }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // child, not yet waited for.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the server did not exit within {limit:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Orphaned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `request` and reads the whole reply (the server closes or 5 s pass).
fn exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    reply
}

#[test]
fn serve_with_stderr_closed_survives_a_bad_request_and_stops_on_sigterm() {
    let root = TempDir::new("closed-stderr");
    std::fs::write(root.path("index.html"), "hi\n").unwrap();
    let root_arg = root.0.display().to_string();
    for mode in MODES {
        let mut s = Orphaned::start(&[
            "http",
            "--root",
            &root_arg,
            "--mode",
            mode,
            "--grace",
            "10s",
            "--listen",
            "127.0.0.1:0",
        ]);
        // A malformed request is answered and logged; the log line cannot be
        // written.
        let reply = exchange(&s.addr, b"NONSENSE\r\n\r\n");
        assert!(reply.starts_with(b"HTTP/1."), "{mode}: {reply:?}");
        // The server still serves, and logs each request it cannot write.
        let reply = exchange(&s.addr, b"GET / HTTP/1.0\r\n\r\n");
        assert!(reply.ends_with(b"hi\n"), "{mode}: {reply:?}");
        let stop = Instant::now();
        s.signal(libc::SIGTERM);
        assert_eq!(s.wait(STEP), Some(0), "{mode}");
        // Nothing is open: the server is done well within the grace period.
        assert!(stop.elapsed() < GRACE, "{mode}: {:?}", stop.elapsed());
    }
    // echo in reactor mode: the signal thread's own log line used to kill it.
    let mut s = Orphaned::start(&["echo", "--grace", "10s", "--listen", "127.0.0.1:0"]);
    assert_eq!(exchange(&s.addr, b"ping\n"), b"ping\n");
    let stop = Instant::now();
    s.signal(libc::SIGTERM);
    assert_eq!(s.wait(STEP), Some(0), "echo in reactor mode");
    assert!(stop.elapsed() < GRACE, "echo: {:?}", stop.elapsed());
}

/// A client that holds a connection open (it was echoed once, so a worker
/// serves it), to keep the drain going.
fn hold_open(addr: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"hold\n").unwrap();
    let mut got = [0u8; 5];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hold\n");
    c
}

#[test]
fn second_sigterm_aborts_the_drain() {
    for mode in MODES {
        let mut s = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--grace",
            "60s",
            "--listen",
            "127.0.0.1:0",
        ]);
        let _client = hold_open(&s.addr("tcp"));
        s.signal(libc::SIGTERM);
        // The drain is running (the client is still open and the grace is
        // long); the signal has been taken before the second one comes.
        thread::sleep(Duration::from_millis(500));
        assert!(s.child.try_wait().unwrap().is_none(), "{mode}: {}", s.log());
        let second = Instant::now();
        s.signal(libc::SIGTERM);
        let status = s.wait_exit(STEP);
        assert_eq!(status.code(), Some(1), "{mode}: {}", s.log());
        assert!(
            second.elapsed() < Duration::from_secs(10),
            "{mode}: the abort took {:?}",
            second.elapsed()
        );
        assert!(s.wait_log("drain aborted", STEP), "{mode}: {}", s.log());
    }
}

#[test]
fn single_sigterm_with_a_client_open_exits_0_after_the_grace() {
    for mode in MODES {
        let mut s = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--grace",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut client = hold_open(&s.addr("tcp"));
        s.signal(libc::SIGTERM);
        let status = s.wait_exit(STEP);
        assert_eq!(status.code(), Some(0), "{mode}: {}", s.log());
        // The server closed the client when the grace ran out.
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
    }
}

#[test]
fn serve_dual_stack_any_address_accepts_ipv4_and_ipv6() {
    for mode in ["reactor", "threads"] {
        let s = Served::start(&["echo", "--mode", mode, "--listen", "[::]:0"]);
        let (_, port) = s.host_port();
        for host in ["127.0.0.1", "[::1]"] {
            let addr = format!("{host}:{port}");
            assert_eq!(exchange(&addr, b"dual\n"), b"dual\n", "{mode} over {addr}");
        }
    }
    // --ipv6-only opts out: IPv4 is refused, IPv6 still served.
    for mode in ["reactor", "threads"] {
        let s = Served::start(&["echo", "--mode", mode, "--ipv6-only", "--listen", "[::]:0"]);
        let (_, port) = s.host_port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "{mode}");
        assert_eq!(exchange(&format!("[::1]:{port}"), b"six\n"), b"six\n");
    }
}

#[test]
fn serve_receive_creates_a_missing_root() {
    let dir = TempDir::new("receive-root");
    let root = dir.path("incoming/today");
    let root_arg = root.display().to_string();
    let _s = Served::start(&["receive", "--root", &root_arg, "--listen", "127.0.0.1:0"]);
    assert!(root.is_dir());
}

#[test]
fn serve_help_lists_every_service_of_the_table() {
    let out = Command::new(util::netkit())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for s in netkit::services::SERVICES {
        assert!(
            help.contains(&format!("- {}:", s.name)) && help.contains(s.about),
            "`{}` missing from serve --help:\n{help}",
            s.name
        );
    }
}

#[test]
fn unknown_service_error_lists_every_service_and_exits_2() {
    let out = Command::new(util::netkit())
        .args(["serve", "gopher", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for s in netkit::services::SERVICES {
        assert!(err.contains(s.name), "{} missing: {err}", s.name);
    }
}

#[test]
fn serve_http_on_udp_says_http_does_not_serve_datagrams() {
    let out = Command::new(util::netkit())
        .args(["serve", "http", "--listen", "udp://127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http does not serve datagrams"), "{err}");
    assert!(!err.contains("unknown service"), "{err}");
}

#[test]
fn serve_address_in_use_is_reported_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for mode in MODES {
        let out = Command::new(util::netkit())
            .args(["serve", "--mode", mode, "--listen", &addr])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{mode}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.matches(&addr).count(), 1, "{mode}: {err}");
        assert!(err.contains("in use"), "{mode}: {err}");
    }
}

/// The value `netkit serve --help` shows as `[default: ...]` for `--flag`, if any.
fn help_default(help: &str, flag: &str) -> Option<String> {
    let head = format!("--{flag} <");
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(&head));
    lines
        .next()
        .unwrap_or_else(|| panic!("--help has no {head}: {help}"));
    lines
        .take_while(|l| !l.trim_start().starts_with('-'))
        .find_map(|l| l.trim().strip_prefix("[default: ")?.strip_suffix(']'))
        .map(str::to_owned)
}

#[test]
fn serve_help_library_and_readme_agree_on_every_default() {
    use netkit::net::DEFAULT_BACKLOG;
    use netkit::protocol::{
        DEFAULT_GRACE, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_LINE, HIGH_WATER,
        LOW_WATER, MAILBOX_LIMIT,
    };
    use netkit::services::receive::{DEFAULT_PARTIAL_MAX, DEFAULT_PARTIAL_TTL};
    // Each constant in the unit `--help` and the README use for it.
    let kib = |n: usize| {
        assert_eq!(n % 1024, 0, "{n} is not a whole number of KiB");
        n / 1024
    };
    let secs = |d: Duration| {
        assert_eq!(
            d.subsec_nanos(),
            0,
            "{d:?} is not a whole number of seconds"
        );
        d.as_secs()
    };
    let max_line = format!("{}KiB", kib(DEFAULT_MAX_LINE));
    let grace = format!("{}s", secs(DEFAULT_GRACE));
    let header = format!("{}s", secs(DEFAULT_HEADER_TIMEOUT));
    let backlog = DEFAULT_BACKLOG.to_string();
    assert_eq!(secs(DEFAULT_PARTIAL_TTL) % 3600, 0);
    let partial_ttl = format!("{}h", secs(DEFAULT_PARTIAL_TTL) / 3600);
    assert_eq!(DEFAULT_PARTIAL_MAX % (1 << 30), 0);
    let partial_max = format!("{}GiB", DEFAULT_PARTIAL_MAX >> 30);

    let out = Command::new(util::netkit())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, want) in [
        ("max-line", &max_line),
        ("grace", &grace),
        ("backlog", &backlog),
        ("header-timeout", &header),
        ("partial-ttl", &partial_ttl),
        ("partial-max", &partial_max),
    ] {
        assert_eq!(help_default(&help, flag).as_ref(), Some(want), "--{flag}");
    }
    assert_eq!(DEFAULT_IDLE_TIMEOUT, None);
    assert_eq!(help_default(&help, "idle-timeout"), None, "--idle-timeout");

    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    // The README wraps its prose: compare with whitespace runs as one space.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    for said in [
        format!("`--max-line` (default {max_line};"),
        format!("`--backlog` (default {backlog})"),
        format!("`--grace` (default {grace})"),
        format!("`--header-timeout` (default {header})"),
        format!("`--partial-ttl` (default {partial_ttl})"),
        format!("(default {partial_max};"),
        format!("| `--max-line BYTES` | {} KiB |", kib(DEFAULT_MAX_LINE)),
        "| `--idle-timeout DUR` | none (never) |".to_owned(),
        format!("| `--grace DUR` | {grace} |"),
        format!("| `--backlog N` | {backlog} (capped"),
        format!(
            "| (fixed) | high {} KiB / low {} KiB |",
            kib(HIGH_WATER),
            kib(LOW_WATER)
        ),
        format!("| Mailbox | (fixed) | {} MiB |", kib(MAILBOX_LIMIT) / 1024),
        format!(
            "| `--proxy-protocol` | off; {} s to send the header |",
            secs(netkit::frame::proxy::HEADER_TIMEOUT)
        ),
    ] {
        assert!(readme.contains(&said), "the README does not say: {said}");
    }
}
