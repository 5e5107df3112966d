//! Regressions in serving: dual-stack listeners, bind errors that repeat the
//! address, and a second signal during the drain of a server that handles
//! signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netkit::net::{ListenOptions, Listener};
use netkit::server::{Mode, Server, ServerError};
use netkit::services::{self, ServiceOptions};

/// How long any step may take.
const STEP: Duration = Duration::from_secs(20);

/// Connects to `addr`, sends a line and reads it back from an echo server.
fn echoes(addr: impl ToSocketAddrs) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut got = [0u8; 5];
    s.read_exact(&mut got).is_ok() && &got == b"ping\n"
}

#[test]
fn dual_stack_any_address_accepts_ipv4_and_ipv6() {
    let l = Listener::bind(&"[::]:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    let port = l.local_socket_addr().unwrap().port();
    for host in ["127.0.0.1", "::1"] {
        let c = TcpStream::connect((host, port));
        assert!(c.is_ok(), "{host}: {c:?}");
        let (_, peer) = l.accept().unwrap();
        assert!(peer.inet().is_some(), "{host}");
    }
    // The opt-out: IPv6 only, and 0.0.0.0 can then share the port.
    let opts = ListenOptions {
        ipv6_only: true,
        ..ListenOptions::default()
    };
    let six = Listener::bind(&"[::]:0".parse().unwrap(), &opts).unwrap();
    let port = six.local_socket_addr().unwrap().port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(TcpStream::connect(("::1", port)).is_ok());
    let four = format!("0.0.0.0:{port}").parse().unwrap();
    assert!(Listener::bind(&four, &ListenOptions::default()).is_ok());
}

#[test]
fn server_on_the_any_address_serves_ipv4_and_ipv6() {
    let f = services::stream_factory("echo", &ServiceOptions::default()).unwrap();
    let server = Server::builder()
        .listen("[::]:0".parse().unwrap())
        .mode(Mode::Threads)
        .protocol_dyn(f)
        .build()
        .unwrap();
    let port = server.local_addresses()[0].host_port().unwrap().port;
    let stop = server.shutdown_handle();
    let t = std::thread::spawn(move || server.serve_forever());
    assert!(echoes(("127.0.0.1", port)));
    assert!(echoes(("::1", port)));
    stop.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn bind_error_names_the_address_once() {
    let taken = Listener::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    let addr = taken.local_address();
    let f = services::stream_factory("echo", &ServiceOptions::default()).unwrap();
    let e = Server::builder()
        .listen(addr.clone())
        .protocol_dyn(f)
        .build()
        .unwrap_err();
    assert!(matches!(e, ServerError::Bind { .. }), "{e}");
    // Everything a caller prints: the error and its sources.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert_eq!(text.matches(&addr.to_string()).count(), 1, "{text}");
    assert!(text.contains("in use"), "{text}");
}

/// The environment variable that makes this test binary the server of
/// [`second_signal_aborts_the_drain`].
const CHILD: &str = "NETKIT_REGRESSION_SIGNAL_SERVER";

/// In the child: an echo server that handles signals, with a long grace.
fn signal_server() {
    let f = services::stream_factory("echo", &ServiceOptions::default()).unwrap();
    let mode = match std::env::var(CHILD).as_deref() {
        Ok("fork") => Mode::Fork,
        Ok("pool") => Mode::Pool,
        Ok("sequential") => Mode::Sequential,
        _ => Mode::Threads,
    };
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .mode(mode)
        .grace(Duration::from_secs(60))
        .protocol_dyn(f)
        .handle_signals(true)
        .build()
        .unwrap();
    println!("listening on {}", server.local_addresses()[0]);
    server.serve_forever().unwrap();
    println!("drained");
}

#[test]
fn second_signal_aborts_the_drain() {
    if std::env::var_os(CHILD).is_some() {
        return signal_server();
    }
    for mode in Mode::ALL {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "serve::second_signal_aborts_the_drain",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, mode.name())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The child's stdout, line by line, read on a thread so that waiting
        // for the address is bounded in time.
        let (tx, lines) = mpsc::channel::<String>();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let Ok(line) = lines.recv_timeout(STEP) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{mode}: the server printed no address");
            };
            // libtest may print the test's name on the same line first.
            if let Some((_, a)) = line.split_once("listening on ") {
                break a.to_string();
            }
        };
        // A client holds its connection open, so the drain lasts the grace.
        let mut client = TcpStream::connect(&addr).unwrap();
        client.set_read_timeout(Some(STEP)).unwrap();
        client.write_all(b"hold\n").unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        let pid = child.id() as i32;
        // SAFETY: kill has no memory-safety preconditions; `pid` is our child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "{mode}: ended on one signal"
        );
        let second = Instant::now();
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(second.elapsed() < STEP, "{mode}: the drain went on");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(1), "{mode}");
        // A fork-mode child holds the pipes until its client goes.
        drop(client);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(err.contains("drain aborted"), "{mode}: {err}");
        let rest: Vec<String> = lines.try_iter().collect();
        assert!(
            !rest.iter().any(|l| l.contains("drained")),
            "{mode}: {rest:?}"
        );
    }
}

#[test]
fn reactor_default_grace_is_the_servers_ten_seconds() {
    use netkit::protocol;
    use netkit::reactor::ReactorConfig;
    let r = ReactorConfig::default();
    assert_eq!(r.grace, Duration::from_secs(10));
    assert_eq!(r.grace, protocol::DEFAULT_GRACE);
    assert_eq!(r.idle_timeout, protocol::DEFAULT_IDLE_TIMEOUT);
    assert_eq!(r.high_water, protocol::HIGH_WATER);
    assert_eq!(r.low_water, protocol::LOW_WATER);
    assert_eq!(r.mailbox_limit, protocol::MAILBOX_LIMIT);
    assert_eq!(r.backlog, netkit::net::DEFAULT_BACKLOG);
    let s = ServiceOptions::default();
    assert_eq!(s.max_line, protocol::DEFAULT_MAX_LINE);
    assert_eq!(s.header_timeout, Some(protocol::DEFAULT_HEADER_TIMEOUT));
    let h = netkit::http::HttpOptions::default();
    assert_eq!(h.header_timeout, protocol::DEFAULT_HEADER_TIMEOUT);
}
