//! Memory bounds of the reactor under slow peers, measured as this process's
//! resident size. The tests take a lock so that they do not run alongside each
//! other (this binary holds nothing else).

mod reactor_util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use netkit::protocol::{ConnInfo, Protocol, Transport};
use reactor_util::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Twisted-style chargen as a pull producer.
struct Chargen {
    line: Vec<u8>,
}
impl Protocol for Chargen {
    fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
    fn is_producer(&self) -> bool {
        true
    }
    fn resume_producing(&mut self, t: &mut dyn Transport) {
        for _ in 0..64 {
            t.write(&self.line);
        }
    }
}

#[test]
fn chargen_to_a_client_that_never_reads_stays_bounded() {
    let produced = Arc::new(AtomicUsize::new(0));
    let p2 = produced.clone();
    struct Counted(Chargen, Arc<AtomicUsize>);
    impl Protocol for Counted {
        fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
        fn is_producer(&self) -> bool {
            true
        }
        fn resume_producing(&mut self, t: &mut dyn Transport) {
            self.0.resume_producing(t);
            self.1.fetch_add(1, Ordering::SeqCst);
            assert!(t.buffered() < 2 << 20, "queue grew to {}", t.buffered());
        }
    }
    let srv = Running::start(config(1), move |r| {
        r.listen(any_port(), move |_: &ConnInfo| {
            Counted(
                Chargen {
                    line: pattern(74, 0),
                },
                p2.clone(),
            )
        })
        .unwrap();
    });
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = rss_kib();
    let mut s = srv.connect();
    // The client does not read: production must stop once the buffers are full.
    eventually("the producer to be asked", || {
        produced.load(Ordering::SeqCst) > 0
    });
    let mut last = produced.load(Ordering::SeqCst);
    let mut stable = 0;
    eventually("production to stop", || {
        thread::sleep(Duration::from_millis(50));
        let now = produced.load(Ordering::SeqCst);
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
        stable >= 5
    });
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 32 * 1024, "server grew by {grown} KiB");
    // Reading resumes production.
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    while total < 16 << 20 {
        total += s.read(&mut buf).unwrap();
    }
    assert!(produced.load(Ordering::SeqCst) > last);
    drop(s);
    srv.stop();
}

#[test]
fn echo_to_a_client_that_never_reads_stops_reading_from_it() {
    let srv = Running::start(config(1), |r| {
        r.listen(any_port(), echo).unwrap();
    });
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = rss_kib();
    let mut s = srv.connect();
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let chunk = vec![1u8; 64 * 1024];
    let mut sent = 0usize;
    // Writes block once the server stops reading (its queue is over high water
    // and the kernel buffers are full); without back-pressure it would take all.
    while sent < 512 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 128 << 20, "the server kept reading: {sent} bytes");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 32 * 1024, "server grew by {grown} KiB");
    // Draining the echo lets the server read the rest.
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    assert_eq!(got, sent);
    srv.stop();
}
