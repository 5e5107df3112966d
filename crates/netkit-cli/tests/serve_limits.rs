//! `netkit serve` under load and at its limits, with seed-style Python clients
//! and Rust clients: many concurrent 1 MiB echoes, half-close, idle timeout,
//! resets, connect/close cycles (no leaked descriptors, no zombies), max line,
//! SIGTERM with streams in flight, the grace period and max-conns.

mod util;

use std::io::Read;
use std::net::Shutdown;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use netkit::net::{self, Address, Stream};

use util::{python, Served, CONCURRENT_MODES, MODES, STEP};

fn dial(addr: &str) -> Stream {
    let s = net::connect(&Address::parse(addr).unwrap(), STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    s
}

fn echo_server(mode: &str, extra: &[&str]) -> Served {
    let mut args = vec!["echo", "--mode", mode, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Served::start(&args)
}

fn stop(mut served: Served) {
    served.signal(libc::SIGTERM);
    let st = served.wait_exit(STEP);
    assert!(st.success(), "exit {st}\n{}", served.log());
}

fn two_hundred_clients(mode: &str) {
    let served = echo_server(mode, &[]);
    let (host, port) = served.host_port();
    let out = python(
        "clients.py",
        &["echo-many", &host, &port.to_string(), "200", "1048576"],
        Duration::from_secs(150),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 200");
    stop(served);
}

#[test]
fn two_hundred_concurrent_1mib_echoes_threads() {
    two_hundred_clients(CONCURRENT_MODES[0]);
}

#[test]
fn two_hundred_concurrent_1mib_echoes_pool() {
    two_hundred_clients(CONCURRENT_MODES[1]);
}

#[test]
fn two_hundred_concurrent_1mib_echoes_fork() {
    two_hundred_clients(CONCURRENT_MODES[2]);
}

#[test]
fn two_hundred_concurrent_1mib_echoes_reactor() {
    two_hundred_clients(CONCURRENT_MODES[3]);
}

#[test]
fn half_close_gets_every_byte_back_in_every_mode() {
    for &mode in MODES {
        let served = echo_server(mode, &[]);
        let (host, port) = served.host_port();
        let out = python(
            "clients.py",
            &["half-close", &host, &port.to_string(), "1048576"],
            STEP,
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{mode}");
        stop(served);
    }
}

#[test]
fn silent_client_is_closed_at_idle_timeout_in_every_mode() {
    for &mode in MODES {
        let served = echo_server(mode, &["--idle-timeout", "1s"]);
        let (host, port) = served.host_port();
        let out = python("clients.py", &["idle", &host, &port.to_string()], STEP);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "closed",
            "{mode}"
        );
        assert!(
            served.wait_log("idle timeout", STEP),
            "{mode}: {}",
            served.log()
        );
        // A client that keeps talking is not idle.
        let s = dial(&served.addr("tcp"));
        for _ in 0..4 {
            thread::sleep(Duration::from_millis(100));
            s.send_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap();
        }
        drop(s);
        stop(served);
    }
}

#[test]
fn a_reset_mid_message_does_not_disturb_others() {
    for &mode in CONCURRENT_MODES {
        let served = echo_server(mode, &["--workers", "8"]);
        let (host, port) = served.host_port();
        let out = python(
            "clients.py",
            &["reset-others", &host, &port.to_string()],
            STEP * 2,
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{mode}");
        stop(served);
    }
}

/// Zombie children of `pid`.
fn zombies_of(pid: i32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 1 && f[0] == "Z" && f[1] == pid.to_string() {
            n += 1;
        }
    }
    n
}

#[test]
fn connect_close_cycles_leak_no_descriptors_or_zombies() {
    for &mode in MODES {
        let served = echo_server(mode, &[]);
        let (host, port) = served.host_port();
        // One warm-up cycle, so whatever serving sets up once is counted.
        python(
            "clients.py",
            &["cycles", &host, &port.to_string(), "1"],
            STEP,
        );
        thread::sleep(Duration::from_millis(200));
        let before = served.fd_count();
        let out = python(
            "clients.py",
            &["cycles", &host, &port.to_string(), "2000"],
            STEP * 3,
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 2000");
        let deadline = Instant::now() + STEP;
        while served.fd_count() > before || zombies_of(served.pid()) > 0 {
            assert!(
                Instant::now() < deadline,
                "{mode}: {} fds before, {} after: {:?}; {} zombies",
                before,
                served.fd_count(),
                served.fd_list(),
                zombies_of(served.pid())
            );
            thread::sleep(Duration::from_millis(50));
        }
        stop(served);
    }
}

#[test]
fn a_line_over_max_line_closes_only_that_connection() {
    for &mode in CONCURRENT_MODES {
        let served = Served::start(&[
            "upper",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--max-line",
            "1000",
        ]);
        let (host, port) = served.host_port();
        let out = python(
            "clients.py",
            &["max-line", &host, &port.to_string(), "1000"],
            STEP,
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "BEFORE AFTER closed",
            "{mode}"
        );
        stop(served);
    }
}

#[test]
fn sigterm_with_fifty_streams_in_flight_echoes_every_byte_and_exits_0() {
    const N: usize = 50;
    const CHUNK: usize = 64 * 1024;
    for &mode in CONCURRENT_MODES {
        let mut served = echo_server(mode, &["--workers", "64"]);
        let addr = served.addr("tcp");
        let sent = Arc::new(Barrier::new(N + 1));
        let signalled = Arc::new(Barrier::new(N + 1));
        let clients: Vec<_> = (0..N)
            .map(|i| {
                let (addr, sent, signalled) = (addr.clone(), sent.clone(), signalled.clone());
                thread::spawn(move || {
                    let s = dial(&addr);
                    let data: Vec<u8> = (0..2 * CHUNK).map(|k| (k * 31 + i) as u8).collect();
                    let mut back = vec![0u8; 2 * CHUNK];
                    // The first half round-trips, so the connection is being served.
                    s.send_all(&data[..CHUNK]).unwrap();
                    s.read_exact(&mut back[..CHUNK]).unwrap();
                    s.send_all(&data[CHUNK..]).unwrap();
                    sent.wait();
                    signalled.wait();
                    s.read_exact(&mut back[CHUNK..]).unwrap();
                    assert!(back == data, "stream {i}: echo differs");
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut rest = Vec::new();
                    (&s).read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty());
                })
            })
            .collect();
        sent.wait();
        served.signal(libc::SIGTERM);
        signalled.wait();
        for c in clients {
            c.join().unwrap();
        }
        let st = served.wait_exit(STEP);
        assert!(st.success(), "{mode}: exit {st}\n{}", served.log());
    }
}

#[test]
fn grace_period_end_closes_connections_left_and_exits_0() {
    for &mode in MODES {
        let mut served = echo_server(mode, &["--grace", "300ms"]);
        let s = dial(&served.addr("tcp"));
        s.send_all(b"x").unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap();
        served.signal(libc::SIGTERM);
        let mut rest = Vec::new();
        let _ = (&s).read_to_end(&mut rest);
        assert!(rest.is_empty(), "{mode}");
        let st = served.wait_exit(STEP);
        assert!(st.success(), "{mode}: exit {st}\n{}", served.log());
        if mode != "fork" {
            assert!(
                served.wait_log("shutting down", STEP),
                "{mode}: {}",
                served.log()
            );
        }
    }
}

#[test]
fn over_max_conns_a_client_waits_and_is_served_when_a_slot_frees() {
    for &mode in CONCURRENT_MODES {
        let served = echo_server(mode, &["--max-conns", "2"]);
        let addr = served.addr("tcp");
        let echo = |s: &Stream, b: &[u8]| {
            s.send_all(b).unwrap();
            let mut got = vec![0u8; b.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got, b);
        };
        let a = dial(&addr);
        echo(&a, b"a");
        let b = dial(&addr);
        echo(&b, b"b");
        // The third connects (the kernel's backlog) but is not served yet.
        let c = dial(&addr);
        c.send_all(b"c").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut one = [0u8; 1];
        assert!(
            (&c).read(&mut one).is_err(),
            "{mode}: served over the limit"
        );
        // A slot frees: the waiting client is served.
        drop(a);
        c.set_read_timeout(Some(STEP)).unwrap();
        c.read_exact(&mut one).unwrap();
        assert_eq!(&one, b"c", "{mode}");
        echo(&b, b"still");
        drop((b, c));
        stop(served);
    }
}

#[test]
fn out_of_descriptors_accepting_pauses_logs_and_recovers() {
    // A server limited to a few descriptors: accept fails with EMFILE.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 24 && exec \"$0\" serve echo --listen 127.0.0.1:0")
        .arg(util::netkit());
    let served = Served::spawn(cmd, 1);
    let addr = served.addr("tcp");
    let clients: Vec<Stream> = (0..30).map(|_| dial(&addr)).collect();
    assert!(
        served.wait_log("Too many open files", STEP),
        "{}",
        served.log()
    );
    drop(clients);
    // Descriptors free up: the server accepts and serves again.
    let deadline = Instant::now() + STEP;
    loop {
        let s = dial(&addr);
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_all(b"back").unwrap();
        let mut got = [0u8; 4];
        if s.read_exact(&mut got).is_ok() {
            assert_eq!(&got, b"back");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not serving again: {}",
            served.log()
        );
    }
    stop(served);
}
