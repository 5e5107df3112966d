//! Integration tests for `netkit::net` on real sockets: loopback TCP and UDP
//! (IPv4 and IPv6) and Unix sockets in temporary directories.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use netkit::net::{
    self, AddrError, Address, Datagram, HostPort, ListenOptions, Listener, PeerAddr, StdListener,
    StdStream, Stream, UDP_MAX,
};

const LONG: Duration = Duration::from_secs(10);

/// A directory under the system temp dir, removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "netkit-net-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn listen(addr: &str) -> Listener {
    Listener::bind(&addr.parse().unwrap(), &ListenOptions::default()).unwrap()
}

/// Serves one connection: echoes everything until EOF, then closes.
fn echo_once(listener: Listener) -> thread::JoinHandle<()> {
    echo_serve(listener, 1)
}

/// Serves `count` connections one after another, echoing each until EOF.
fn echo_serve(listener: Listener, count: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for _ in 0..count {
            let (conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(LONG)).unwrap();
            let mut buf = [0u8; 4096];
            loop {
                let n = (&conn).read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                conn.send_all(&buf[..n]).unwrap();
            }
        }
    })
}

fn echo_round_trip(addr: &Address) {
    let client = net::connect(addr, LONG).unwrap();
    client.set_read_timeout(Some(LONG)).unwrap();
    client.send_all(b"hello, echo").unwrap();
    let mut back = [0u8; 11];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello, echo");
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    (&client).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---- address grammar ----

#[test]
fn address_parsing_accepts_every_documented_form() {
    let tcp = |h: &str, p| {
        Address::Tcp(HostPort {
            host: h.into(),
            port: p,
        })
    };
    let udp = |h: &str, p| {
        Address::Udp(HostPort {
            host: h.into(),
            port: p,
        })
    };
    let table: &[(&str, Address, &str)] = &[
        ("127.0.0.1:9000", tcp("127.0.0.1", 9000), "127.0.0.1:9000"),
        (
            "tcp://127.0.0.1:9000",
            tcp("127.0.0.1", 9000),
            "127.0.0.1:9000",
        ),
        ("localhost:0", tcp("localhost", 0), "localhost:0"),
        (
            "tcp://my-host.example_x:65535",
            tcp("my-host.example_x", 65535),
            "my-host.example_x:65535",
        ),
        ("[::1]:9000", tcp("::1", 9000), "[::1]:9000"),
        ("tcp://[::]:0", tcp("::", 0), "[::]:0"),
        (
            "udp://127.0.0.1:53",
            udp("127.0.0.1", 53),
            "udp://127.0.0.1:53",
        ),
        ("udp://[::1]:5353", udp("::1", 5353), "udp://[::1]:5353"),
        (
            "unix:///tmp/x.sock",
            Address::Unix("/tmp/x.sock".into()),
            "unix:///tmp/x.sock",
        ),
        (
            "unix://rel/x.sock",
            Address::Unix("rel/x.sock".into()),
            "unix://rel/x.sock",
        ),
        (
            "unix-dgram:///tmp/x.sock",
            Address::UnixDgram("/tmp/x.sock".into()),
            "unix-dgram:///tmp/x.sock",
        ),
        ("  0.0.0.0:80 ", tcp("0.0.0.0", 80), "0.0.0.0:80"),
    ];
    for (input, want, shown) in table {
        let got = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&got, want, "{input}");
        assert_eq!(got.to_string(), *shown, "{input}");
        assert_eq!(
            shown.parse::<Address>().unwrap(),
            got,
            "round trip of {shown}"
        );
    }
    assert!(Address::parse("1.2.3.4:5").unwrap().is_stream());
    assert!(Address::parse("unix:///a").unwrap().is_stream());
    assert!(!Address::parse("udp://1.2.3.4:5").unwrap().is_stream());
    assert!(!Address::parse("unix-dgram:///a").unwrap().is_stream());
}

#[test]
fn malformed_addresses_are_errors_that_quote_the_input() {
    let long = format!("unix:///{}", "x".repeat(200));
    let table: &[&str] = &[
        "localhost",
        "localhost:",
        "localhost:http",
        "localhost:65536",
        "localhost:-1",
        "localhost:+80",
        "::1:80",
        "[::1]80",
        "[::1",
        "[::1]:",
        "[not-ipv6]:80",
        ":80",
        "bad host:80",
        "ftp://example.com:21",
        "unix://",
        "unix-dgram://",
        "tcp://",
        "udp://localhost",
        &long,
    ];
    for input in table {
        let err = Address::parse(input).expect_err(input);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{input:?}")),
            "{input}: message {msg:?} does not quote input"
        );
        assert!(
            msg.contains("expected") || msg.contains("[::1]:PORT") || msg.contains("limit"),
            "{msg}"
        );
    }
    assert_eq!(Address::parse("   ").unwrap_err(), AddrError::Empty);
    assert!(Address::parse("")
        .unwrap_err()
        .to_string()
        .contains("HOST:PORT"));
    assert!(matches!(
        Address::parse("::1:80").unwrap_err(),
        AddrError::UnbracketedIpv6 { .. }
    ));
    assert!(matches!(
        Address::parse("ftp://x:1").unwrap_err(),
        AddrError::UnknownScheme { .. }
    ));
    assert!(matches!(
        Address::parse("x:99999").unwrap_err(),
        AddrError::BadPort { .. }
    ));
}

#[test]
fn host_names_resolve_through_the_system_resolver() {
    let hp = HostPort {
        host: "localhost".into(),
        port: 7,
    };
    let addrs = hp.resolve().unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs.iter().all(|a| a.port() == 7 && a.ip().is_loopback()),
        "{addrs:?}"
    );
    let bad = HostPort {
        host: "no-such-host.invalid".into(),
        port: 7,
    };
    let err = bad.resolve().unwrap_err();
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
}

// ---- listening and connecting ----

#[test]
fn ipv4_listen_connect_echo() {
    let l = listen("127.0.0.1:0");
    let addr = l.local_address();
    let port = l.local_socket_addr().unwrap().port();
    assert_ne!(port, 0);
    assert_eq!(addr.to_string(), format!("127.0.0.1:{port}"));
    let server = echo_once(l);
    echo_round_trip(&addr);
    server.join().unwrap();
}

#[test]
fn ipv6_listen_connect_echo() {
    let l = listen("[::1]:0");
    let addr = l.local_address();
    assert!(addr.to_string().starts_with("[::1]:"), "{addr}");
    let server = echo_once(l);
    echo_round_trip(&addr);
    server.join().unwrap();
}

#[test]
fn unix_stream_listen_connect_echo() {
    let dir = TempDir::new();
    let addr = Address::Unix(dir.path("echo.sock"));
    let l = Listener::bind(&addr, &ListenOptions::default()).unwrap();
    assert_eq!(l.local_address(), addr);
    assert!(l.is_unix());
    let server = echo_once(l);
    echo_round_trip(&addr);
    server.join().unwrap();
}

#[test]
fn accepted_streams_report_both_addresses() {
    let l = listen("127.0.0.1:0");
    let client = net::connect(&l.local_address(), LONG).unwrap();
    let (conn, peer) = l.accept().unwrap();
    assert_eq!(conn.peer_addr().unwrap(), peer);
    assert_eq!(client.local_addr().unwrap(), peer);
    assert_eq!(
        client.peer_addr().unwrap(),
        PeerAddr::Inet(l.local_socket_addr().unwrap())
    );
    assert!(!conn.is_unix());
    conn.set_nodelay(true).unwrap();
    conn.set_keepalive(Some(Duration::from_secs(30))).unwrap();
    conn.set_keepalive(None).unwrap();
    conn.set_linger(Some(Duration::from_secs(1))).unwrap();
}

#[test]
fn stale_unix_socket_file_is_replaced() {
    let dir = TempDir::new();
    let path = dir.path("stale.sock");
    // A server that died without cleaning up: the file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let addr = Address::Unix(path.clone());
    let l = Listener::bind(&addr, &ListenOptions::default()).unwrap();
    let server = echo_once(l);
    echo_round_trip(&addr);
    server.join().unwrap();
}

#[test]
fn live_unix_socket_is_address_in_use() {
    let dir = TempDir::new();
    let addr = Address::Unix(dir.path("live.sock"));
    let first = Listener::bind(&addr, &ListenOptions::default()).unwrap();
    let err = Listener::bind(&addr, &ListenOptions::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains("live.sock"), "{err}");
    // The first server is untouched and still serves. It sees the probe
    // that found it alive as a connection closed at once, then the client.
    let server = echo_serve(first, 2);
    echo_round_trip(&addr);
    server.join().unwrap();
}

#[test]
fn a_regular_file_at_the_socket_path_is_never_removed() {
    let dir = TempDir::new();
    let path = dir.path("data.txt");
    fs::write(&path, b"precious").unwrap();
    let err = Listener::bind(&Address::Unix(path.clone()), &ListenOptions::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"precious");
}

#[test]
fn unix_socket_file_is_removed_on_drop() {
    let dir = TempDir::new();
    let path = dir.path("gone.sock");
    let l = Listener::bind(&Address::Unix(path.clone()), &ListenOptions::default()).unwrap();
    assert!(path.exists());
    drop(l);
    assert!(!path.exists());
}

#[test]
fn dropping_a_replaced_listener_leaves_the_new_file() {
    let dir = TempDir::new();
    let path = dir.path("swap.sock");
    let addr = Address::Unix(path.clone());
    let old = Listener::bind(&addr, &ListenOptions::default()).unwrap();
    fs::remove_file(&path).unwrap();
    let new = Listener::bind(&addr, &ListenOptions::default()).unwrap();
    drop(old);
    assert!(path.exists(), "the old listener removed the new one's file");
    drop(new);
    assert!(!path.exists());
}

#[test]
fn listen_options_backlog_and_reuse_port() {
    let opts = ListenOptions {
        backlog: i32::MAX,
        reuse_port: true,
        ..ListenOptions::default()
    };
    let a = Listener::bind(&"127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    let b = Listener::bind(&a.local_address(), &opts).unwrap();
    assert_eq!(a.local_address(), b.local_address());
    let without = Listener::bind(&a.local_address(), &ListenOptions::default()).unwrap_err();
    assert_eq!(without.kind(), io::ErrorKind::AddrInUse);
    assert!(
        without.to_string().contains(&a.local_address().to_string()),
        "{without}"
    );
}

#[test]
fn datagram_addresses_are_rejected_by_stream_calls() {
    let udp: Address = "udp://127.0.0.1:0".parse().unwrap();
    let e = Listener::bind(&udp, &ListenOptions::default()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = net::connect(&udp, LONG).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = Datagram::bind(&"127.0.0.1:0".parse().unwrap()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = net::connect(&"127.0.0.1:1".parse().unwrap(), Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

// ---- Happy Eyeballs ----

#[test]
fn localhost_connects_when_only_ipv4_listens() {
    let l = listen("127.0.0.1:0");
    let port = l.local_socket_addr().unwrap().port();
    let server = echo_once(l);
    echo_round_trip(&format!("localhost:{port}").parse().unwrap());
    server.join().unwrap();
}

#[test]
fn refused_ipv6_falls_back_to_ipv4() {
    // What `localhost` resolves to on a dual-stack host: ::1 first. Only
    // 127.0.0.1 listens, so ::1 is refused and the race moves on.
    let l = listen("127.0.0.1:0");
    let v4 = l.local_socket_addr().unwrap();
    let v6: SocketAddr = format!("[::1]:{}", v4.port()).parse().unwrap();
    let server = echo_once(l);
    let s = net::connect_addrs(&[v6, v4], LONG).unwrap();
    assert_eq!(s.peer_addr().unwrap(), PeerAddr::Inet(v4));
    s.send_all(b"x").unwrap();
    let mut one = [0];
    s.read_exact(&mut one).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    server.join().unwrap();
}

#[test]
fn all_refused_lists_every_address_tried() {
    let port = closed_port();
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let err = net::connect_addrs(&[v6, v4], LONG).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&v4.to_string()) && msg.contains(&v6.to_string()),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");

    let err = net::connect(&format!("localhost:{port}").parse().unwrap(), LONG).unwrap_err();
    assert!(
        err.to_string().contains(&format!("localhost:{port}")),
        "{err}"
    );
    assert!(err.to_string().contains(&v4.to_string()), "{err}");
}

#[test]
fn short_deadline_to_a_closed_port_fails() {
    let addr: Address = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
    let err = net::connect(&addr, Duration::from_millis(200)).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::TimedOut
        ),
        "{err}"
    );
}

/// A listener whose accept queue is full, so further SYNs are dropped and a
/// connect to it can only time out; returns it with the connections that
/// filled it.
fn full_listener() -> (Listener, Vec<Stream>) {
    let opts = ListenOptions {
        backlog: 0,
        ..ListenOptions::default()
    };
    let l = Listener::bind(&"127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        match net::connect(&l.local_address(), Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return (l, held),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled");
}

#[test]
fn one_deadline_covers_every_attempt() {
    let (a, _held_a) = full_listener();
    let (b, _held_b) = full_listener();
    let addrs = [
        a.local_socket_addr().unwrap(),
        b.local_socket_addr().unwrap(),
    ];
    let err = net::connect_addrs(&addrs, Duration::from_millis(700)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    let msg = err.to_string();
    for addr in addrs {
        assert!(msg.contains(&addr.to_string()), "{msg}");
    }
    assert!(msg.contains("timed out"), "{msg}");
}

#[test]
fn unix_connect_to_a_missing_path_names_it() {
    let dir = TempDir::new();
    let addr = Address::Unix(dir.path("nobody.sock"));
    let err = net::connect(&addr, LONG).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nobody.sock"), "{err}");
}

// ---- streams ----

#[test]
fn half_close_peer_reads_eof_and_still_writes_back() {
    let l = listen("127.0.0.1:0");
    let client = net::connect(&l.local_address(), LONG).unwrap();
    let (conn, _) = l.accept().unwrap();
    conn.set_read_timeout(Some(LONG)).unwrap();
    client.set_read_timeout(Some(LONG)).unwrap();
    client.send_all(b"request").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    (&conn).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"request");
    conn.send_all(b"reply after EOF").unwrap();
    drop(conn);
    let mut back = Vec::new();
    (&client).read_to_end(&mut back).unwrap();
    assert_eq!(back, b"reply after EOF");
}

#[test]
fn send_all_eight_mib_to_a_slow_reader() {
    const TOTAL: usize = 8 << 20;
    let (a, b) = net::socketpair().unwrap();
    let data: Vec<u8> = (0..TOTAL).map(|i| (i * 7 % 251) as u8).collect();
    let reader = thread::spawn(move || {
        b.set_read_timeout(Some(LONG)).unwrap();
        let mut got = Vec::with_capacity(TOTAL);
        let mut buf = vec![0u8; 32 * 1024];
        let mut reads = 0u32;
        loop {
            let n = (&b).read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            reads += 1;
            if reads % 16 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        got
    });
    a.set_write_timeout(Some(LONG)).unwrap();
    a.send_all(&data).unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), TOTAL);
    assert!(got == data, "received bytes differ from sent bytes");
}

#[test]
fn read_exact_fills_across_short_writes_and_reports_early_eof() {
    let (a, b) = net::socketpair().unwrap();
    let writer = thread::spawn(move || {
        for chunk in [&b"ab"[..], b"cde", b"f"] {
            a.send_all(chunk).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        a.send_all(b"gh").unwrap();
    });
    b.set_read_timeout(Some(LONG)).unwrap();
    let mut six = [0u8; 6];
    b.read_exact(&mut six).unwrap();
    assert_eq!(&six, b"abcdef");
    writer.join().unwrap();
    let mut four = [0u8; 4];
    let err = b.read_exact(&mut four).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("2 of 4"), "{err}");
}

#[test]
fn read_timeout_expires() {
    let (a, _b) = net::socketpair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert!(a.read_timeout().unwrap().is_some());
    let mut buf = [0u8; 4];
    let err = (&a).read(&mut buf).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    assert_eq!(
        a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn writing_to_a_closed_peer_is_broken_pipe() {
    let (a, b) = net::socketpair().unwrap();
    drop(b);
    let err = a.send_all(b"into the void").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "{err}"
    );
}

fn pattern_file(dir: &TempDir, len: usize) -> (PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8 ^ (i >> 8) as u8).collect();
    let path = dir.path("payload.bin");
    fs::write(&path, &data).unwrap();
    (path, data)
}

fn sendfile_over(tx: Stream, rx: Stream, file: &Path, offset: u64, len: u64) -> (u64, Vec<u8>) {
    let reader = thread::spawn(move || {
        rx.set_read_timeout(Some(LONG)).unwrap();
        let mut got = Vec::new();
        (&rx).read_to_end(&mut got).unwrap();
        got
    });
    let f = fs::File::open(file).unwrap();
    tx.set_write_timeout(Some(LONG)).unwrap();
    let sent = tx.sendfile(&f, offset, len).unwrap();
    tx.shutdown(Shutdown::Write).unwrap();
    (sent, reader.join().unwrap())
}

#[test]
fn sendfile_of_a_range_arrives_byte_identical() {
    let dir = TempDir::new();
    let (path, data) = pattern_file(&dir, 3 << 20);
    let l = listen("127.0.0.1:0");
    let tx = net::connect(&l.local_address(), LONG).unwrap();
    let (rx, _) = l.accept().unwrap();
    let (off, len) = (12_345usize, 2_000_001usize);
    let (sent, got) = sendfile_over(tx, rx, &path, off as u64, len as u64);
    assert_eq!(sent, len as u64);
    assert!(got == data[off..off + len], "sendfile bytes differ");
}

#[test]
fn sendfile_stops_at_end_of_file_and_works_on_unix_sockets() {
    let dir = TempDir::new();
    let (path, data) = pattern_file(&dir, 100_000);
    let (tx, rx) = net::socketpair().unwrap();
    let (sent, got) = sendfile_over(tx, rx, &path, 90_000, 50_000);
    assert_eq!(sent, 10_000);
    assert!(got == data[90_000..], "sendfile bytes differ");
}

#[test]
fn streams_convert_to_and_from_std() {
    let l = listen("127.0.0.1:0");
    let client = net::connect(&l.local_address(), LONG).unwrap();
    let (conn, _) = l.accept().unwrap();
    let StdStream::Tcp(mut std_conn) = conn.into_std() else {
        panic!("accepted a TCP connection, got another kind")
    };
    std_conn.write_all(b"via std").unwrap();
    let back = Stream::from(std_conn);
    drop(back);
    let mut got = Vec::new();
    client.set_read_timeout(Some(LONG)).unwrap();
    (&client).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"via std");
    assert!(matches!(l.into_std(), StdListener::Tcp(_)));
    let (a, _b) = net::socketpair().unwrap();
    assert!(matches!(
        a.try_clone().unwrap().into_std(),
        StdStream::Unix(_)
    ));
}

#[test]
fn socketpair_carries_bytes_both_ways() {
    let (a, b) = net::socketpair().unwrap();
    assert!(a.is_unix() && b.is_unix());
    a.send_all(b"ping").unwrap();
    let mut four = [0u8; 4];
    b.read_exact(&mut four).unwrap();
    assert_eq!(&four, b"ping");
    (&b).write_all(b"pong").unwrap();
    a.read_exact(&mut four).unwrap();
    assert_eq!(&four, b"pong");
    assert_eq!(a.peer_addr().unwrap(), PeerAddr::Unix(None));
}

// ---- adopting descriptors ----

#[test]
fn from_fd_adopts_a_std_listener_and_sets_nonblocking_when_asked() {
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_l.local_addr().unwrap().port();
    let l = Listener::from_fd_with(OwnedFd::from(std_l), true).unwrap();
    assert!(l.is_nonblocking().unwrap());
    assert!(!l.is_unix());
    assert_eq!(l.local_address().to_string(), format!("127.0.0.1:{port}"));
    let err = l.accept().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    let _client = net::connect(&l.local_address(), LONG).unwrap();
    // Bounded wait for the connection to land in the accept queue.
    let mut accepted = None;
    for _ in 0..1000 {
        match l.accept() {
            Ok(c) => {
                accepted = Some(c);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (conn, _) = accepted.expect("connection never arrived");
    // Accepted sockets are blocking whatever the listener's mode.
    conn.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let err = (&conn).read(&mut [0u8; 1]).unwrap_err();
    assert!(matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ));
}

#[test]
fn from_fd_adopts_a_unix_listener_without_owning_its_file() {
    let dir = TempDir::new();
    let path = dir.path("adopted.sock");
    let std_l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let l = Listener::from_fd(OwnedFd::from(std_l)).unwrap();
    assert!(l.is_unix());
    assert!(!l.is_nonblocking().unwrap());
    assert_eq!(l.local_address(), Address::Unix(path.clone()));
    let server = echo_once(l);
    echo_round_trip(&Address::Unix(path.clone()));
    server.join().unwrap();
    assert!(path.exists());
}

#[test]
fn from_fd_rejects_sockets_that_are_not_listening_streams() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = Listener::from_fd(OwnedFd::from(udp)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let err = Listener::from_fd(OwnedFd::from(a)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let file = fs::File::open("/dev/null").unwrap();
    assert!(Listener::from_fd(OwnedFd::from(file)).is_err());
}

// ---- datagrams ----

#[test]
fn udp_max_size_datagram_round_trip() {
    let server = Datagram::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let client = Datagram::connect_to(&server.local_address()).unwrap();
    server.set_read_timeout(Some(LONG)).unwrap();
    client.set_read_timeout(Some(LONG)).unwrap();
    let big: Vec<u8> = (0..UDP_MAX).map(|i| (i % 241) as u8).collect();
    assert_eq!(client.send(&big).unwrap(), UDP_MAX);
    let mut buf = vec![0u8; UDP_MAX];
    let got = server.recv_from(&mut buf).unwrap();
    assert_eq!(got.len, UDP_MAX);
    assert!(!got.truncated);
    assert!(buf == big);
    assert_eq!(server.send_to(&big, &got.peer).unwrap(), UDP_MAX);
    let back = client.recv(&mut buf).unwrap();
    assert_eq!((back.len, back.truncated), (UDP_MAX, false));
    assert_eq!(back.peer, client.peer_addr().unwrap());
}

#[test]
fn oversized_datagram_is_reported_truncated() {
    let server = Datagram::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let client = Datagram::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    server.set_read_timeout(Some(LONG)).unwrap();
    let to = PeerAddr::Inet(match server.local_address() {
        Address::Udp(hp) => format!("{hp}").parse().unwrap(),
        other => panic!("{other}"),
    });
    client.send_to(&[0xAB; 2000], &to).unwrap();
    let mut buf = [0u8; 1000];
    let got = server.recv_from(&mut buf).unwrap();
    assert!(got.truncated);
    assert_eq!(got.len, 1000);
    assert!(buf.iter().all(|&b| b == 0xAB));
    // The next datagram is unaffected.
    client.send_to(b"small", &to).unwrap();
    let got = server.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..got.len], got.truncated), (&b"small"[..], false));
}

#[test]
fn udp_over_ipv6() {
    let server = Datagram::bind(&"udp://[::1]:0".parse().unwrap()).unwrap();
    assert!(server
        .local_address()
        .to_string()
        .starts_with("udp://[::1]:"));
    let client = Datagram::connect_to(&server.local_address()).unwrap();
    server.set_read_timeout(Some(LONG)).unwrap();
    client.send(b"six").unwrap();
    let mut buf = [0u8; 16];
    let got = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"six");
}

#[test]
fn unix_datagram_send_recv_and_reply() {
    let dir = TempDir::new();
    let path = dir.path("dgram.sock");
    let addr = Address::UnixDgram(path.clone());
    let server = Datagram::bind(&addr).unwrap();
    assert!(server.is_unix());
    assert_eq!(server.local_address(), addr);
    server.set_read_timeout(Some(LONG)).unwrap();
    let client = Datagram::connect_to(&addr).unwrap();
    client.set_read_timeout(Some(LONG)).unwrap();
    client.send(b"log line").unwrap();
    let mut buf = [0u8; 64];
    let got = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"log line");
    assert!(!got.truncated);
    let Address::UnixDgram(client_path) = client.local_address() else {
        panic!("unix client has a non-unix address")
    };
    assert_eq!(got.peer, PeerAddr::Unix(Some(client_path.clone())));
    server.send_to(b"ack", &got.peer).unwrap();
    let back = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..back.len], b"ack");
    // Truncation is reported on Unix datagram sockets too.
    client.send(&[1u8; 100]).unwrap();
    let got = server.recv_from(&mut buf).unwrap();
    assert!(got.truncated);
    assert_eq!(got.len, 64);
    drop(client);
    assert!(!client_path.exists());
    drop(server);
    assert!(!path.exists());
}

#[test]
fn unix_datagram_stale_file_replaced_and_live_one_refused() {
    let dir = TempDir::new();
    let path = dir.path("d.sock");
    drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
    let addr = Address::UnixDgram(path.clone());
    let live = Datagram::bind(&addr).unwrap();
    let err = Datagram::bind(&addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    drop(live);
}

#[test]
fn datagram_send_to_the_wrong_family_is_invalid_input() {
    let udp = Datagram::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let err = udp
        .send_to(b"x", &PeerAddr::Unix(Some("/tmp/x".into())))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let dir = TempDir::new();
    let unix = Datagram::bind(&Address::UnixDgram(dir.path("u.sock"))).unwrap();
    let err = unix.send_to(b"x", &PeerAddr::Unix(None)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// Socket activation: a Python parent binds a listener, puts it on fd 3 and
/// execs this test binary with `LISTEN_PID`/`LISTEN_FDS` set; the re-run test
/// (seeing `NETKIT_LISTEN_CHILD`) adopts it with `listen_fds`.
#[test]
fn listen_fds_adopts_socket_activation_descriptors() {
    if std::env::var_os("NETKIT_LISTEN_CHILD").is_some() {
        let listeners = net::listen_fds(true).unwrap();
        assert_eq!(listeners.len(), 1);
        let l = &listeners[0];
        assert!(l.is_nonblocking().unwrap());
        let want = std::env::var("NETKIT_EXPECT_PORT").unwrap();
        assert_eq!(l.local_address().to_string(), format!("127.0.0.1:{want}"));
        assert!(
            net::listen_fds(true).unwrap().is_empty(),
            "descriptors taken twice"
        );
        println!("listen_fds child ok");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["NETKIT_EXPECT_PORT"] = str(s.getsockname()[1])
os.environ["NETKIT_LISTEN_CHILD"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
exe = sys.argv[1]
os.execv(exe, [exe, "listen_fds_adopts_socket_activation_descriptors", "--exact", "--nocapture", "--test-threads=1"])
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&exe)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("listen_fds child ok"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn listen_fds_is_empty_without_activation() {
    // LISTEN_PID names another process (or is unset) in a normal test run.
    assert!(net::listen_fds(false).unwrap().is_empty());
}

/// The `O_CLOEXEC` bit of `fd`'s open flags, read from `/proc/self/fdinfo`.
fn is_cloexec(fd: &impl std::os::fd::AsRawFd) -> bool {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    flags & 0o2000000 != 0
}

#[test]
fn every_descriptor_is_close_on_exec() {
    let dir = TempDir::new();
    let l = listen("127.0.0.1:0");
    let client = net::connect(&l.local_address(), LONG).unwrap();
    let (conn, _) = l.accept().unwrap();
    let ul = Listener::bind(
        &Address::Unix(dir.path("c.sock")),
        &ListenOptions::default(),
    )
    .unwrap();
    let uc = net::connect(&ul.local_address(), LONG).unwrap();
    let (pa, pb) = net::socketpair().unwrap();
    let udp = Datagram::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let ud = Datagram::connect_to(&Address::UnixDgram(dir.path("d.sock"))).unwrap_err();
    assert_eq!(ud.kind(), io::ErrorKind::NotFound, "{ud}");
    for (what, ok) in [
        ("tcp listener", is_cloexec(&l)),
        ("tcp client", is_cloexec(&client)),
        ("accepted", is_cloexec(&conn)),
        ("cloned", is_cloexec(&conn.try_clone().unwrap())),
        ("unix listener", is_cloexec(&ul)),
        ("unix client", is_cloexec(&uc)),
        ("socketpair", is_cloexec(&pa) && is_cloexec(&pb)),
        ("udp", is_cloexec(&udp)),
    ] {
        assert!(ok, "{what} is not close-on-exec");
    }
}

#[test]
fn accept_nonblocking_hands_out_nonblocking_streams() {
    let l = listen("127.0.0.1:0");
    let client = net::connect(&l.local_address(), LONG).unwrap();
    let (conn, peer) = l.accept_nonblocking().unwrap();
    assert_eq!(client.local_addr().unwrap(), peer);
    let err = (&conn).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn socket_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Listener>();
    check::<Stream>();
    check::<Datagram>();
    check::<Address>();
}

#[test]
fn cloned_datagram_sockets_share_the_port() {
    let server = Datagram::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let twin = server.try_clone().unwrap();
    assert_eq!(twin.local_address(), server.local_address());
    let client = Datagram::connect_to(&server.local_address()).unwrap();
    client.send(b"one").unwrap();
    twin.set_read_timeout(Some(LONG)).unwrap();
    let mut buf = [0u8; 8];
    let got = twin.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"one");
}

#[test]
fn udp_datagram_over_the_maximum_is_an_error() {
    let server = Datagram::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let client = Datagram::connect_to(&server.local_address()).unwrap();
    assert!(client.send(&vec![0u8; UDP_MAX + 1]).is_err());
}
