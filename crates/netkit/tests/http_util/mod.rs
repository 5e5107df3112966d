//! Helpers for the HTTP socket tests: the runners a Protocol is served by (the
//! `server` modes, and a small thread-per-connection runner of our own that keeps
//! the Transport contract in its simplest blocking form, with `write_file` sent by
//! `sendfile`), a fixture tree, and Python runners.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netkit::net::{Address, Stream};
use netkit::protocol::{
    CloseReason, ConnInfo, Factory, Mailbox, PeerAddr, Protocol, TimerId, Transport,
};
use netkit::server::{Mode, Server, ShutdownHandle};

/// Which runner serves the Protocol under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// The minimal runner in this file.
    Own,
    /// `netkit::server` in one of its blocking modes.
    Server(Mode),
}

/// Every runner the socket tests run against.
pub const RUNNERS: &[Runner] = &[
    Runner::Own,
    Runner::Server(Mode::Threads),
    Runner::Server(Mode::Pool),
];

/// A running test server; stops (and joins its threads) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub runner: Runner,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    shutdown: Option<ShutdownHandle>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.shutdown.take() {
            h.shutdown();
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `factory` on 127.0.0.1:0 with `runner`.
pub fn serve_with<F: Factory>(runner: Runner, factory: F) -> TestServer {
    let Runner::Server(mode) = runner else {
        return serve(factory);
    };
    let server = Server::builder()
        .listen(Address::parse("127.0.0.1:0").unwrap())
        .mode(mode)
        .handle_signals(false)
        .protocol(factory)
        .build()
        .unwrap();
    let port = server.local_addresses()[0].host_port().unwrap().port;
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || {
        let _ = server.serve_forever();
    });
    TestServer {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        runner,
        stop: Arc::new(AtomicBool::new(false)),
        thread: Some(thread),
        shutdown: Some(shutdown),
    }
}

/// Serves `factory` on 127.0.0.1:0 with the runner in this file, one thread per
/// connection.
pub fn serve<F: Factory>(factory: F) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let factory = Arc::new(factory);
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut conns = Vec::new();
        while !s.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((sock, peer)) => {
                    let f = factory.clone();
                    let s2 = s.clone();
                    conns.push(std::thread::spawn(move || run_conn(&*f, sock, peer, &s2)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => break,
            }
        }
        for c in conns {
            let _ = c.join();
        }
    });
    TestServer {
        addr,
        runner: Runner::Own,
        stop,
        thread: Some(thread),
        shutdown: None,
    }
}

enum Out {
    Bytes(Vec<u8>),
    File(Arc<File>, u64, u64),
}

struct Tx {
    queue: VecDeque<Out>,
    queued: usize,
    closing: bool,
    aborted: bool,
    shut_wr: bool,
    paused: bool,
    timers: BTreeMap<TimerId, Instant>,
    next_timer: u64,
    peer: PeerAddr,
    local: PeerAddr,
}

impl Transport for Tx {
    fn write(&mut self, data: &[u8]) {
        if !self.closing && !self.aborted {
            self.queued += data.len();
            self.queue.push_back(Out::Bytes(data.to_vec()));
        }
    }
    fn write_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if !self.closing && !self.aborted {
            self.queued += len as usize;
            self.queue.push_back(Out::File(file, offset, len));
        }
    }
    fn buffered(&self) -> usize {
        self.queued
    }
    fn close(&mut self) {
        self.closing = true;
    }
    fn abort(&mut self) {
        self.aborted = true;
    }
    fn shutdown_write(&mut self) {
        self.shut_wr = true;
    }
    fn pause_reading(&mut self) {
        self.paused = true;
    }
    fn resume_reading(&mut self) {
        self.paused = false;
    }
    fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }
    fn local_addr(&self) -> &PeerAddr {
        &self.local
    }
    fn call_later(&mut self, delay: Duration) -> TimerId {
        self.next_timer += 1;
        let id = TimerId(self.next_timer);
        self.timers.insert(id, Instant::now() + delay);
        id
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.timers.remove(&id);
    }
    fn mailbox(&mut self) -> Mailbox {
        panic!("the HTTP service uses no mailbox")
    }
}

fn flush(stream: &Stream, tx: &mut Tx) -> io::Result<()> {
    while let Some(out) = tx.queue.pop_front() {
        match out {
            Out::Bytes(b) => {
                stream.send_all(&b)?;
                tx.queued -= b.len();
            }
            Out::File(f, mut off, len) => {
                let end = off + len;
                while off < end {
                    let n = stream.sendfile(&f, off, (end - off).min(1 << 20))?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    off += n;
                    tx.queued -= n as usize;
                }
            }
        }
    }
    Ok(())
}

fn run_conn<F: Factory>(f: &F, sock: TcpStream, peer: SocketAddr, stop: &AtomicBool) {
    let local = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let stream = Stream::from(sock);
    let info = ConnInfo {
        peer: PeerAddr::Inet(peer),
        local: PeerAddr::Inet(local),
    };
    let mut proto = f.build(&info);
    let mut tx = Tx {
        queue: VecDeque::new(),
        queued: 0,
        closing: false,
        aborted: false,
        shut_wr: false,
        paused: false,
        timers: BTreeMap::new(),
        next_timer: 0,
        peer: info.peer.clone(),
        local: info.local.clone(),
    };
    proto.connection_made(&mut tx);
    let mut eof = false;
    let mut buf = vec![0u8; 64 * 1024];
    let reason = loop {
        if tx.aborted {
            break CloseReason::Aborted;
        }
        if let Err(e) = flush(&stream, &mut tx) {
            break CloseReason::Error(e.to_string());
        }
        if tx.closing || stop.load(Ordering::SeqCst) {
            break CloseReason::Done;
        }
        let now = Instant::now();
        let due: Vec<TimerId> = tx
            .timers
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(i, _)| *i)
            .collect();
        for id in due {
            tx.timers.remove(&id);
            proto.timer_fired(id, &mut tx);
        }
        if proto.is_producer() {
            proto.resume_producing(&mut tx);
            continue;
        }
        if tx.paused || eof {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match (&stream).read(&mut buf) {
            Ok(0) => {
                eof = true;
                proto.eof_received(&mut tx);
            }
            Ok(n) => proto.data_received(&buf[..n], &mut tx),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => break CloseReason::Error(e.to_string()),
        }
    };
    proto.connection_lost(&reason);
}

/// A fixture tree: `www/` (the root) with text, binary, listing and index
/// files, and a secret beside it that a symlink in the root points at.
pub struct Tree {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

pub fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("sub dir")).unwrap();
    std::fs::create_dir_all(root.join("site")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello world\n").unwrap();
    std::fs::write(
        root.join("site/index.html"),
        "<a href=\"/about.html\">About</a>\n",
    )
    .unwrap();
    std::fs::write(root.join("sub dir/<b>&.txt"), "x").unwrap();
    let mid: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("mid.bin"), mid).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("updir")).unwrap();
    Tree { dir, root }
}

/// Runs `python3 -c script args...`, returning stdout; panics with stderr on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sends `req` on a fresh connection and reads until the server closes (bounded).
pub fn raw(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The status code of the first response in `raw`.
pub fn status_of(raw: &[u8]) -> u16 {
    std::str::from_utf8(raw.get(9..12).unwrap_or(b"000"))
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
