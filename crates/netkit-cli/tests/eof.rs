//! The EOF model of `docs/eof.md`, one test per cell: each row of the table is a
//! function run against `connect`, `listen` and `relay`, with real processes and
//! real sockets on 127.0.0.1.
//!
//! Side A is the netkit process's stdin/stdout (`connect`, `listen`) or a client
//! of the relay; side B is the peer socket (the server `connect` reaches, the
//! client of `listen`, the relay's target).

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use util::STEP;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    Listen,
    Relay,
}

/// What side A has received so far, and whether it saw its end.
type Output = Arc<Mutex<(Vec<u8>, bool)>>;

struct Harness {
    kind: Kind,
    child: Child,
    stdin: Option<ChildStdin>,
    client: Option<TcpStream>,
    a_out: Output,
    peer: TcpStream,
    /// Open descriptors of the relay before its session began.
    baseline_fds: usize,
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn collect(mut r: impl Read + Send + 'static) -> Output {
    let out: Output = Arc::new(Mutex::new((Vec::new(), false)));
    let o = out.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => o.lock().unwrap().0.extend_from_slice(&buf[..n]),
            }
        }
        o.lock().unwrap().1 = true;
    });
    out
}

/// Reads `listening on ADDR` from the child's stderr, then keeps draining it.
fn listening_addr(child: &mut Child) -> String {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.to_string());
            }
        }
    });
    rx.recv_timeout(STEP).expect("no `listening on` line")
}

impl Harness {
    fn start(kind: Kind, args: &[&str]) -> Harness {
        let mut cmd = Command::new(util::netkit());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let target_addr = target.local_addr().unwrap().to_string();
        match kind {
            Kind::Connect => cmd.arg("connect").arg(&target_addr),
            Kind::Listen => cmd.arg("listen").arg("127.0.0.1:0"),
            Kind::Relay => cmd.arg("relay").arg("127.0.0.1:0").arg(&target_addr),
        };
        cmd.args(args);
        let mut child = cmd.spawn().unwrap();
        let mut baseline_fds = 0;
        let (peer, client, a_out, stdin) = match kind {
            Kind::Connect => {
                let _ = listening_drain(&mut child);
                let (peer, _) = target.accept().unwrap();
                let out = collect(child.stdout.take().unwrap());
                (peer, None, out, child.stdin.take())
            }
            Kind::Listen => {
                let addr = listening_addr(&mut child);
                let peer = TcpStream::connect(&addr).unwrap();
                let out = collect(child.stdout.take().unwrap());
                (peer, None, out, child.stdin.take())
            }
            Kind::Relay => {
                let addr = listening_addr(&mut child);
                baseline_fds = fd_count(child.id());
                let client = TcpStream::connect(&addr).unwrap();
                let (peer, _) = target.accept().unwrap();
                let out = collect(client.try_clone().unwrap());
                (peer, Some(client), out, None)
            }
        };
        peer.set_read_timeout(Some(STEP)).unwrap();
        Harness {
            kind,
            child,
            stdin,
            client,
            a_out,
            peer,
            baseline_fds,
        }
    }

    /// Sends bytes from side A.
    fn send_a(&mut self, data: &[u8]) -> std::io::Result<()> {
        match (&mut self.stdin, &mut self.client) {
            (Some(s), _) => s.write_all(data).and_then(|()| s.flush()),
            (None, Some(c)) => c.write_all(data),
            _ => Err(std::io::Error::other("A already ended")),
        }
    }

    /// Ends side A: closes stdin, or half-closes the relay's client.
    fn end_a(&mut self) {
        self.stdin = None;
        if let Some(c) = &self.client {
            c.shutdown(Shutdown::Write).unwrap();
        }
    }

    /// Waits until side A has received `want`.
    fn a_gets(&self, want: &[u8]) {
        let deadline = Instant::now() + STEP;
        loop {
            let got = self.a_out.lock().unwrap().0.clone();
            if got.windows(want.len()).any(|w| w == want) {
                return;
            }
            assert!(Instant::now() < deadline, "A got {got:?}, wanted {want:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn a_received(&self) -> Vec<u8> {
        self.a_out.lock().unwrap().0.clone()
    }

    /// Whether side A's output has ended (stdout closed / client read EOF).
    fn a_ended(&self) -> bool {
        self.a_out.lock().unwrap().1
    }

    /// Reads from the peer until EOF.
    fn peer_reads_to_end(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        self.peer.read_to_end(&mut got).unwrap();
        got
    }

    /// Waits for the session to end: the process exits with status 0
    /// (`connect`, `listen`), or the relay's client has seen its end and the relay
    /// has closed both of the session's sockets.
    fn ended(&mut self) {
        let deadline = Instant::now() + STEP;
        loop {
            let done = match self.kind {
                Kind::Relay => self.a_ended() && fd_count(self.child.id()) <= self.baseline_fds,
                _ => match self.child.try_wait().unwrap() {
                    Some(st) => {
                        assert_eq!(st.code(), Some(0), "{:?} exit", self.kind);
                        true
                    }
                    None => false,
                },
            };
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: session did not end",
                self.kind
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process (or relay session) has ended right now.
    fn has_ended(&mut self) -> bool {
        match self.kind {
            Kind::Relay => fd_count(self.child.id()) <= self.baseline_fds,
            _ => self.child.try_wait().unwrap().is_some(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `connect` prints nothing on stderr before connecting; drain it in the background.
fn listening_drain(child: &mut Child) -> Option<()> {
    let mut err = child.stderr.take()?;
    thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = err.read_to_end(&mut sink);
    });
    Some(())
}

// Row: A ends, --eof half (default): B gets a FIN, B's data still flows to A, the
// session ends when B ends too.
fn a_ends_half(kind: Kind) {
    let mut h = Harness::start(kind, &[]);
    h.send_a(b"ping").unwrap();
    h.end_a();
    assert_eq!(h.peer_reads_to_end(), b"ping");
    assert!(!h.has_ended(), "{kind:?} ended before B did");
    h.peer.write_all(b"pong after FIN").unwrap();
    h.a_gets(b"pong after FIN");
    h.peer.shutdown(Shutdown::Write).unwrap();
    h.ended();
    assert_eq!(h.a_received(), b"pong after FIN");
}

// Row: B half-closes, --eof half: A's output gets B's end, A's data still flows to
// B, the session ends when A ends too.
fn b_half_closes_half(kind: Kind) {
    let mut h = Harness::start(kind, &[]);
    h.peer.write_all(b"hello").unwrap();
    h.peer.shutdown(Shutdown::Write).unwrap();
    h.a_gets(b"hello");
    if kind == Kind::Relay {
        let deadline = Instant::now() + STEP;
        while !h.a_ended() {
            assert!(Instant::now() < deadline, "relay did not pass the FIN to A");
            thread::sleep(Duration::from_millis(10));
        }
    }
    assert!(
        kind == Kind::Relay || !h.has_ended(),
        "{kind:?} ended at B's FIN"
    );
    h.send_a(b"still talking").unwrap();
    h.end_a();
    assert_eq!(h.peer_reads_to_end(), b"still talking");
    h.ended();
}

// Row: B closes completely, --eof half: B's data reaches A; A's next writes to B
// fail (reset / broken pipe) and the session ends quietly although A is open.
fn b_closes_half(kind: Kind) {
    let mut h = Harness::start(kind, &[]);
    h.peer.write_all(b"bye").unwrap();
    h.a_gets(b"bye");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dummy = TcpStream::connect(closed.local_addr().unwrap()).unwrap();
    drop(std::mem::replace(&mut h.peer, dummy));
    let deadline = Instant::now() + STEP;
    while !h.has_ended() {
        assert!(Instant::now() < deadline, "{kind:?}: session did not end");
        let _ = h.send_a(b"x");
        thread::sleep(Duration::from_millis(20));
    }
    h.ended();
    assert_eq!(h.a_received(), b"bye");
}

// Row: A ends, --eof close: B is closed at once, without waiting for B.
fn a_ends_close(kind: Kind) {
    let mut h = Harness::start(kind, &["--eof", "close"]);
    h.send_a(b"last words").unwrap();
    h.end_a();
    // B never closes; the session ends anyway.
    assert_eq!(h.peer_reads_to_end(), b"last words");
    h.ended();
}

// Row: B ends, --eof close: the session ends at once although A is still open.
fn b_ends_close(kind: Kind) {
    let mut h = Harness::start(kind, &["--eof", "close"]);
    h.peer.write_all(b"done").unwrap();
    h.peer.shutdown(Shutdown::Write).unwrap();
    h.a_gets(b"done");
    // A stays open; netkit closes B.
    assert_eq!(h.peer_reads_to_end(), b"");
    h.ended();
}

// Row: A ends, --eof wait:DUR: B gets a FIN, B may still answer, and the session
// ends after DUR even though B never closes.
fn a_ends_wait(kind: Kind) {
    let mut h = Harness::start(kind, &["--eof", "wait:300ms"]);
    h.send_a(b"q").unwrap();
    h.end_a();
    let mut got = [0u8; 1];
    h.peer.read_exact(&mut got).unwrap();
    h.peer.write_all(b"answer").unwrap();
    // B keeps its socket open; the deadline ends the session.
    h.ended();
    assert_eq!(h.a_received(), b"answer");
    assert_eq!(h.peer_reads_to_end(), b"");
}

// Row: B ends, --eof wait:DUR: A's data still reaches B within DUR, then the
// session ends although A is still open.
fn b_ends_wait(kind: Kind) {
    let mut h = Harness::start(kind, &["--eof", "wait:3s"]);
    h.peer.shutdown(Shutdown::Write).unwrap();
    h.send_a(b"late").unwrap();
    assert_eq!(h.peer_reads_to_end(), b"late");
    h.ended();
}

// Row: --send-only: B's data is dropped, B's FIN ignored; the session ends when A
// ends.
fn send_only(kind: Kind) {
    let mut h = Harness::start(kind, &["--send-only"]);
    h.peer.write_all(b"noise").unwrap();
    h.peer.shutdown(Shutdown::Write).unwrap();
    h.send_a(b"data").unwrap();
    h.end_a();
    assert_eq!(h.peer_reads_to_end(), b"data");
    h.ended();
    assert_eq!(h.a_received(), b"");
}

// Row: --recv-only: A is never read and B never half-closed; the session ends
// when B ends.
fn recv_only(kind: Kind) {
    let mut h = Harness::start(kind, &["--recv-only"]);
    h.send_a(b"not sent").unwrap();
    h.peer.write_all(b"news").unwrap();
    h.peer.shutdown(Shutdown::Write).unwrap();
    h.ended();
    assert_eq!(h.a_received(), b"news");
    assert_eq!(h.peer_reads_to_end(), b"");
}

macro_rules! cells {
    ($($row:ident),* $(,)?) => {
        mod connect { $( #[test] fn $row() { super::$row(super::Kind::Connect) } )* }
        mod listen { $( #[test] fn $row() { super::$row(super::Kind::Listen) } )* }
        mod relay { $( #[test] fn $row() { super::$row(super::Kind::Relay) } )* }
    };
}

cells!(
    a_ends_half,
    b_half_closes_half,
    b_closes_half,
    a_ends_close,
    b_ends_close,
    a_ends_wait,
    b_ends_wait,
    send_only,
    recv_only,
);

// Row (datagrams): after stdin ends, `connect` waits for the replies (up to
// `--wait`), and returns as soon as every datagram sent has had one.
#[test]
fn udp_one_shot_waits_for_the_reply_and_no_longer() {
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = format!("udp://{}", server.local_addr().unwrap());
    let t = thread::spawn(move || {
        server.set_read_timeout(Some(STEP)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        // Answer well after the client's stdin has ended.
        thread::sleep(Duration::from_millis(300));
        let reply = [b"re: ", &buf[..n]].concat();
        server.send_to(&reply, from).unwrap();
    });
    let mut cmd = Command::new(util::netkit());
    // --wait is far longer than the test's bound: returning at all proves the
    // reply ended the wait.
    cmd.args(["connect", &addr, "--wait", "10m"]);
    let out = util::run_bounded(cmd, b"question\n", STEP);
    t.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"re: question\n");
}
