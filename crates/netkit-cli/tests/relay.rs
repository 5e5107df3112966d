//! `netkit relay LISTEN TARGET`: many concurrent connections through one relay
//! on a few threads, backpressure with bounded memory, every kind of target (TCP,
//! Unix, UDP, stdio), Unix, stdio and UDP as LISTEN (UDP: a session per client,
//! closed when idle), `--max-conns`, and a target that refuses.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use util::{run_bounded, Served, TempDir, STEP};

fn relay(args: &[&str]) -> Served {
    let mut cmd = Command::new(util::netkit());
    cmd.arg("relay").args(args);
    Served::spawn(cmd, 1)
}

/// Sends `data`, half-closes, and reads everything back.
fn round_trip(mut c: impl Read + Write, data: &[u8], shut: impl FnOnce(&mut dyn Write)) -> Vec<u8> {
    c.write_all(data).unwrap();
    shut(&mut c);
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    got
}

fn tcp_round_trip(addr: &str, data: &[u8]) -> Vec<u8> {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    let c2 = c.try_clone().unwrap();
    round_trip(c, data, move |_| c2.shutdown(Shutdown::Write).unwrap())
}

/// A number field of /proc/PID/status (`VmRSS` in KiB, `Threads`).
fn status_field(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn rss_kib(pid: i32) -> u64 {
    status_field(pid, "VmRSS")
}

#[test]
fn many_concurrent_connections_through_one_relay() {
    let echo = Served::start(&["echo", "--listen", "127.0.0.1:0"]);
    let r = relay(&["127.0.0.1:0", &echo.addr("tcp")]);
    let addr = r.addr("tcp");
    // All clients connect first, so the relay holds them all at once.
    let clients: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            thread::spawn(move || {
                let data: Vec<u8> = (0..100_000u32)
                    .map(|j| ((i as u32 * 7 + j) % 251) as u8)
                    .collect();
                c.set_read_timeout(Some(STEP)).unwrap();
                let c2 = c.try_clone().unwrap();
                let got = round_trip(c, &data, move |_| c2.shutdown(Shutdown::Write).unwrap());
                assert!(got == data, "client {i}: {} bytes back", got.len());
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn three_hundred_connections_share_a_few_threads() {
    let echo = Served::start(&[
        "echo",
        "--mode",
        "reactor",
        "--workers",
        "1",
        "--listen",
        "127.0.0.1:0",
    ]);
    let r = relay(&["127.0.0.1:0", &echo.addr("tcp"), "--workers", "2"]);
    let addr = r.addr("tcp");
    let payload = |i: usize| -> Vec<u8> {
        let mut p = format!("client {i}:").into_bytes();
        p.extend((0..2000u32).map(|j| ((i as u32 * 13 + j) % 251) as u8));
        p
    };
    let mut clients: Vec<TcpStream> = (0..300)
        .map(|_| {
            let c = TcpStream::connect(&addr).unwrap();
            c.set_read_timeout(Some(STEP)).unwrap();
            c
        })
        .collect();
    // Small payloads fit the socket buffers: writing them all first cannot block.
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&payload(i)).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let want = payload(i);
        let mut got = vec![0u8; want.len()];
        c.read_exact(&mut got).unwrap();
        assert!(got == want, "client {i} got another payload back");
    }
    // Every session is open now, each with its client and its target connection.
    let threads = status_field(r.pid(), "Threads");
    assert!(
        threads < 16,
        "the relay runs {threads} threads for 300 sessions"
    );
    assert!(r.fd_count() >= 600, "{} descriptors", r.fd_count());
    for (i, c) in clients.iter_mut().enumerate() {
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"", "client {i}");
    }
}

#[test]
fn a_slow_target_slows_the_client_and_memory_stays_bounded() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let r = relay(&["127.0.0.1:0", &target.local_addr().unwrap().to_string()]);
    let mut client = TcpStream::connect(r.addr("tcp")).unwrap();
    let (mut slow, _) = target.accept().unwrap();
    // The target reads nothing yet: of the 64 MiB the client tries to send, the
    // writes must stall well before the end, because the relay holds a bounded
    // amount per direction (the rest sits in the kernels' socket buffers).
    client
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0usize;
    let limit = 64 << 20;
    let deadline = Instant::now() + STEP;
    while sent < limit && Instant::now() < deadline {
        match client.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(sent < limit, "the relay swallowed {sent} bytes");
    let rss = rss_kib(r.pid());
    assert!(
        rss < 64 * 1024,
        "relay RSS {rss} KiB with {sent} bytes in flight"
    );
    // Now the target drains everything the client sent.
    client.shutdown(Shutdown::Write).unwrap();
    slow.set_read_timeout(Some(STEP)).unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + STEP;
    loop {
        let n = slow.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 7));
        total += n;
        assert!(Instant::now() < deadline);
    }
    assert_eq!(total, sent);
}

#[test]
fn unix_to_tcp_and_tcp_to_unix() {
    let dir = TempDir::new("relay-unix");
    let echo_path = dir.path("echo.sock");
    let echo = Served::start(&[
        "upper",
        "--listen",
        &format!("unix://{}", echo_path.display()),
    ]);
    let _ = &echo;
    let r1 = relay(&["127.0.0.1:0", &format!("unix://{}", echo_path.display())]);
    assert_eq!(tcp_round_trip(&r1.addr("tcp"), b"via tcp\n"), b"VIA TCP\n");

    let front = dir.path("front.sock");
    let _r2 = relay(&[&format!("unix://{}", front.display()), &r1.addr("tcp")]);
    let u = UnixStream::connect(&front).unwrap();
    u.set_read_timeout(Some(STEP)).unwrap();
    let u2 = u.try_clone().unwrap();
    let got = round_trip(u, b"via unix\n", move |_| {
        u2.shutdown(Shutdown::Write).unwrap()
    });
    assert_eq!(got, b"VIA UNIX\n");
}

#[test]
fn unix_listen_to_tcp_target_passes_half_close_both_ways() {
    let dir = TempDir::new("relay-unix-listen");
    let front = dir.path("front.sock");
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = format!("unix://{}", front.display());
    let r = relay(&[&listen, &target.local_addr().unwrap().to_string()]);
    assert_eq!(r.addr("unix"), listen);
    // Three sessions open at once; each client's target connection is accepted
    // before the next client connects, so they pair up.
    let pairs: Vec<(UnixStream, TcpStream)> = (0..3)
        .map(|_| {
            let u = UnixStream::connect(&front).unwrap();
            u.set_read_timeout(Some(STEP)).unwrap();
            let (s, _) = target.accept().unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            (u, s)
        })
        .collect();
    for (i, (mut u, mut s)) in pairs.into_iter().enumerate() {
        // The client's FIN reaches the target behind its data...
        u.write_all(format!("request {i}").as_bytes()).unwrap();
        u.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, format!("request {i}"));
        // ...the target still answers, and its FIN reaches the client.
        s.write_all(format!("answer {i}").as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = String::new();
        u.read_to_string(&mut back).unwrap();
        assert_eq!(back, format!("answer {i}"));
    }
}

#[test]
fn connections_over_max_conns_are_closed_at_once() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let r = relay(&[
        "127.0.0.1:0",
        &target.local_addr().unwrap().to_string(),
        "--max-conns",
        "1",
    ]);
    let mut first = TcpStream::connect(r.addr("tcp")).unwrap();
    first.set_read_timeout(Some(STEP)).unwrap();
    let (mut s, _) = target.accept().unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    first.write_all(b"one").unwrap();
    let mut got = [0u8; 3];
    s.read_exact(&mut got).unwrap();
    // The second connection finds the relay full: closed, never relayed.
    let mut second = TcpStream::connect(r.addr("tcp")).unwrap();
    second.set_read_timeout(Some(STEP)).unwrap();
    let mut rest = Vec::new();
    match second.read_to_end(&mut rest) {
        Ok(_) => assert_eq!(rest, b""),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
    assert!(
        r.wait_log("connection 2 from 127.0.0.1:", STEP)
            && r.log().contains("over --max-conns, closed"),
        "{}",
        r.log()
    );
    // Once the first session ends, a new connection is relayed.
    first.shutdown(Shutdown::Write).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    first.read_to_end(&mut all).unwrap();
    drop((first, s));
    // The first session may take a moment to be counted out: a connection
    // turned away meanwhile is closed without reaching the target, so retry.
    target.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + STEP;
    let (mut c, mut s) = loop {
        let c = TcpStream::connect(r.addr("tcp")).unwrap();
        let mut accepted = None;
        for _ in 0..50 {
            match target.accept() {
                Ok((s, _)) => {
                    accepted = Some(s);
                    break;
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
        if let Some(s) = accepted {
            break (c, s);
        }
        assert!(Instant::now() < deadline, "{}", r.log());
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"three").unwrap();
    let mut got = [0u8; 5];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"three");
}

#[test]
fn udp_target_gets_a_datagram_per_chunk_and_replies_come_back() {
    let echo = Served::start(&["upper", "--listen", "udp://127.0.0.1:0"]);
    let r = relay(&["127.0.0.1:0", &echo.addr("udp")]);
    let mut c = TcpStream::connect(r.addr("tcp")).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"datagram one").unwrap();
    let mut got = [0u8; 12];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"DATAGRAM ONE");
    // The session ends a moment after the client's FIN (no EOF from UDP).
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
}

#[test]
fn stdio_as_target_and_as_listen() {
    let dir = TempDir::new("relay-stdio");
    let input = dir.path("in");
    std::fs::write(&input, b"from stdin\n").unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" relay 127.0.0.1:0 - < \"$NK_STDIN\"")
        .arg(util::netkit())
        .env("NK_STDIN", &input);
    let r = Served::spawn(cmd, 1);
    assert_eq!(
        tcp_round_trip(&r.addr("tcp"), b"from client\n"),
        b"from stdin\n"
    );
    let deadline = Instant::now() + STEP;
    while !r.stdout.lock().unwrap().contains("from client\n") {
        assert!(
            Instant::now() < deadline,
            "stdout: {:?}",
            r.stdout.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(10));
    }

    // LISTEN `-`: one session between stdin/stdout and the target.
    let echo = Served::start(&["upper", "--listen", "127.0.0.1:0"]);
    let mut cmd = Command::new(util::netkit());
    cmd.arg("relay").arg("-").arg(echo.addr("tcp"));
    let out = run_bounded(cmd, b"shout\n", STEP);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"SHOUT\n");
}

#[test]
fn a_refusing_target_closes_the_client_and_the_relay_goes_on() {
    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_addr = gone.local_addr().unwrap().to_string();
    drop(gone);
    let r = relay(&["127.0.0.1:0", &gone_addr, "--timeout", "2s"]);
    for _ in 0..2 {
        // Closed with unread data: an end-of-file or a reset, never data.
        let mut c = TcpStream::connect(r.addr("tcp")).unwrap();
        c.set_read_timeout(Some(STEP)).unwrap();
        let _ = c.write_all(b"anyone?");
        let mut got = Vec::new();
        match c.read_to_end(&mut got) {
            Ok(_) => assert_eq!(got, b""),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        }
    }
    assert!(r.wait_log("cannot connect", STEP), "{}", r.log());
    assert!(r.child.id() > 0);

    let mut cmd = Command::new(util::netkit());
    cmd.args(["relay", "-", "-"]);
    let out = run_bounded(cmd, b"", STEP);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not -"));
}

#[test]
fn udp_listen_makes_one_session_per_client() {
    let upper = Served::start(&[
        "upper",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "udp://127.0.0.1:0",
    ]);
    for target in [upper.addr("tcp"), upper.addr("udp")] {
        let r = relay(&["udp://127.0.0.1:0", &target]);
        let addr = r.addr("udp").trim_start_matches("udp://").to_string();
        let clients: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(STEP)).unwrap();
            c.send_to(format!("client {i}\n").as_bytes(), &addr)
                .unwrap();
        }
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 64];
            let (n, _) = c.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("CLIENT {i}\n").as_bytes(), "{target}");
        }
    }
}

#[test]
fn udp_sessions_close_when_idle() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let r = relay(&[
        "udp://127.0.0.1:0",
        &target.local_addr().unwrap().to_string(),
        "--idle-timeout",
        "300ms",
    ]);
    let addr = r.addr("udp").trim_start_matches("udp://").to_string();
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(b"hello", &addr).unwrap();
    let (mut s, _) = target.accept().unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut got = Vec::new();
    // The datagram arrives, then the relay closes the idle session.
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    // A new datagram opens a new session.
    c.send_to(b"again", &addr).unwrap();
    let (mut s, _) = target.accept().unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut got = [0u8; 5];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"again");
}
