//! `netkit serve --proxy-protocol` behind a real HAProxy (`send-proxy-v2`,
//! `balance roundrobin`, no health checks): a checked ping-pong load runs through
//! HAProxy while each backend is restarted in turn (a `--reuseport` replacement
//! starts on the same port, then the old one gets SIGTERM); every echo comes back
//! intact and no session is cut after its first echo. And `logger` behind
//! HAProxy prints the client's address (a client bound to 127.0.0.2), not
//! HAProxy's (127.0.0.1).
//!
//! Needs `haproxy` on PATH; gated by the `peers` feature, under which a missing
//! haproxy fails the test.

#![cfg(feature = "peers")]

mod load;
mod util;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use util::{Served, TempDir, STEP};

/// A running HAProxy, killed (by its PID) on drop.
struct Haproxy {
    child: Child,
    _dir: TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (HAProxy's config needs a number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration the test runs (and the README's "Operating netkit" shows).
fn config(front: u16, backends: &[(&str, &str)]) -> String {
    let mut servers = String::new();
    for (name, addr) in backends {
        servers.push_str(&format!("    server {name} {addr} send-proxy-v2\n"));
    }
    format!(
        "global
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch

frontend fe
    bind 127.0.0.1:{front}
    default_backend be

backend be
    balance roundrobin
{servers}"
    )
}

/// Starts `haproxy -db -f CONFIG` and waits until the frontend accepts.
fn haproxy(front: u16, backends: &[(&str, &str)]) -> Haproxy {
    let dir = TempDir::new("haproxy");
    let cfg = dir.path("haproxy.cfg");
    std::fs::write(&cfg, config(front, backends)).unwrap();
    let check = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output();
    let check = check.expect("haproxy is not installed (the peers feature needs it)");
    assert!(
        check.status.success(),
        "haproxy -c: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hap = Haproxy { child, _dir: dir };
    let deadline = Instant::now() + STEP;
    while TcpStream::connect(("127.0.0.1", front)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        thread::sleep(Duration::from_millis(50));
    }
    hap
}

fn backend(service: &str, mode: &str, listen: &str) -> Served {
    Served::start(&[
        service,
        "--mode",
        mode,
        "--proxy-protocol",
        "--reuseport",
        "--listen",
        listen,
    ])
}

fn stop(mut served: Served) {
    served.signal(libc::SIGTERM);
    let st = served.wait_exit(STEP);
    assert!(st.success(), "exit {st}\n{}", served.log());
}

#[test]
fn restarting_each_backend_behind_haproxy_loses_no_message() {
    for mode in ["threads", "reactor"] {
        restart_behind_haproxy(mode);
    }
}

fn restart_behind_haproxy(mode: &str) {
    let a = backend("echo", mode, "127.0.0.1:0");
    let b = backend("echo", mode, "127.0.0.1:0");
    let (a_addr, b_addr) = (a.addr("tcp"), b.addr("tcp"));
    let front = free_port();
    let _hap = haproxy(front, &[("a", &a_addr), ("b", &b_addr)]);
    let load = load::Load::start(SocketAddr::from(([127, 0, 0, 1], front)), 8);
    assert!(load.wait_more(50, STEP), "no progress through haproxy");
    let mut old = vec![(a, a_addr), (b, b_addr)];
    for round in 0..2 {
        let (served, addr) = old.remove(0);
        let next = backend("echo", mode, &addr);
        stop(served);
        assert!(
            load.wait_more(100, STEP),
            "round {round}: no progress after"
        );
        old.push((next, addr));
    }
    let report = load.finish();
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert!(report.sessions >= 200, "{report:?}");
    eprintln!(
        "{mode}: through haproxy: {} sessions, {} retried before their first echo",
        report.sessions, report.retries
    );
    for (s, _) in old {
        stop(s);
    }
}

#[test]
fn logger_behind_haproxy_prints_the_clients_address_not_haproxys() {
    let logger = backend("logger", "threads", "127.0.0.1:0");
    let logger_reactor = backend("logger", "reactor", "127.0.0.1:0");
    for logger in [logger, logger_reactor] {
        logger_sees_the_client(logger);
    }
}

fn logger_sees_the_client(logger: Served) {
    let front = free_port();
    let _hap = haproxy(front, &[("l", &logger.addr("tcp"))]);
    let script = "import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10,
                             source_address=('127.0.0.2', 0))
s.sendall(b'through haproxy\\n')
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(front.to_string());
    let out = util::run_bounded(cmd, b"", STEP);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + STEP;
    loop {
        let text = logger.stdout.lock().unwrap().clone();
        if text.contains("through haproxy") && text.contains("disconnected") {
            // HAProxy's own connection comes from 127.0.0.1; the line before
            // the client's data names the client. (The readiness probe, a client
            // on 127.0.0.1, may appear earlier.)
            let lines: Vec<&str> = text.lines().collect();
            let i = lines.iter().position(|l| *l == "through haproxy").unwrap();
            assert!(
                i > 0 && lines[i - 1].starts_with("Got connection from ('127.0.0.2', "),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{text}\n{}", logger.log());
        thread::sleep(Duration::from_millis(20));
    }
    stop(logger);
}
