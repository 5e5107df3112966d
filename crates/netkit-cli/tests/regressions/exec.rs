//! Regressions in `netkit serve --exec CMD`: it used to be a server of its own
//! that ignored the mode, `--max-conns`, `--idle-timeout` and `LISTEN_FDS`; it is
//! now a Protocol run by the ordinary server, so each of them applies.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{activated, Served, TempDir, MODES, STEP};

/// Sends `msg`, half-closes, and reads everything back.
fn exchange(addr: &str, msg: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(msg).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    got
}

/// Sends a line and reads exactly it back (the connection stays open).
fn echo_line(c: &mut TcpStream, line: &[u8]) {
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(line).unwrap();
    let mut back = vec![0u8; line.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, line);
}

fn stop(mut s: Served, what: &str) {
    s.signal(libc::SIGTERM);
    let st = s.wait_exit(STEP);
    assert_eq!(st.code(), Some(0), "{what}: {}", s.log());
}

#[test]
fn serve_exec_runs_in_every_mode() {
    for mode in MODES {
        let s = Served::start(&[
            "--exec",
            "tr a-z A-Z",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
        ]);
        let got = exchange(&s.addrs[0], b"upper\n");
        assert_eq!(got, b"UPPER\n", "{mode}: {}", s.log());
        assert!(
            s.wait_log("ended with exit status 0", STEP),
            "{mode}: {}",
            s.log()
        );
        stop(s, mode);
    }
}

#[test]
fn serve_exec_honours_max_conns() {
    for mode in MODES {
        let s = Served::start(&[
            "--exec",
            "cat",
            "--mode",
            mode,
            "--max-conns",
            "1",
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut first = TcpStream::connect(&s.addrs[0]).unwrap();
        echo_line(&mut first, b"first\n");
        let mut second = TcpStream::connect(&s.addrs[0]).unwrap();
        second.write_all(b"second\n").unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 64];
        match second.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!(
                "{mode}: a second connection was served: {other:?}\n{}",
                s.log()
            ),
        }
        drop(first);
        second.set_read_timeout(Some(STEP)).unwrap();
        let mut back = [0u8; 7];
        second.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"second\n", "{mode}");
        drop(second);
        stop(s, mode);
    }
}

#[test]
fn serve_exec_honours_idle_timeout() {
    for mode in MODES {
        let s = Served::start(&[
            "--exec",
            "cat",
            "--mode",
            mode,
            "--idle-timeout",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut c = TcpStream::connect(&s.addrs[0]).unwrap();
        c.set_read_timeout(Some(STEP)).unwrap();
        let start = Instant::now();
        let mut got = Vec::new();
        let r = c.read_to_end(&mut got);
        assert!(
            r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
            "{mode}: {r:?}"
        );
        assert!(got.is_empty(), "{mode}: {got:?}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{mode}: closed after {:?}",
            start.elapsed()
        );
        stop(s, mode);
    }
}

#[test]
fn serve_exec_uses_listen_fds() {
    for mode in ["reactor", "threads"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let s = activated(&listener, &["--exec", "tr a-z A-Z", "--mode", mode], 1);
        assert_eq!(s.addrs, [addr.as_str()], "{mode}: {}", s.log());
        assert_eq!(exchange(&addr, b"inherited\n"), b"INHERITED\n", "{mode}");
        stop(s, mode);
    }
}

/// Whether process `pid` still exists (a zombie counts: nobody reaped it).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn serve_exec_stops_on_sigterm() {
    for mode in MODES {
        let dir = TempDir::new("exec-term");
        let pidfile = dir.path("child.pid");
        let cmd = format!("echo $$ > {}; cat", pidfile.display());
        let s = Served::start(&[
            "--exec",
            &cmd,
            "--mode",
            mode,
            "--grace",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut c = TcpStream::connect(&s.addrs[0]).unwrap();
        echo_line(&mut c, b"held\n");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(alive(pid), "{mode}");
        stop(s, mode);
        let deadline = Instant::now() + STEP;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "{mode}: pid {pid} outlived the server");
        drop(c);
    }
}

#[test]
fn serve_exec_slow_reader_gets_all_output() {
    // 8 MiB, far past the connection's mailbox bound: the child must be slowed
    // to the reader's pace, not the connection dropped as too slow.
    const SIZE: usize = 8 << 20;
    for mode in ["reactor", "threads", "sequential"] {
        let s = Served::start(&[
            "--exec",
            "head -c 8388608 /dev/zero",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut c = TcpStream::connect(&s.addrs[0]).unwrap();
        c.set_read_timeout(Some(STEP)).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let mut got = 0usize;
        let mut buf = vec![0u8; 4096];
        let deadline = Instant::now() + STEP;
        loop {
            assert!(Instant::now() < deadline, "{mode}: only {got} bytes");
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => panic!("{mode}: after {got} bytes: {e}\n{}", s.log()),
            }
        }
        assert_eq!(got, SIZE, "{mode}: {}", s.log());
        stop(s, mode);
    }
}
