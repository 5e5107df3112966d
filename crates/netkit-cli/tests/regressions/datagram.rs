//! Regressions in datagram serving: `serve` on `udp://` and `unix-dgram://`.

use std::time::Duration;

use netkit::net::{max_datagram_size, Address, Datagram};

use crate::util::{Served, TempDir, MODES, STEP};

/// A Unix datagram client connected to the served socket, with replies bounded in time.
fn client(served: &Served) -> Datagram {
    let addr = Address::parse(&served.addr("unix-dgram")).unwrap();
    let c = Datagram::connect_to(&addr).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c
}

/// A 200,000-byte datagram used to come back as its first 65,536 bytes, with
/// nothing logged: the receive buffer was UDP's.
#[test]
fn unix_dgram_echo_of_200000_bytes_is_not_truncated() {
    let dir = TempDir::new("dgram-big");
    let sock = dir.path("echo.dgram");
    let listen = format!("unix-dgram://{}", sock.display());
    for mode in MODES {
        let served = Served::start(&["echo", "--mode", mode, "--listen", &listen]);
        let c = client(&served);
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        c.send(&big).unwrap();
        let mut buf = vec![0u8; max_datagram_size(true)];
        let got = c.recv(&mut buf).unwrap();
        assert!(!got.truncated, "{mode}: the reply was truncated");
        assert_eq!(got.len, big.len(), "{mode}: reply of {} bytes", got.len);
        assert!(buf[..got.len] == big[..], "{mode}: reply bytes differ");
        let log = served.log();
        assert!(
            !log.contains("truncated") && !log.contains("dropped"),
            "{mode}: {log}"
        );
    }
}

/// A datagram longer than the receive buffer used to be cut without a word;
/// it is now dropped with a log line (one for a burst, not one per datagram),
/// and the service never answers a part of it.
#[test]
fn unix_dgram_oversized_datagram_is_logged_and_not_answered() {
    let dir = TempDir::new("dgram-huge");
    let sock = dir.path("echo.dgram");
    let listen = format!("unix-dgram://{}", sock.display());
    for mode in ["threads", "reactor"] {
        let served = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--max-datagram",
            "1KiB",
            "--listen",
            &listen,
        ]);
        let c = client(&served);
        for _ in 0..3 {
            c.send(&[b'x'; 4096]).unwrap();
        }
        c.send(b"small").unwrap();
        let mut buf = vec![0u8; 65536];
        let got = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got.len], b"small", "{mode}: a part was answered");
        assert!(
            served.wait_log("was dropped", Duration::from_secs(5)),
            "{mode}: no log line for the truncated datagrams: {}",
            served.log()
        );
        let log = served.log();
        assert_eq!(log.matches("was dropped").count(), 1, "{mode}: {log}");
        assert!(log.contains("longer than 1024 bytes"), "{mode}: {log}");
    }
}

/// `udp://[::]` used to take IPv6 datagrams only, while `[::]` for streams is
/// dual-stack; both now take IPv4 too, unless `--ipv6-only`.
#[test]
fn udp_any_address_is_dual_stack() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        panic!("this test needs ::1 (IPv6 loopback)");
    }
    for mode in ["threads", "reactor"] {
        let served = Served::start(&["echo", "--mode", mode, "--listen", "udp://[::]:0"]);
        let port = served.addr("udp").rsplit_once(':').unwrap().1.to_string();
        for client in ["127.0.0.1", "[::1]"] {
            let c = std::net::UdpSocket::bind(format!("{client}:0")).unwrap();
            c.set_read_timeout(Some(STEP)).unwrap();
            c.send_to(b"both", format!("{client}:{port}")).unwrap();
            let mut buf = [0u8; 16];
            let (n, _) = c.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"both", "{mode} from {client}");
        }
        let v6only = Served::start(&[
            "echo",
            "--mode",
            mode,
            "--ipv6-only",
            "--listen",
            "udp://[::]:0",
        ]);
        let port = v6only.addr("udp").rsplit_once(':').unwrap().1.to_string();
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        c.send_to(b"v4", format!("127.0.0.1:{port}")).unwrap();
        let mut buf = [0u8; 16];
        assert!(
            c.recv_from(&mut buf).is_err(),
            "{mode}: --ipv6-only took IPv4"
        );
    }
}
