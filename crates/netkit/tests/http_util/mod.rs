//! Helpers for the HTTP socket tests: the runners a Protocol is served by (the
//! reactor and the `server` modes), a fixture tree, and Python runners.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use netkit::net::Address;
use netkit::protocol::Factory;
use netkit::reactor::{Reactor, ReactorConfig};
use netkit::server::{Mode, Server};

/// Which runner serves the Protocol under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `netkit::reactor`, one loop.
    Reactor,
    /// `netkit::server` in one of its blocking modes.
    Server(Mode),
}

/// Every runner the socket tests run against.
pub const RUNNERS: &[Runner] = &[
    Runner::Reactor,
    Runner::Server(Mode::Threads),
    Runner::Server(Mode::Pool),
];

/// A running test server; stops (and joins its threads) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub runner: Runner,
    thread: Option<JoinHandle<()>>,
    shutdown: Option<Box<dyn FnOnce() + Send>>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            stop();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `factory` on 127.0.0.1:0 with `runner`.
pub fn serve_with<F: Factory>(runner: Runner, factory: F) -> TestServer {
    let Runner::Server(mode) = runner else {
        return serve_reactor(factory);
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
        thread: Some(thread),
        shutdown: Some(Box::new(move || shutdown.shutdown())),
    }
}

/// Serves `factory` on 127.0.0.1:0 on the reactor.
pub fn serve<F: Factory>(factory: F) -> TestServer {
    serve_with(Runner::Reactor, factory)
}

/// Serves `factory` on the reactor, one loop.
fn serve_reactor<F: Factory>(factory: F) -> TestServer {
    let mut reactor = Reactor::new(ReactorConfig {
        workers: 1,
        ..ReactorConfig::default()
    })
    .unwrap();
    let addr = reactor
        .listen(Address::parse("127.0.0.1:0").unwrap(), factory)
        .unwrap();
    let port = addr.host_port().unwrap().port;
    let handle = reactor.shutdown_handle();
    let thread = std::thread::spawn(move || {
        let _ = reactor.run();
    });
    TestServer {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        runner: Runner::Reactor,
        thread: Some(thread),
        shutdown: Some(Box::new(move || handle.shutdown())),
    }
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
