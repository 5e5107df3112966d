//! Regressions in datagram serving: receive buffers and truncation, under the
//! blocking server and the reactor.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netkit::net::{max_datagram_size, recv_datagram, Address, Datagram};
use netkit::reactor::{Reactor, ReactorConfig};
use netkit::server::{DatagramRequest, Server, ServerBuilder};
use netkit::services::{self, ServiceOptions};

const STEP: Duration = Duration::from_secs(10);

/// Sends three datagrams longer than `max`, then a short one, and returns what
/// came back first.
fn oversized_then_small(server: &Address, max: usize) -> Vec<u8> {
    let c = Datagram::connect_to(server).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    for _ in 0..3 {
        c.send(&vec![b'x'; max * 2]).unwrap();
    }
    c.send(b"small").unwrap();
    let mut buf = vec![0u8; max * 4];
    let got = c.recv(&mut buf).unwrap();
    buf.truncate(got.len);
    buf
}

/// `recvmsg` on a socket owned elsewhere (an event loop's) used to lose the
/// truncation flag: the reactor called plain `recv_from`.
#[test]
fn recv_datagram_reports_truncation_on_any_datagram_socket() {
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    a.send(&[7u8; 1000]).unwrap();
    let mut small = [0u8; 100];
    let got = recv_datagram(std::os::fd::AsFd::as_fd(&b), &mut small).unwrap();
    assert!(got.truncated);
    assert_eq!(got.len, 100);
    b.set_nonblocking(true).unwrap();
    let e = recv_datagram(std::os::fd::AsFd::as_fd(&b), &mut small).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
}

/// A Unix datagram socket's buffer used to be UDP's 64 KiB, so larger
/// datagrams were cut; it is now sized to what the socket can carry.
#[test]
fn unix_datagram_buffer_fits_more_than_udp() {
    assert_eq!(max_datagram_size(false), 65536);
    assert!(max_datagram_size(true) >= 200_000);
}

/// Runs a blocking server that receives at most 1 KiB per datagram, sends it
/// [`oversized_then_small`], and returns what came back.
fn through_blocking_server(b: ServerBuilder) -> Vec<u8> {
    let server = b.max_datagram(1024).build().unwrap();
    let addr = server.local_addresses()[0].clone();
    let stop = server.shutdown_handle();
    let t = std::thread::spawn(move || server.serve_forever());
    let got = oversized_then_small(&addr, 1024);
    stop.shutdown();
    t.join().unwrap().unwrap();
    got
}

/// A datagram over the limit used to reach the service cut short (and be
/// echoed in part); the blocking server now drops it, and a handler is told.
#[test]
fn blocking_server_drops_a_truncated_datagram_and_tells_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Server::builder()
        .listen(Address::UnixDgram(dir.path().join("echo.dgram")))
        .datagram_service(services::datagram_service("echo", &ServiceOptions::default()).unwrap());
    assert_eq!(through_blocking_server(echo), b"small");

    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let flagged = Server::builder()
        .listen(Address::UnixDgram(dir.path().join("flag.dgram")))
        .datagram_handler(move |req: &mut DatagramRequest<'_>| {
            if req.truncated() {
                counted.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            req.reply(req.data())
        });
    assert_eq!(through_blocking_server(flagged), b"small");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

/// The reactor used to answer the first 64 KiB of a longer datagram; it now
/// drops a truncated datagram instead of answering a part of it.
#[test]
fn reactor_drops_a_truncated_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Reactor::new(ReactorConfig {
        workers: 1,
        max_datagram: Some(1024),
        ..Default::default()
    })
    .unwrap();
    let addr = r
        .listen_datagram(
            Address::UnixDgram(dir.path().join("echo.dgram")),
            services::datagram_service("echo", &ServiceOptions::default()).unwrap(),
        )
        .unwrap();
    let stop = r.shutdown_handle();
    let t = std::thread::spawn(move || r.run());
    assert_eq!(oversized_then_small(&addr, 1024), b"small");
    stop.shutdown();
    t.join().unwrap().unwrap();
}
