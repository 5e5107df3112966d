//! Restarting `netkit serve` without losing connections: systemd-style socket
//! activation (`LISTEN_FDS`/`LISTEN_PID`, the listening socket held by the
//! supervisor — here, the test), and a rolling restart of two `--reuseport`
//! servers under a checked ping-pong load.

mod load;
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use util::{activated, Served, STEP};

fn echo_once(addr: &str, msg: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

fn stop(mut served: Served) {
    served.signal(libc::SIGTERM);
    let st = served.wait_exit(STEP);
    assert!(st.success(), "exit {st}\n{}", served.log());
}

#[test]
fn an_inherited_socket_replaces_the_default_address_and_survives_a_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let first = activated(&listener, &["echo"], 1);
    assert_eq!(first.addrs.len(), 1, "{}", first.log());
    assert_eq!(first.addrs[0], addr);
    echo_once(&addr, b"one");
    stop(first);
    // Between the two servers the port stays open: a client connects and sends
    // now, and is served by the next server.
    let mut waiting = TcpStream::connect(&addr).unwrap();
    waiting.set_read_timeout(Some(STEP)).unwrap();
    waiting.write_all(b"queued while restarting").unwrap();
    let second = activated(&listener, &["echo", "--mode", "pool"], 1);
    let mut back = [0u8; 23];
    waiting.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"queued while restarting");
    echo_once(&addr, b"two");
    stop(second);
}

#[test]
fn an_explicit_listen_adds_to_the_inherited_sockets() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let served = activated(&listener, &["echo", "--listen", "127.0.0.1:0"], 2);
    assert_eq!(served.addrs[0], addr, "{:?}", served.addrs);
    assert_ne!(served.addrs[1], addr);
    echo_once(&served.addrs[0], b"inherited");
    echo_once(&served.addrs[1], b"explicit");
    stop(served);
}

#[test]
fn without_reuseport_a_second_server_cannot_bind_the_port() {
    // The reactor with two loops included: its loops share one listener unless
    // --reuseport is given, so the port is not silently shared.
    for mode in ["threads", "reactor"] {
        let first = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--workers",
            "2",
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut cmd = Command::new(util::netkit());
        cmd.args([
            "serve",
            "echo",
            "--mode",
            mode,
            "--workers",
            "2",
            "--listen",
            &first.addr("tcp"),
        ]);
        let out = util::run_bounded(cmd, b"", STEP);
        assert_eq!(out.status.code(), Some(1), "{mode}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot listen on"),
            "{mode}"
        );
        stop(first);
    }
}

/// Two `--reuseport` servers share a port; each is replaced in turn (the new
/// one starts before the old one gets SIGTERM) while clients run ping-pong
/// sessions: every echo is intact and no session is cut after its first echo.
#[test]
fn rolling_restart_of_reuseport_servers_loses_no_message() {
    for mode in ["threads", "reactor"] {
        rolling_restart(mode);
    }
}

fn rolling_restart(mode: &str) {
    let start =
        |listen: &str| Served::start(&["echo", "--mode", mode, "--reuseport", "--listen", listen]);
    let a = start("127.0.0.1:0");
    let port_addr = a.addr("tcp");
    let b = Served::start(&[
        "echo",
        "--reuseport",
        "--mode",
        "pool",
        "--listen",
        &port_addr,
    ]);
    let sa: SocketAddr = port_addr.parse().unwrap();
    let load = load::Load::start(sa, 8);
    assert!(
        load.wait_more(50, STEP),
        "{mode}: no progress before the restart"
    );
    let mut old = vec![a, b];
    for round in 0..2 {
        let next = start(&port_addr);
        assert!(
            load.wait_more(20, STEP),
            "{mode} round {round}: no progress"
        );
        stop(old.remove(0));
        assert!(
            load.wait_more(50, STEP),
            "{mode} round {round}: no progress after"
        );
        old.push(next);
    }
    let report = load.finish();
    assert!(report.failures.is_empty(), "{mode}: {:#?}", report.failures);
    assert!(report.sessions >= 150, "{mode}: {report:?}");
    eprintln!(
        "{mode}: rolling restart: {} sessions, {} retried before their first echo",
        report.sessions, report.retries
    );
    for s in old {
        stop(s);
    }
}
