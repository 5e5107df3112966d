//! `netkit serve` under hostile load, loopback only, bounded in count and time:
//! slowloris connections, a connection flood over `--max-conns`, a 1 GiB line
//! with no delimiter, a client that never reads `chargen`, and running out of
//! file descriptors. Memory is checked with the server's peak resident size
//! (VmHWM), a busy accept loop with its CPU time; no test asserts how long
//! anything took, only that it happened before a generous deadline.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use util::{Served, STEP};

/// The modes these tests run in.
const MODES: &[&str] = &["threads", "pool", "reactor"];

/// The most the server may have resident at any time in the memory tests.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// Raises this process's descriptor limit to its hard limit (the slowloris and
/// flood tests hold hundreds of sockets; the server inherits the limit).
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

/// A field of /proc/PID/status in KiB (VmHWM, VmRSS).
fn status_kib(pid: i32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

fn dial(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    s
}

/// One echo round trip, true when it came back.
fn echo_ok(addr: &str, msg: &[u8], limit: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(limit)).unwrap();
    if s.write_all(msg).is_err() {
        return false;
    }
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).is_ok() && back == msg
}

fn stop(mut served: Served) {
    served.signal(libc::SIGTERM);
    let st = served.wait_exit(STEP * 3);
    assert!(st.success(), "exit {st}\n{}", served.log());
}

/// Whether the server closed `s` (EOF or reset); echoed bytes are read and dropped.
fn is_closed(mut s: &TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Slowloris: `n` connections that send one byte every 3 seconds. A new client
/// is still served (before a generous deadline), and every slow connection is
/// closed at the 2 s idle timeout.
fn slowloris(mode: &str, n: usize, extra: &[&str]) {
    raise_nofile();
    let mut args = vec!["echo", "--mode", mode, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(&["--idle-timeout", "2s"]);
    args.extend_from_slice(extra);
    let served = Served::start(&args);
    let addr = served.addr("tcp");
    let mut slow: Vec<Option<TcpStream>> = (0..n)
        .map(|_| {
            let s = TcpStream::connect(&addr).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = (&s).write(b"x");
            Some(s)
        })
        .collect();
    // A new client, while the slow ones hold their connections.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !echo_ok(&addr, b"new client", Duration::from_secs(5)) {
        assert!(
            Instant::now() < deadline,
            "{mode}: new client not served\n{}",
            served.log()
        );
    }
    // One byte every 3 s from each slow connection still open, until the
    // server has closed them all.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut next_byte = Instant::now() + Duration::from_secs(3);
    loop {
        for c in slow.iter_mut() {
            if c.as_ref().is_some_and(is_closed) {
                *c = None;
            }
        }
        let open = slow.iter().flatten().count();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{mode}: {open} of {n} slow connections still open"
        );
        if Instant::now() >= next_byte {
            for s in slow.iter().flatten() {
                let _ = (&*s).write(b"x");
            }
            next_byte = Instant::now() + Duration::from_secs(3);
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(served.wait_log("idle timeout", STEP), "{}", served.log());
    assert!(echo_ok(&addr, b"after", STEP), "{mode}: not serving after");
    stop(served);
}

#[test]
fn slowloris_1000_connections_threads() {
    slowloris(MODES[0], 1000, &[]);
}

#[test]
fn slowloris_1000_connections_reactor() {
    slowloris(MODES[2], 1000, &[]);
}

/// Pool mode parks waiting connections off its workers: two workers are enough.
#[test]
fn slowloris_1000_connections_pool() {
    slowloris(MODES[1], 1000, &["--workers", "2"]);
}

#[test]
fn a_flood_over_max_conns_waits_in_the_backlog_and_memory_stays_bounded() {
    raise_nofile();
    for &mode in MODES {
        let served = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--workers",
            "16",
            "--max-conns",
            "20",
            "--listen",
            "127.0.0.1:0",
        ]);
        let addr = served.addr("tcp");
        let mut existing = dial(&addr);
        existing.write_all(b"first").unwrap();
        let mut back = [0u8; 5];
        existing.read_exact(&mut back).unwrap();
        let before = served.fd_count();
        let flood: Vec<TcpStream> = (0..500)
            .map(|_| {
                let s = dial(&addr);
                s.set_nonblocking(true).unwrap();
                let _ = (&s).write(b"hi");
                s
            })
            .collect();
        thread::sleep(Duration::from_millis(500));
        // The existing client keeps working.
        existing.write_all(b"still").unwrap();
        existing.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still", "{mode}");
        // Only max-conns connections were accepted; the rest wait in the backlog.
        let fds = served.fd_count();
        assert!(
            fds <= before + 20 + 4,
            "{mode}: {fds} descriptors open ({before} before the flood)"
        );
        let hwm = status_kib(served.pid(), "VmHWM");
        assert!(hwm < RSS_LIMIT_KIB, "{mode}: VmHWM {hwm} KiB");
        drop(flood);
        drop(existing);
        let deadline = Instant::now() + STEP * 2;
        while !echo_ok(&addr, b"after the flood", Duration::from_secs(5)) {
            assert!(Instant::now() < deadline, "{mode}: not serving after");
        }
        stop(served);
    }
}

#[test]
fn a_1gib_line_is_cut_at_max_line_and_memory_stays_bounded() {
    for &mode in MODES {
        let served = Served::start(&[
            "upper",
            "--mode",
            mode,
            "--max-line",
            "64KiB",
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut s = dial(&served.addr("tcp"));
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent: u64 = 0;
        let mut closed = false;
        while sent < 1 << 30 {
            match s.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        assert!(closed, "{mode}: the server took 1 GiB without closing");
        assert!(sent < 1 << 30, "{mode}");
        let hwm = status_kib(served.pid(), "VmHWM");
        assert!(
            hwm < RSS_LIMIT_KIB,
            "{mode}: VmHWM {hwm} KiB after {sent} bytes"
        );
        // The server serves the next client's short line.
        let mut c = dial(&served.addr("tcp"));
        c.write_all(b"short\n").unwrap();
        let mut back = [0u8; 6];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"SHORT\n", "{mode}");
        eprintln!("{mode}: closed after {sent} bytes of a 1 GiB line; VmHWM {hwm} KiB");
        drop((s, c));
        stop(served);
    }
}

#[test]
fn a_client_that_never_reads_chargen_does_not_grow_the_server() {
    for &mode in MODES {
        // Pool mode: a worker stays with a connection until it ends, so more
        // workers than stuck readers are needed for the fifth client.
        let served = Served::start(&[
            "chargen",
            "--mode",
            mode,
            "--workers",
            "8",
            "--listen",
            "127.0.0.1:0",
        ]);
        let addr = served.addr("tcp");
        let idle_readers: Vec<TcpStream> = (0..4).map(|_| dial(&addr)).collect();
        thread::sleep(Duration::from_secs(2));
        let rss1 = status_kib(served.pid(), "VmRSS");
        thread::sleep(Duration::from_secs(1));
        let hwm = status_kib(served.pid(), "VmHWM");
        assert!(
            hwm < RSS_LIMIT_KIB,
            "{mode}: VmHWM {hwm} KiB (VmRSS {rss1})"
        );
        // Another client still gets chargen's output.
        let mut s = dial(&addr);
        let mut line = [0u8; 74];
        s.read_exact(&mut line).unwrap();
        assert_eq!(line[72..], *b"\r\n", "{mode}");
        drop((s, idle_readers));
        stop(served);
    }
}

#[test]
fn out_of_descriptors_the_accept_loop_pauses_without_spinning_and_recovers() {
    for &mode in MODES {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(
                "ulimit -n 32 && exec \"$0\" serve echo --mode \"$1\" --workers \"$2\" \
                 --listen 127.0.0.1:0",
            )
            .arg(util::netkit())
            .arg(mode)
            // Pool: enough workers to run out of descriptors; the reactor: one
            // loop (each loop has descriptors of its own).
            .arg(if mode == "reactor" { "1" } else { "64" });
        let served = Served::spawn(cmd, 1);
        let addr = served.addr("tcp");
        let clients: Vec<TcpStream> = (0..40).map(|_| dial(&addr)).collect();
        assert!(
            served.wait_log("Too many open files", STEP),
            "{mode}: {}",
            served.log()
        );
        // Exhausted, with connections pending: the server must not spin.
        let cpu0 = cpu_seconds(served.pid());
        thread::sleep(Duration::from_secs(2));
        let used = cpu_seconds(served.pid()) - cpu0;
        assert!(
            used < 0.5,
            "{mode}: {used:.2}s of CPU in 2s while out of descriptors"
        );
        drop(clients);
        let deadline = Instant::now() + STEP;
        while !echo_ok(&addr, b"back", Duration::from_secs(2)) {
            assert!(
                Instant::now() < deadline,
                "{mode}: not serving again: {}",
                served.log()
            );
        }
        stop(served);
    }
}
