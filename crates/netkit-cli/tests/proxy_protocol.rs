//! `netkit serve --proxy-protocol` without a balancer: the test writes PROXY v1
//! and v2 headers by hand. The address in the header is what the logger prints;
//! bytes after the header (same segment or split oddly) reach the service; a
//! missing, malformed or late header closes the connection with a log line and
//! leaves the server serving.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use netkit::frame::proxy::{ProxyAddrs, ProxyHeader};

use util::{Served, MODES, STEP};

fn dial(served: &Served) -> TcpStream {
    let s = TcpStream::connect(served.addr("tcp")).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    s
}

fn proxied(src: &str, dst: &str) -> ProxyAddrs {
    ProxyAddrs::Proxied {
        source: src.parse().unwrap(),
        destination: dst.parse().unwrap(),
    }
}

fn start(service: &str, mode: &str) -> Served {
    Served::start(&[
        service,
        "--proxy-protocol",
        "--mode",
        mode,
        "--listen",
        "127.0.0.1:0",
    ])
}

fn stop(mut served: Served) {
    served.signal(libc::SIGTERM);
    let st = served.wait_exit(STEP);
    assert!(st.success(), "exit {st}\n{}", served.log());
}

/// Reads until the server closes; true when it did (EOF or reset).
fn closed_by_server(mut s: &TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn wait_stdout(served: &Served, needle: &str) -> bool {
    let deadline = std::time::Instant::now() + STEP;
    while std::time::Instant::now() < deadline {
        if served.stdout.lock().unwrap().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn logger_sees_the_address_of_a_v1_and_a_v2_header_in_every_mode() {
    for &mode in MODES {
        let served = start("logger", mode);
        let mut s = dial(&served);
        let h = ProxyHeader::encode_v1(&proxied("203.0.113.9:4242", "127.0.0.1:9000"));
        s.write_all(&h).unwrap();
        s.write_all(b"first line\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert!(closed_by_server(&s), "{mode}");
        let mut s = dial(&served);
        let h = ProxyHeader::encode_v2(&proxied("[2001:db8::7]:5555", "[::1]:9000"));
        s.write_all(&h).unwrap();
        s.write_all(b"second line\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert!(closed_by_server(&s), "{mode}");
        for needle in [
            "Got connection from ('203.0.113.9', 4242)",
            "first line",
            "('203.0.113.9', 4242) disconnected",
            "Got connection from ('2001:db8::7', 5555, 0, 0)",
            "second line",
        ] {
            assert!(
                wait_stdout(&served, needle),
                "{mode}: {needle:?} not in {:?}\n{}",
                served.stdout.lock().unwrap(),
                served.log()
            );
        }
        assert!(
            !served.stdout.lock().unwrap().contains("127.0.0.1"),
            "{mode}: the balancer's address leaked: {:?}",
            served.stdout.lock().unwrap()
        );
        stop(served);
    }
}

#[test]
fn bytes_after_the_header_are_delivered_however_they_are_split() {
    let served = start("echo", "threads");
    // Header and data in one segment.
    let mut s = dial(&served);
    let mut seg = ProxyHeader::encode_v2(&proxied("198.51.100.1:1", "127.0.0.1:2"));
    seg.extend_from_slice(b"hello, same segment");
    s.write_all(&seg).unwrap();
    let mut back = [0u8; 19];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello, same segment");
    drop(s);
    // A v1 header cut in the middle, the rest arriving with the first data.
    let mut s = dial(&served);
    s.set_nodelay(true).unwrap();
    let mut seg = ProxyHeader::encode_v1(&proxied("198.51.100.1:1", "127.0.0.1:2"));
    seg.extend_from_slice(b"abc");
    s.write_all(&seg[..9]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&seg[9..]).unwrap();
    let mut back = [0u8; 3];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"abc");
    drop(s);
    // upper: the line after a v2 header with TLVs.
    let up = start("upper", "pool");
    let mut s = dial(&up);
    let mut h = ProxyHeader::encode_v2(&proxied("198.51.100.1:1", "127.0.0.1:2"));
    h.extend_from_slice(&[0x04, 0, 3, 0, 0, 0]);
    h[15] += 6;
    h.extend_from_slice(b"shout\n");
    s.write_all(&h).unwrap();
    let mut back = [0u8; 6];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"SHOUT\n");
    drop(s);
    stop(up);
    stop(served);
}

#[test]
fn missing_or_malformed_header_closes_with_a_log_line_in_every_mode() {
    let bad: &[(&[u8], &str)] = &[
        (b"hello\n", "not a PROXY protocol header"),
        (b"PROXY TCP4 1.2.3.4\r\n", "bad PROXY v1 header"),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
            "bad PROXY v1 header",
        ),
        (
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\0\x0c",
            "PROXY v2 header with version 3",
        ),
    ];
    for &mode in MODES {
        let served = start("echo", mode);
        for (bytes, why) in bad {
            let mut s = dial(&served);
            s.write_all(bytes).unwrap();
            assert!(closed_by_server(&s), "{mode}: {why}");
            assert!(
                served.wait_log(why, STEP),
                "{mode}: {why}\n{}",
                served.log()
            );
        }
        // A v1 header longer than 107 bytes.
        let mut s = dial(&served);
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(200, b'x');
        s.write_all(&long).unwrap();
        assert!(closed_by_server(&s), "{mode}");
        assert!(served.wait_log("longer than 107", STEP), "{}", served.log());
        // The server goes on serving proper connections.
        let mut s = dial(&served);
        let mut seg = ProxyHeader::encode_v1(&ProxyAddrs::Local);
        seg.extend_from_slice(b"ok");
        s.write_all(&seg).unwrap();
        let mut back = [0u8; 2];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ok", "{mode}");
        drop(s);
        stop(served);
    }
}

#[test]
fn a_client_that_sends_no_header_is_closed_after_the_header_timeout() {
    let served = start("echo", "threads");
    let s = dial(&served);
    assert!(closed_by_server(&s));
    assert!(
        served.wait_log("no PROXY header within 5s", STEP),
        "{}",
        served.log()
    );
    stop(served);
}
