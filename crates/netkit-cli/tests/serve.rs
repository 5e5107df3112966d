//! `netkit serve`: every built-in service in every mode, over TCP, Unix stream,
//! UDP and Unix datagram sockets, with Rust clients; plus the seeds' own Python
//! clients against the matching services.

mod util;

use std::io::Read;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use netkit::net::{self, Address, Datagram, Stream};
use netkit::services;

use util::{python, Served, TempDir, MODES, STEP};

fn dial(addr: &str) -> Stream {
    let s = net::connect(&Address::parse(addr).unwrap(), STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    s
}

fn read_all(s: &Stream) -> Vec<u8> {
    let mut v = Vec::new();
    (&*s).read_to_end(&mut v).unwrap();
    v
}

/// Sends `data`, half-closes, returns everything until the server closes.
fn exchange(addr: &str, data: &[u8]) -> Vec<u8> {
    let s = dial(addr);
    s.send_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    read_all(&s)
}

/// Reads until `needle` shows up (or the server closes / times out).
fn read_until(s: &Stream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match (&*s).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// One service's behaviour over a stream address.
fn check_stream(service: &str, mode: &str, addr: &str, served: &Served) {
    let ctx = format!("{service} in {mode} mode on {addr}");
    match service {
        "echo" => assert_eq!(exchange(addr, b"hello\nworld"), b"hello\nworld", "{ctx}"),
        "upper" => assert_eq!(
            exchange(addr, b"hello\nworld\n"),
            b"HELLO\nWORLD\n",
            "{ctx}"
        ),
        "discard" => assert_eq!(exchange(addr, &[7u8; 100_000]), b"", "{ctx}"),
        "hello" => assert_eq!(read_all(&dial(addr)), services::hello::GREETING, "{ctx}"),
        "daytime" => {
            let t = read_all(&dial(addr));
            assert!(t.len() > 5 && t.ends_with(b"\n"), "{ctx}: {t:?}");
        }
        "chargen" => {
            let s = dial(addr);
            // Far more than the socket buffers hold: the producer keeps producing.
            let mut buf = vec![0u8; 8 << 20];
            s.read_exact(&mut buf).unwrap();
            assert!(
                buf.iter()
                    .all(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n')),
                "{ctx}"
            );
        }
        "logger" => {
            let line = format!("logged via {mode} {}", addr.len());
            assert_eq!(exchange(addr, format!("{line}\n").as_bytes()), b"", "{ctx}");
            let deadline = Instant::now() + STEP;
            while !served.stdout.lock().unwrap().contains(&line) {
                assert!(Instant::now() < deadline, "{ctx}: {line} not logged");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        "chat" if mode == "sequential" => {
            // One client at a time: a lone member's line goes nowhere.
            assert_eq!(exchange(addr, b"anyone?\n"), b"", "{ctx}");
        }
        "chat" => {
            let a = dial(addr);
            a.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            // B's join is announced to A once A is a member; retry until it is.
            let mut b = None;
            for _ in 0..40 {
                let candidate = dial(addr);
                if read_until(&a, "joined").contains("joined") {
                    b = Some(candidate);
                    break;
                }
            }
            let b = b.unwrap_or_else(|| panic!("{ctx}: A never heard anyone join"));
            a.set_read_timeout(Some(STEP)).unwrap();
            b.send_all(b"hi from b\n").unwrap();
            let heard = read_until(&a, "hi from b");
            assert!(heard.contains(": hi from b"), "{ctx}: {heard:?}");
        }
        "receive" => {
            // A header with a bad magic: one result record (kind 2, status 3 =
            // bad header), then the receiver closes. Nothing is written.
            let reply = exchange(addr, &[b'X'; 40]);
            let (r, _) = services::transfer::Reply::decode(&reply).unwrap().unwrap();
            assert_eq!(
                r.status,
                services::transfer::Status::BadHeader,
                "{ctx}: {r:?}"
            );
        }
        other => panic!("no test for service `{other}`: add one to check_stream"),
    }
}

/// One service's behaviour over a datagram address.
fn check_datagram(service: &str, addr: &str) {
    let sock = Datagram::connect_to(&Address::parse(addr).unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = vec![0u8; 70_000];
    let mut ask = |msg: &[u8]| -> Option<Vec<u8>> {
        // UDP may drop a datagram: ask a few times.
        for _ in 0..5 {
            sock.send(msg).unwrap();
            if let Ok(r) = sock.recv(&mut buf) {
                return Some(buf[..r.len].to_vec());
            }
        }
        None
    };
    let ctx = format!("{service} on {addr}");
    match service {
        "echo" => assert_eq!(ask(b"hello").as_deref(), Some(&b"hello"[..]), "{ctx}"),
        "upper" => assert_eq!(ask(b"hello").as_deref(), Some(&b"HELLO"[..]), "{ctx}"),
        "discard" => assert_eq!(ask(b"hello"), None, "{ctx}"),
        "daytime" | "chargen" => assert!(ask(b"x").is_some_and(|r| !r.is_empty()), "{ctx}"),
        other => panic!("no test for datagram service `{other}`: add one to check_datagram"),
    }
}

/// Every service in `mode`, on all four kinds of address at once.
fn services_in(mode: &str) {
    for service in services::names() {
        let dir = TempDir::new("svc");
        let unix = format!("unix://{}", dir.path("s.sock").display());
        let udgram = format!("unix-dgram://{}", dir.path("d.sock").display());
        let dgram = services::datagram_names().contains(&service);
        let mut args = vec![
            service,
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--listen",
            &unix,
        ];
        if dgram {
            args.extend(["--listen", "udp://127.0.0.1:0", "--listen", &udgram]);
        }
        if mode == "fork" && service == "chat" {
            let out = std::process::Command::new(util::netkit())
                .arg("serve")
                .args(&args)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("fork mode") && err.contains("share state"),
                "{err}"
            );
            continue;
        }
        let mut served = Served::start(&args);
        for kind in ["tcp", "unix"] {
            check_stream(service, mode, &served.addr(kind), &served);
        }
        if dgram {
            for kind in ["udp", "unix-dgram"] {
                check_datagram(service, &served.addr(kind));
            }
        }
        served.signal(libc::SIGTERM);
        let st = served.wait_exit(STEP);
        assert!(st.success(), "{service} in {mode}: {st}\n{}", served.log());
        assert!(!dir.path("s.sock").exists(), "unix socket file left behind");
    }
}

#[test]
fn every_service_sequential() {
    services_in(MODES[0]);
}

#[test]
fn every_service_threads() {
    services_in(MODES[1]);
}

#[test]
fn every_service_pool() {
    services_in(MODES[2]);
}

#[test]
fn every_service_fork() {
    services_in(MODES[3]);
}

#[test]
fn every_service_reactor() {
    services_in(MODES[4]);
}

#[test]
fn every_mode_is_tested() {
    assert_eq!(
        MODES.len(),
        5,
        "add an every_service_<mode> test for the new mode"
    );
}

#[test]
fn seed_clients_against_matching_services() {
    for &mode in MODES {
        let dir = TempDir::new("seedcl");
        let sock = dir.path("hello.sock");
        let unix = format!("unix://{}", sock.display());
        let served = Served::start(&[
            "hello",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--listen",
            &unix,
        ]);
        let (host, port) = served.host_port();
        let out = python("small_client.py", &[&host, &port.to_string()], STEP);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Thank you for connecting\n"
        );
        let out = python("unix_client.py", &[sock.to_str().unwrap()], STEP);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Received from server: b'Thank you for connecting'\n"
        );
        drop(served);

        let served = Served::start(&[
            "upper",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "udp://127.0.0.1:0",
        ]);
        let (host, port) = served.host_port();
        let out = python(
            "socketserver_client.py",
            &[&host, &port.to_string(), "hello", "world"],
            STEP,
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            // netkit's upper keeps the line's newline; the seed's server strips it.
            "Sent:     hello world\nReceived: HELLO WORLD\n\n"
        );
        let udp = served.addr("udp");
        let (h, p) = udp.trim_start_matches("udp://").rsplit_once(':').unwrap();
        let out = python("udp_client.py", &[h, p], STEP);
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .starts_with("Received b'HELLO WORLD' from server at"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    for (args, needle) in [
        (vec!["serve", "--idle-timeout", "10 sec"], "500ms"),
        (vec!["serve", "--max-line", "lots"], "64KiB"),
        (
            vec!["serve", "nosuch", "--listen", "127.0.0.1:0"],
            "possible values",
        ),
        (vec!["serve", "--listen", "nowhere"], "invalid address"),
        (
            vec!["serve", "hello", "--listen", "udp://127.0.0.1:0"],
            "does not serve datagrams",
        ),
        (
            vec!["serve", "--workers", "0", "--listen", "127.0.0.1:0"],
            "--workers",
        ),
    ] {
        let out = std::process::Command::new(util::netkit())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn no_arguments_serves_echo_on_port_9000() {
    let mut cmd = std::process::Command::new(util::netkit());
    cmd.arg("serve");
    let mut served = match std::net::TcpListener::bind("127.0.0.1:9000") {
        // Port 9000 is free (we held it a moment): the default must take it.
        Ok(probe) => {
            drop(probe);
            Served::spawn(cmd, 1)
        }
        // Something else has port 9000: the error must name it.
        Err(_) => {
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("127.0.0.1:9000"), "{err}");
            return;
        }
    };
    assert_eq!(served.addrs, ["127.0.0.1:9000"]);
    let s = dial("127.0.0.1:9000");
    s.send_all(b"default").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&s), b"default");
    served.signal(libc::SIGINT);
    let st = served.wait_exit(STEP);
    assert!(st.success(), "SIGINT: {st}\n{}", served.log());
}

#[test]
fn backlog_and_workers_are_accepted() {
    let mut served = Served::start(&[
        "echo",
        "--mode",
        "pool",
        "--workers",
        "3",
        "--backlog",
        "16",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(exchange(&served.addr("tcp"), b"ok"), b"ok");
    served.signal(libc::SIGINT);
    assert!(served.wait_exit(STEP).success());
}
