//! Regressions in the command line as a whole: exit statuses (one test per row
//! of the README's table), messages that repeat themselves, `HOST PORT`, and
//! what `listen` and `relay` do on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output};

use crate::util::{self, run_bounded, Served, TempDir, STEP};

/// Runs `netkit ARGS...` with `stdin`, bounded in time.
fn netkit(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(util::netkit());
    cmd.args(args);
    run_bounded(cmd, stdin, STEP)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A TCP port nothing listens on (bound a moment ago, then closed).
fn closed_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Row "0: success": a run that did what was asked.
#[test]
fn success_exits_0() {
    let echo = Served::start(&["echo", "--listen", "127.0.0.1:0"]);
    let out = netkit(&["connect", &echo.addr("tcp")], b"fine\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"fine\n");
}

/// Row "1: connection refused (TCP)", and its message names the address once.
#[test]
fn connect_refused_tcp_exits_1_and_names_the_address_once() {
    let addr = format!("127.0.0.1:{}", closed_tcp_port());
    let out = netkit(&["connect", &addr], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(err.matches(&addr).count(), 1, "{err}");
    assert_eq!(err.matches("cannot connect").count(), 1, "{err}");
}

/// Row "1: connection refused (UDP)".
#[test]
fn connect_refused_udp_exits_1() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("udp://127.0.0.1:{port}");
    let out = netkit(&["connect", &addr, "--wait", "2s"], b"x");
    let err = stderr(&out);
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
}

/// Row "1: a bench that got no replies at all".
#[test]
fn bench_against_discard_with_no_replies_exits_1() {
    let discard = Served::start(&["discard", "--listen", "127.0.0.1:0"]);
    let out = netkit(
        &[
            "bench",
            &discard.addr("tcp"),
            "-c",
            "2",
            "-d",
            "1s",
            "-w",
            "0s",
            "--timeout",
            "10s",
        ],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no replies came back"), "{err}");
}

/// Row "2: a malformed address", for every command that takes one.
#[test]
fn malformed_address_is_a_usage_error_for_every_command() {
    let dir = TempDir::new("usage");
    let file = dir.path("f");
    std::fs::write(&file, "x").unwrap();
    let file = file.display().to_string();
    for args in [
        vec!["serve", "--listen", "nowhere"],
        vec!["serve", "--mode", "threads", "--listen", "127.0.0.1:99999"],
        vec!["connect", "nowhere"],
        vec!["connect", "tls://unix:///tmp/x.sock"],
        vec!["listen", "nowhere"],
        vec!["relay", "nowhere", "127.0.0.1:1"],
        vec!["relay", "127.0.0.1:0", "nowhere"],
        vec!["send", "nowhere", &file],
        vec!["bench", "nowhere"],
    ] {
        let out = netkit(&args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("invalid"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// Row "2: an unknown service".
#[test]
fn unknown_service_is_a_usage_error() {
    for mode in ["reactor", "threads"] {
        let out = netkit(&["serve", "gopher", "--mode", mode], b"");
        assert_eq!(out.status.code(), Some(2), "{mode}: {}", stderr(&out));
    }
}

/// Row "2: an impossible combination".
#[test]
fn impossible_combinations_are_usage_errors() {
    for (args, says) in [
        (vec!["serve", "chat", "--mode", "fork"], "fork"),
        (
            vec!["serve", "http", "--listen", "udp://127.0.0.1:0"],
            "datagrams",
        ),
        (
            vec!["serve", "--exec", "cat", "--listen", "udp://127.0.0.1:0"],
            "stream",
        ),
        (vec!["serve", "--workers", "0"], "--workers"),
        (vec!["listen", "udp://127.0.0.1:0"], "stream address"),
        (vec!["relay", "-", "-"], "not -"),
        (vec!["connect", "127.0.0.1:1", "2"], "not both"),
        (vec!["connect", "unix:///tmp/x", "2"], "no PORT"),
    ] {
        let out = netkit(&args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn connect_accepts_host_and_port_as_two_arguments() {
    let echo = Served::start(&["echo", "--listen", "127.0.0.1:0"]);
    let (host, port) = echo.host_port();
    let out = netkit(&["connect", &host, &port.to_string()], b"two args\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"two args\n");
    let udp = Served::start(&["echo", "--listen", "udp://127.0.0.1:0"]);
    let (_, uport) = udp
        .addr("udp")
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let out = netkit(&["connect", "udp://127.0.0.1", &uport], b"dgram\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"dgram\n");
}

#[test]
fn listen_accepts_host_and_port_as_two_arguments() {
    let port = closed_tcp_port().to_string();
    let mut cmd = Command::new(util::netkit());
    cmd.args(["listen", "127.0.0.1", &port, "--exec", "echo listened"]);
    let s = Served::spawn(cmd, 1);
    assert_eq!(s.addrs, [format!("127.0.0.1:{port}")]);
    let mut c = TcpStream::connect(&s.addrs[0]).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "listened\n");
}

/// Sends SIGTERM to `s` and checks it exits 0 within the step.
fn sigterm_exits_0(s: &mut Served, what: &str) {
    s.signal(libc::SIGTERM);
    let st = s.wait_exit(STEP);
    assert_eq!(st.code(), Some(0), "{what}: {}", s.log());
}

#[test]
fn listen_removes_its_unix_socket_on_sigterm() {
    for extra in [&[][..], &["--keep-open", "--exec", "cat"][..]] {
        let dir = TempDir::new("listen-sock");
        let path = dir.path("l.sock");
        let addr = format!("unix://{}", path.display());
        let mut cmd = Command::new(util::netkit());
        cmd.args(["listen", &addr]).args(extra);
        let mut s = Served::spawn(cmd, 1);
        assert!(path.exists());
        sigterm_exits_0(&mut s, &format!("listen {extra:?}"));
        assert!(!path.exists(), "listen {extra:?} left {}", path.display());
    }
}

#[test]
fn relay_removes_its_unix_socket_on_sigterm() {
    let echo = Served::start(&["echo", "--listen", "127.0.0.1:0"]);
    // A stream TARGET runs on the reactor; `-` and datagram LISTENs on threads.
    for (scheme, target) in [
        ("unix", echo.addr("tcp")),
        ("unix", "-".to_string()),
        ("unix-dgram", "udp://127.0.0.1:9".to_string()),
    ] {
        let dir = TempDir::new("relay-sock");
        let path = dir.path("r.sock");
        let listen = format!("{scheme}://{}", path.display());
        let mut cmd = Command::new(util::netkit());
        cmd.args(["relay", &listen, &target]);
        let mut s = Served::spawn(cmd, 1);
        if scheme == "unix" && target != "-" {
            let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
            c.set_read_timeout(Some(STEP)).unwrap();
            c.write_all(b"via relay\n").unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"via relay\n");
        }
        assert!(path.exists());
        sigterm_exits_0(&mut s, &format!("relay {listen} {target}"));
        assert!(!path.exists(), "relay to {target} left {}", path.display());
    }
}

#[test]
fn serve_exec_removes_its_unix_socket_on_sigterm() {
    let dir = TempDir::new("exec-sock");
    let path = dir.path("e.sock");
    let addr = format!("unix://{}", path.display());
    let mut s = Served::start(&["--exec", "cat", "--listen", &addr]);
    sigterm_exits_0(&mut s, "serve --exec");
    assert!(!path.exists());
}
