//! The built-in services and the Twisted-style helpers running on the reactor,
//! addressed with `netkit::net` addresses: LineReceiver with a maximum length,
//! chat across two loops, chargen, UDP echo, and client connections made from
//! `netkit::net` addresses.

mod reactor_util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use netkit::net::Address;
use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use netkit::protocol::{CloseReason, ConnInfo, Protocol, Transport};
use netkit::reactor::{ConnectTo, ReactorConfig};
use netkit::services::{self, ServiceOptions};
use reactor_util::*;

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

/// Answers every line with its length; records why the connection ended.
struct Lengths {
    log: Arc<Mutex<Vec<String>>>,
}
impl LineProtocol for Lengths {
    fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
        t.send_line(line.len().to_string().as_bytes());
    }
    fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
        self.log
            .lock()
            .unwrap()
            .push(format!("too long ({} bytes so far)", partial.len()));
        t.send_line(b"line too long");
        t.close();
    }
    fn connection_lost(&mut self, r: &CloseReason) {
        self.log.lock().unwrap().push(format!("lost: {r}"));
    }
}

#[test]
fn line_receiver_with_max_length_on_the_reactor() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    let srv = Running::start(config(1), move |r| {
        let a = r
            .listen(addr("tcp://127.0.0.1:0"), move |_: &ConnInfo| {
                LineReceiver::new(Lengths { log: l2.clone() })
                    .with_delimiter(b"\n")
                    .with_max_length(100)
            })
            .unwrap();
        assert!(a.to_string().starts_with("127.0.0.1:"));
    });
    let s = srv.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    // Lines split across writes and several lines in one write.
    w.write_all(b"hel").unwrap();
    w.write_all(b"lo\nab\n\nxyz").unwrap();
    w.write_all(b"\n").unwrap();
    let mut line = String::new();
    for want in ["5\n", "2\n", "0\n", "3\n"] {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, want);
    }
    // Over the maximum: the Protocol is told, answers and closes.
    w.write_all(&[b'x'; 500]).unwrap();
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "line too long\n");
    eventually("lost", || log.lock().unwrap().len() == 2);
    let log = log.lock().unwrap();
    assert!(log[0].starts_with("too long"), "{log:?}");
    assert_eq!(log[1], "lost: connection closed");
    drop(log);
    srv.stop();
}

#[test]
fn services_echo_upper_and_udp_from_net_addresses() {
    let opts = ServiceOptions::default();
    let srv = Running::start(config(2), |r| {
        r.listen_dyn(
            addr("127.0.0.1:0"),
            services::stream_factory("upper", &opts).unwrap(),
        )
        .unwrap();
        r.listen_datagram(
            addr("udp://127.0.0.1:0"),
            services::datagram_service("echo", &opts).unwrap(),
        )
        .unwrap();
    });
    assert!(srv.addrs[1].to_string().starts_with("udp://127.0.0.1:"));
    let mut s = srv.connect();
    s.write_all(b"shout this\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "SHOUT THIS\n");

    let udp_port = srv.addrs[1].host_port().unwrap().port;
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let mut answer = None;
    for _ in 0..20 {
        c.send_to(b"datagram", ("127.0.0.1", udp_port)).unwrap();
        if let Ok((n, _)) = c.recv_from(&mut buf) {
            answer = Some(buf[..n].to_vec());
            break;
        }
    }
    assert_eq!(answer.as_deref(), Some(&b"datagram"[..]));
    srv.stop();
}

#[test]
fn the_chat_service_across_two_loops() {
    let opts = ServiceOptions::default();
    let srv = Running::start(
        ReactorConfig {
            reuse_port: true,
            ..config(2)
        },
        |r| {
            r.listen_dyn(
                addr("127.0.0.1:0"),
                services::stream_factory("chat", &opts).unwrap(),
            )
            .unwrap();
        },
    );
    // Connect until both loops hold a member (bounded).
    let mut clients: Vec<BufReader<TcpStream>> = Vec::new();
    for _ in 0..64 {
        let s = srv.connect();
        clients.push(BufReader::new(s));
        eventually("the member is served", || {
            srv.handle.connections() == clients.len()
        });
        if srv.handle.connections_per_loop().iter().all(|&n| n > 0) {
            break;
        }
    }
    assert!(srv.handle.connections_per_loop().iter().all(|&n| n > 0));
    clients[0].get_mut().write_all(b"hello everyone\n").unwrap();
    // Every other member gets the line, after whatever join announcements it
    // heard first (which depends on how the loops interleaved the joins).
    for c in clients.iter_mut().skip(1) {
        let mut line = String::new();
        for _ in 0..=64 {
            line.clear();
            c.read_line(&mut line).unwrap();
            if !line.starts_with("* ") {
                break;
            }
            assert!(line.ends_with(" joined\n"), "{line}");
        }
        assert!(line.ends_with(": hello everyone\n"), "{line}");
    }
    drop(clients);
    srv.stop();
}

#[test]
fn the_chargen_service_streams_and_stays_flow_controlled() {
    let opts = ServiceOptions::default();
    let srv = Running::start(config(1), |r| {
        r.listen_dyn(
            addr("127.0.0.1:0"),
            services::stream_factory("chargen", &opts).unwrap(),
        )
        .unwrap();
    });
    let mut s = srv.connect();
    let mut buf = vec![0u8; 74 * 95 * 4];
    s.read_exact(&mut buf).unwrap();
    // The rotating pattern repeats every 95 lines.
    assert_eq!(buf[..74 * 95], buf[74 * 95..2 * 74 * 95]);
    assert_eq!(&buf[72..74], b"\r\n");
    drop(s);
    eventually("closed", || srv.handle.connections() == 0);
    srv.stop();
}

struct Collect {
    got: Vec<u8>,
    done: mpsc::Sender<Vec<u8>>,
}
impl Protocol for Collect {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        t.write(b"via net::Address\n");
        t.shutdown_write();
    }
    fn data_received(&mut self, data: &[u8], _: &mut dyn Transport) {
        self.got.extend_from_slice(data);
    }
    fn connection_lost(&mut self, _: &CloseReason) {
        let _ = self.done.send(std::mem::take(&mut self.got));
    }
}

#[test]
fn connect_to_a_net_address_with_half_close() {
    let srv = Running::start(config(1), |r| {
        r.listen(addr("127.0.0.1:0"), echo).unwrap();
    });
    let client = Running::start(config(1), |_| {});
    let (tx, rx) = mpsc::channel();
    let to = ConnectTo::from_address(&srv.addrs[0]).unwrap();
    let h = client.handle.connect(
        to,
        Collect {
            got: Vec::new(),
            done: tx,
        },
        Duration::from_secs(5),
    );
    h.wait().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), b"via net::Address\n");
    assert!(ConnectTo::from_address(&addr("udp://127.0.0.1:1")).is_err());
    client.stop();
    srv.stop();
}

#[test]
fn a_datagram_address_given_to_listen_is_refused() {
    let mut r = netkit::reactor::Reactor::new(ReactorConfig {
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let e = r.listen(addr("udp://127.0.0.1:0"), echo).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = r
        .listen_datagram(
            addr("127.0.0.1:0"),
            services::datagram_service("echo", &ServiceOptions::default()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn echo_over_ipv6_loopback_on_two_loops() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        panic!("this test needs ::1 (IPv6 loopback)");
    };
    drop(probe);
    let srv = Running::start(config(2), |r| {
        let a = r.listen(addr("[::1]:0"), echo).unwrap();
        assert!(a.to_string().starts_with("[::1]:"), "{a}");
    });
    let port = srv.addrs[0].host_port().unwrap().port;
    for i in 0..8 {
        let mut s = TcpStream::connect(("::1", port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let msg = format!("v6 message {i}");
        s.write_all(msg.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, msg);
    }
    srv.stop();
}
