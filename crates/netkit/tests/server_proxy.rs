//! A `Server` with `proxy_protocol(true)`: blocking handlers and Protocols see
//! the client named by the PROXY header, bytes after the header come first, and
//! a connection without a header never reaches the handler.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netkit::frame::proxy::{ProxyAddrs, ProxyHeader};
use netkit::protocol::{ConnInfo, Protocol, Transport};
use netkit::server::{Conn, Mode, Server};

const STEP: Duration = Duration::from_secs(20);

fn header() -> Vec<u8> {
    ProxyHeader::encode_v2(&ProxyAddrs::Proxied {
        source: "192.0.2.10:3333".parse().unwrap(),
        destination: "192.0.2.1:443".parse().unwrap(),
    })
}

fn exchange(addr: &str, send: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(send).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn a_handler_sees_the_header_address_and_the_bytes_after_it() {
    let handled = Arc::new(AtomicUsize::new(0));
    let count = handled.clone();
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .mode(Mode::Threads)
        .proxy_protocol(true)
        .handler(move |c: &mut Conn| {
            count.fetch_add(1, Ordering::SeqCst);
            let mut line = Vec::new();
            c.read_line(&mut line)?;
            let reply = format!(
                "{} {} {}",
                c.peer_addr(),
                c.local_addr(),
                String::from_utf8_lossy(&line)
            );
            c.write_all(reply.as_bytes())
        })
        .build()
        .unwrap();
    let addr = server.local_addresses()[0].to_string();
    let stop = server.shutdown_handle();
    let t = std::thread::spawn(move || server.serve_forever());
    let mut msg = header();
    msg.extend_from_slice(b"in the same segment\n");
    assert_eq!(
        exchange(&addr, &msg),
        "192.0.2.10:3333 192.0.2.1:443 in the same segment\n"
    );
    // No header: closed before the handler runs.
    assert_eq!(exchange(&addr, b"plain\n"), "");
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    stop.shutdown();
    t.join().unwrap().unwrap();
}

/// Writes what the Protocol was told about the connection.
struct Who;

impl Protocol for Who {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        let text = format!("{} ", t.peer_addr());
        t.write(text.as_bytes());
    }
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        t.write(data);
    }
}

#[test]
fn a_protocol_sees_the_header_address_in_conninfo_and_transport_in_every_mode() {
    for mode in Mode::ALL {
        let server = Server::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .mode(mode)
            .proxy_protocol(true)
            .protocol(|info: &ConnInfo| {
                assert_eq!(info.peer.to_string(), "192.0.2.10:3333");
                Who
            })
            .build()
            .unwrap();
        let addr = server.local_addresses()[0].to_string();
        let stop = server.shutdown_handle();
        let t = std::thread::spawn(move || server.serve_forever());
        let mut msg = header();
        msg.extend_from_slice(b"data");
        assert_eq!(exchange(&addr, &msg), "192.0.2.10:3333 data", "{mode}");
        stop.shutdown();
        t.join().unwrap().unwrap();
    }
}
