//! What only the reactor's io_uring backend needs checked, on real loopback
//! sockets: bounded buffering for a client that never reads, a LineReceiver
//! service, and the features this backend refuses. The stream tests shared with
//! epoll (echo, many clients, half-close, timers, idle timeout, max_conns,
//! mailboxes across loops, graceful shutdown, descriptor hygiene, fairness) run
//! on both backends in `reactor.rs`.

mod reactor_util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use netkit::protocol::{ConnInfo, DatagramService, PeerAddr, Protocol, Transport};
use netkit::reactor::{Backend, Reactor, ReactorConfig};
use reactor_util::*;

/// The io_uring backend with `workers` loops (shadows `reactor_util::config`).
fn config(workers: usize) -> ReactorConfig {
    ReactorConfig {
        workers,
        backend: Backend::Uring,
        ..Default::default()
    }
}

struct DgramEcho;
impl DatagramService for DgramEcho {
    fn datagram_received(&self, data: &[u8], _: &PeerAddr) -> Option<Vec<u8>> {
        Some(data.to_vec())
    }
}

/// Echo that records the most output it ever had queued.
struct MaxQueued(Arc<std::sync::atomic::AtomicUsize>);
impl Protocol for MaxQueued {
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        t.write(data);
        self.0.fetch_max(t.buffered(), Ordering::SeqCst);
    }
}

#[test]
fn a_client_that_never_reads_stops_the_server_reading() {
    let max = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let m2 = max.clone();
    let srv = Running::start(config(1), move |r| {
        r.listen(any_port(), move |_: &ConnInfo| MaxQueued(m2.clone()))
            .unwrap();
    });
    let mut s = srv.connect();
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    // 64 MiB cannot fit in the socket buffers plus the server's bounded queue: if
    // the paused connection kept receiving, this write would complete.
    let data = vec![7u8; 64 * 1024 * 1024];
    let err = s.write_all(&data).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    let high = ReactorConfig::default().high_water;
    let seen = max.load(Ordering::SeqCst);
    assert!(seen > 0 && seen <= high + 1024 * 1024, "queued {seen}");
    drop(s);
    eventually("closed", || srv.handle.connections() == 0);
    srv.stop();
}

#[test]
fn chargen_to_a_client_that_never_reads_stays_bounded() {
    use netkit::services::{self, ServiceOptions};
    let opts = ServiceOptions::default();
    let srv = Running::start(config(1), |r| {
        r.listen_dyn(
            netkit::net::Address::parse("127.0.0.1:0").unwrap(),
            services::stream_factory("chargen", &opts).unwrap(),
        )
        .unwrap();
    });
    let mut s = srv.connect();
    // Let the server fill the socket buffers and its queue, then check it is
    // still serving a reader: read a little, byte pattern intact.
    thread::sleep(Duration::from_millis(300));
    let mut buf = vec![0u8; 74 * 95 * 2];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(buf[..74 * 95], buf[74 * 95..]);
    drop(s);
    eventually("closed", || srv.handle.connections() == 0);
    srv.stop();
}

#[test]
fn the_upper_line_service_works() {
    use netkit::services::{self, ServiceOptions};
    let opts = ServiceOptions::default();
    let srv = Running::start(config(1), |r| {
        r.listen_dyn(
            netkit::net::Address::parse("127.0.0.1:0").unwrap(),
            services::stream_factory("upper", &opts).unwrap(),
        )
        .unwrap();
    });
    let mut s = srv.connect();
    s.write_all(b"shout this\nand th").unwrap();
    s.write_all(b"is\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "SHOUT THIS\nAND THIS\n");
    srv.stop();
}

#[test]
fn datagrams_and_client_connections_are_refused_clearly() {
    let mut r = Reactor::new(config(1)).unwrap();
    let err = r
        .listen_datagram(
            netkit::net::Address::parse("udp://127.0.0.1:0").unwrap(),
            Arc::new(DgramEcho),
        )
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    let handle = r.handle();
    let running = thread::spawn(move || r.run());
    let h = handle.connect(any_port(), Echo, Duration::from_secs(5));
    assert_eq!(
        h.wait().unwrap_err().kind(),
        std::io::ErrorKind::Unsupported
    );
    handle.shutdown();
    running.join().unwrap().unwrap();
}

/// A producer that records how much output it ever had queued.
struct Flood {
    written: Arc<std::sync::atomic::AtomicUsize>,
    max: Arc<std::sync::atomic::AtomicUsize>,
}
impl Protocol for Flood {
    fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
    fn is_producer(&self) -> bool {
        true
    }
    fn resume_producing(&mut self, t: &mut dyn Transport) {
        t.write(&[b'x'; 8192]);
        self.written.fetch_add(8192, Ordering::SeqCst);
        self.max.fetch_max(t.buffered(), Ordering::SeqCst);
    }
}

#[test]
fn a_producer_to_a_client_that_never_reads_stays_bounded() {
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (w2, m2) = (written.clone(), max.clone());
    let srv = Running::start(config(1), move |r| {
        r.listen(any_port(), move |_: &ConnInfo| Flood {
            written: w2.clone(),
            max: m2.clone(),
        })
        .unwrap();
    });
    let s = srv.connect();
    eventually("production stops", || {
        let before = written.load(Ordering::SeqCst);
        thread::sleep(Duration::from_millis(100));
        before > 0 && written.load(Ordering::SeqCst) == before
    });
    let low = ReactorConfig::default().low_water;
    let seen = max.load(Ordering::SeqCst);
    assert!(seen <= low + 8192, "queued {seen}");
    drop(s);
    eventually("closed", || srv.handle.connections() == 0);
    srv.stop();
}
