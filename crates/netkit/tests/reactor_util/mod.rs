//! Helpers shared by the reactor's integration tests: a reactor running on a
//! thread, bounded waits, test data.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use netkit::net::Address;
use netkit::protocol::{ConnInfo, Protocol, Transport};
use netkit::reactor::{Handle, Reactor, ReactorConfig};

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Echo;
impl Protocol for Echo {
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        t.write(data);
    }
}

pub fn echo(_: &ConnInfo) -> Echo {
    Echo
}

pub fn config(workers: usize) -> ReactorConfig {
    ReactorConfig {
        workers,
        ..Default::default()
    }
}

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A running reactor: its addresses, a handle, and the thread running it.
pub struct Running {
    pub addrs: Vec<Address>,
    pub handle: Handle,
    pub thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub fn start(cfg: ReactorConfig, setup: impl FnOnce(&mut Reactor)) -> Running {
        let mut r = Reactor::new(cfg).unwrap();
        setup(&mut r);
        let addrs = r.local_addresses();
        let handle = r.handle();
        let thread = Some(thread::spawn(move || r.run()));
        Running {
            addrs,
            handle,
            thread,
        }
    }

    pub fn port(&self) -> u16 {
        self.addrs[0].host_port().unwrap().port
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port())).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        s
    }

    pub fn stop(mut self) {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

pub fn temp_path(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "netkit-reactor-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Waits (bounded) until `cond` holds.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

pub fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// Sends `data` on one thread while reading the echo on this one.
pub fn echo_round_trip(s: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    let mut r = s;
    r.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    got
}
