//! The reactor on real loopback and Unix sockets: echo over every socket kind, many
//! clients, half-close, timers, idle timeout, max_conns, mailboxes across loops,
//! client connections, graceful shutdown, descriptor hygiene and fairness. Tests of
//! stream behaviour run on both backends (`NAME::epoll`, `NAME::uring`); datagram
//! and client-connection tests are epoll's alone (`reactor_uring.rs` checks that
//! io_uring refuses them clearly).

mod reactor_util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use netkit::protocol::{
    CloseReason, ConnInfo, DatagramService, Mailbox, PeerAddr, Protocol, TimerId, Transport,
};
use netkit::reactor::{Backend, Reactor, ReactorConfig};
use reactor_util::*;

/// Defines `mod NAME` with the test body run once per backend: `NAME::epoll`
/// and `NAME::uring`.
macro_rules! on_both_backends {
    (fn $name:ident($b:ident: Backend) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($b: Backend) $body

            #[test]
            fn epoll() {
                run(Backend::Epoll)
            }

            #[test]
            fn uring() {
                run(Backend::Uring)
            }
        }
    };
}

/// `workers` loops on `backend`.
fn config_on(backend: Backend, workers: usize) -> ReactorConfig {
    ReactorConfig {
        backend,
        ..config(workers)
    }
}

on_both_backends! {
    fn echo_tcp(backend: Backend) {
        let srv = Running::start(config_on(backend, 1), |r| {
            r.listen(any_port(), echo).unwrap();
        });
        let mut s = srv.connect();
        for i in 0..10 {
            let msg = format!("hello {i}");
            s.write_all(msg.as_bytes()).unwrap();
            let mut buf = vec![0; msg.len()];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(buf, msg.as_bytes());
        }
        drop(s);
        srv.stop();
    }
}

on_both_backends! {
    fn echo_unix_stream_and_socket_file_removed(backend: Backend) {
        let path = temp_path("echo.sock");
        let p = path.clone();
        let srv = Running::start(config_on(backend, 2), move |r| {
            let a = r.listen(p.clone(), echo).unwrap();
            assert_eq!(a.to_string(), format!("unix://{}", p.display()));
        });
        for _ in 0..4 {
            let mut s = UnixStream::connect(&path).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s.write_all(b"over unix").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"over unix");
        }
        srv.stop();
        assert!(
            !path.exists(),
            "the reactor removes the socket file it bound"
        );
    }
}

struct DgramEcho;
impl DatagramService for DgramEcho {
    fn datagram_received(&self, data: &[u8], _: &PeerAddr) -> Option<Vec<u8>> {
        Some(data.to_vec())
    }
}

#[test]
fn echo_udp() {
    let srv = Running::start(config(1), |r| {
        let a = r.listen_datagram(any_port(), Arc::new(DgramEcho)).unwrap();
        assert!(a.to_string().starts_with("udp://127.0.0.1:"));
    });
    let c = std::net::UdpSocket::bind(any_port()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let server: SocketAddr = format!("127.0.0.1:{}", srv.port()).parse().unwrap();
    let mut buf = [0u8; 2048];
    // UDP may drop: retry a bounded number of times.
    let mut got = None;
    for _ in 0..20 {
        c.send_to(b"ping over udp", server).unwrap();
        if let Ok((n, from)) = c.recv_from(&mut buf) {
            got = Some((buf[..n].to_vec(), from));
            break;
        }
    }
    let (data, from) = got.expect("an answer within 20 tries");
    assert_eq!(data, b"ping over udp");
    assert_eq!(from, server);
    srv.stop();
}

#[test]
fn echo_unix_datagram() {
    let path = temp_path("dgram.sock");
    let client_path = temp_path("client.sock");
    let p = path.clone();
    let srv = Running::start(config(1), move |r| {
        let a = r.listen_datagram(p, Arc::new(DgramEcho)).unwrap();
        assert!(a.to_string().starts_with("unix-dgram://"));
    });
    let c = UnixDatagram::bind(&client_path).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.send_to(b"ping over unix-dgram", &path).unwrap();
    let mut buf = [0u8; 256];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping over unix-dgram");
    srv.stop();
    assert!(!path.exists());
}

on_both_backends! {
    fn two_hundred_clients_echo_one_mebibyte_each(backend: Backend) {
        let srv = Running::start(config_on(backend, 2), |r| {
            r.listen(any_port(), echo).unwrap();
        });
        let port = srv.port();
        let clients: Vec<_> = (0..200)
            .map(|i| {
                thread::spawn(move || {
                    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(WAIT)).unwrap();
                    let data = pattern(1 << 20, i);
                    let got = echo_round_trip(s, data.clone());
                    assert!(
                        got == data,
                        "client {i}: echo differs ({} bytes)",
                        got.len()
                    );
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        srv.stop();
    }
}

on_both_backends! {
    fn half_close_delivers_everything_before_eof(backend: Backend) {
        let srv = Running::start(config_on(backend, 1), |r| {
            r.listen(any_port(), echo).unwrap();
        });
        let data = pattern(3 << 20, 1);
        let got = echo_round_trip(srv.connect(), data.clone());
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        srv.stop();
    }
}

/// A half-close-aware Protocol: on EOF it answers with the byte count, then FIN.
struct CountThenFin(usize);
impl Protocol for CountThenFin {
    fn data_received(&mut self, data: &[u8], _: &mut dyn Transport) {
        self.0 += data.len();
    }
    fn eof_received(&mut self, t: &mut dyn Transport) {
        t.write(format!("{}", self.0).as_bytes());
        t.shutdown_write();
    }
}

on_both_backends! {
    fn shutdown_write_sends_fin_after_the_queue_and_ends_the_connection(backend: Backend) {
        let lost = Arc::new(Mutex::new(Vec::new()));
        let l2 = lost.clone();
        struct Watch(CountThenFin, Arc<Mutex<Vec<CloseReason>>>);
        impl Protocol for Watch {
            fn data_received(&mut self, d: &[u8], t: &mut dyn Transport) {
                self.0.data_received(d, t)
            }
            fn eof_received(&mut self, t: &mut dyn Transport) {
                self.0.eof_received(t)
            }
            fn connection_lost(&mut self, r: &CloseReason) {
                self.1.lock().unwrap().push(r.clone());
            }
        }
        let srv = Running::start(config_on(backend, 1), move |r| {
            r.listen(any_port(), move |_: &ConnInfo| {
                Watch(CountThenFin(0), l2.clone())
            })
            .unwrap();
        });
        let got = echo_round_trip(srv.connect(), vec![7; 100_000]);
        assert_eq!(got, b"100000");
        eventually("connection_lost", || !lost.lock().unwrap().is_empty());
        assert_eq!(lost.lock().unwrap()[0], CloseReason::Done);
        srv.stop();
    }
}

on_both_backends! {
    fn idle_timeout_closes_a_silent_client(backend: Backend) {
        let lost = Arc::new(Mutex::new(None));
        let l2 = lost.clone();
        struct Watch(Arc<Mutex<Option<CloseReason>>>);
        impl Protocol for Watch {
            fn data_received(&mut self, d: &[u8], t: &mut dyn Transport) {
                t.write(d);
            }
            fn connection_lost(&mut self, r: &CloseReason) {
                *self.0.lock().unwrap() = Some(r.clone());
            }
        }
        let cfg = ReactorConfig {
            backend,
            workers: 1,
            idle_timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        };
        let srv = Running::start(cfg, move |r| {
            r.listen(any_port(), move |_: &ConnInfo| Watch(l2.clone()))
                .unwrap();
        });
        let mut s = srv.connect();
        s.write_all(b"x").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).unwrap(), 1);
        // Now silent: the server closes (read returns EOF, bounded by WAIT).
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        eventually("connection_lost", || lost.lock().unwrap().is_some());
        assert_eq!(*lost.lock().unwrap(), Some(CloseReason::IdleTimeout));
        srv.stop();
    }
}

on_both_backends! {
    fn idle_timeout_sends_queued_output_before_closing(backend: Backend) {
        // A reply far larger than the socket buffers, queued while the client
        // is not reading; the client then stays silent past the idle timeout.
        const REPLY: usize = 32 * 1024 * 1024;
        let lost = Arc::new(Mutex::new(None));
        let l2 = lost.clone();
        struct BigReply(Arc<Mutex<Option<CloseReason>>>);
        impl Protocol for BigReply {
            fn data_received(&mut self, d: &[u8], t: &mut dyn Transport) {
                if d.starts_with(b"go") {
                    t.write(&pattern(REPLY, 3));
                } else {
                    t.write(d);
                }
            }
            fn connection_lost(&mut self, r: &CloseReason) {
                *self.0.lock().unwrap() = Some(r.clone());
                // The idle path runs under the loop's panic guard too.
                if *r == CloseReason::IdleTimeout {
                    panic!("a Protocol panicking as the idle timeout closes it");
                }
            }
        }
        let idle = Duration::from_secs(1);
        let cfg = ReactorConfig {
            backend,
            workers: 1,
            idle_timeout: Some(idle),
            ..Default::default()
        };
        let srv = Running::start(cfg, move |r| {
            r.listen(any_port(), move |_: &ConnInfo| BigReply(l2.clone()))
                .unwrap();
        });
        let mut s = srv.connect();
        s.write_all(b"go").unwrap();
        // Silent and not reading until the idle timeout has fired, but reading
        // within the next idle period: the queued reply arrives in full.
        thread::sleep(idle + idle / 2);
        let mut got = Vec::with_capacity(REPLY);
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), REPLY, "the reply was cut short by the idle close");
        assert!(got == pattern(REPLY, 3), "the reply arrived corrupted");
        eventually("connection_lost", || lost.lock().unwrap().is_some());
        assert_eq!(*lost.lock().unwrap(), Some(CloseReason::IdleTimeout));
        // The panic in connection_lost took only that connection down.
        assert_eq!(echo_round_trip(srv.connect(), b"still serving".to_vec()), b"still serving");
        srv.stop();
    }
}

on_both_backends! {
    fn max_conns_makes_the_extra_client_wait_for_a_free_slot(backend: Backend) {
        let cfg = ReactorConfig {
            backend,
            workers: 2,
            max_conns: Some(2),
            ..Default::default()
        };
        let srv = Running::start(cfg, |r| {
            r.listen(any_port(), echo).unwrap();
        });
        let ping = |s: &mut TcpStream| {
            s.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ping");
        };
        let mut a = srv.connect();
        let mut b = srv.connect();
        ping(&mut a);
        ping(&mut b);
        assert_eq!(srv.handle.connections(), 2);
        // The third connects (kernel backlog) but is not served yet.
        let mut c = srv.connect();
        c.write_all(b"wait").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 4];
        assert!(c.read(&mut buf).is_err(), "served beyond max_conns");
        assert_eq!(srv.handle.connections(), 2);
        drop(a);
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"wait");
        ping(&mut b);
        drop((b, c));
        srv.stop();
    }
}

/// Records timer events; cancels the second timer and closes after the third.
struct Timers {
    log: Arc<Mutex<Vec<String>>>,
    cancelled: Option<TimerId>,
}
impl Protocol for Timers {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        let _first = t.call_later(Duration::from_millis(10));
        self.cancelled = Some(t.call_later(Duration::from_millis(30)));
        let _third = t.call_later(Duration::from_millis(60));
    }
    fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        let mut log = self.log.lock().unwrap();
        let n = log.len();
        log.push(format!("fired {n}"));
        assert_ne!(Some(id), self.cancelled);
        if let Some(c) = self.cancelled.take() {
            t.cancel_timer(c);
            t.cancel_timer(c); // twice: ignored
        } else {
            t.write(b"bye");
            t.close();
        }
    }
    fn connection_lost(&mut self, r: &CloseReason) {
        self.log.lock().unwrap().push(format!("lost {r}"));
    }
}

on_both_backends! {
    fn timers_fire_in_order_and_cancel(backend: Backend) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l2 = log.clone();
        let srv = Running::start(config_on(backend, 1), move |r| {
            r.listen(any_port(), move |_: &ConnInfo| Timers {
                log: l2.clone(),
                cancelled: None,
            })
            .unwrap();
        });
        let mut s = srv.connect();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        eventually("connection_lost", || log.lock().unwrap().len() == 3);
        assert_eq!(
            *log.lock().unwrap(),
            vec!["fired 0", "fired 1", "lost connection closed"]
        );
        srv.stop();
    }
}

/// Chat: every line goes to every other member, through mailboxes.
struct Room(Mutex<Vec<Mailbox>>);
struct Member {
    room: Arc<Room>,
    me: Option<Mailbox>,
}
impl Protocol for Member {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        let m = t.mailbox();
        self.room.0.lock().unwrap().push(m.clone());
        self.me = Some(m);
        t.write(b"joined\n");
    }
    fn data_received(&mut self, data: &[u8], _: &mut dyn Transport) {
        let me = self.me.as_ref().unwrap();
        for m in self.room.0.lock().unwrap().iter() {
            if !m.same(me) {
                let _ = m.post(Bytes::copy_from_slice(data));
            }
        }
    }
    fn connection_lost(&mut self, _: &CloseReason) {
        let me = self.me.take().unwrap();
        self.room.0.lock().unwrap().retain(|m| !m.same(&me));
    }
}

on_both_backends! {
    fn chat_across_two_loops(backend: Backend) {
        let room = Arc::new(Room(Mutex::new(Vec::new())));
        let r2 = room.clone();
        let srv = Running::start(
            ReactorConfig {
            backend,
                reuse_port: true,
                ..config_on(backend, 2)
            },
            move |r| {
                r.listen(any_port(), move |_: &ConnInfo| Member {
                    room: r2.clone(),
                    me: None,
                })
                .unwrap();
            },
        );
        // Connect until both loops hold at least one member (bounded).
        let mut clients = Vec::new();
        for _ in 0..64 {
            let mut s = srv.connect();
            let mut b = [0u8; 7];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"joined\n");
            clients.push(s);
            let per = srv.handle.connections_per_loop();
            if per.iter().all(|&n| n > 0) {
                break;
            }
        }
        assert!(srv.handle.connections_per_loop().iter().all(|&n| n > 0));
        let n = clients.len();
        clients[0].write_all(b"hello room\n").unwrap();
        for c in clients.iter_mut().skip(1) {
            let mut b = [0u8; 11];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"hello room\n");
        }
        clients[n - 1].write_all(b"back at you\n").unwrap();
        let mut b = [0u8; 12];
        clients[0].read_exact(&mut b).unwrap();
        assert_eq!(&b, b"back at you\n");
        drop(clients);
        srv.stop();
    }
}

/// A client Protocol: sends a greeting, collects the answer, closes on a count.
struct Client {
    want: usize,
    got: Vec<u8>,
    done: mpsc::Sender<(Vec<u8>, CloseReason)>,
}
impl Protocol for Client {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        t.write(b"hello from a client protocol");
    }
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        self.got.extend_from_slice(data);
        if self.got.len() >= self.want {
            t.close();
        }
    }
    fn connection_lost(&mut self, r: &CloseReason) {
        let _ = self.done.send((std::mem::take(&mut self.got), r.clone()));
    }
}

#[test]
fn connect_a_client_protocol_and_fail_on_a_refused_port() {
    let srv = Running::start(config(1), |r| {
        r.listen(any_port(), echo).unwrap();
    });
    // The client reactor connects out, Twisted's connectTCP.
    let client = Running::start(config(1), |_| {});
    let (tx, rx) = mpsc::channel();
    let target: SocketAddr = format!("127.0.0.1:{}", srv.port()).parse().unwrap();
    let h = client.handle.connect(
        target,
        Client {
            want: 28,
            got: Vec::new(),
            done: tx,
        },
        Duration::from_secs(5),
    );
    h.wait().unwrap();
    let (got, reason) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(got, b"hello from a client protocol");
    assert_eq!(reason, CloseReason::Done);

    // A port nobody listens on: bind one, learn its number, close it.
    let refused = std::net::TcpListener::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let h = client.handle.connect(
        refused,
        Client {
            want: 1,
            got: Vec::new(),
            done: tx,
        },
        Duration::from_secs(5),
    );
    let err = h.wait().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // The Protocol never ran, so it never saw connection_lost.
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    client.stop();
    srv.stop();
}

#[test]
fn connect_over_unix_before_run() {
    let path = temp_path("srv.sock");
    let p = path.clone();
    let srv = Running::start(config(1), move |r| {
        r.listen(p, echo).unwrap();
    });
    let (tx, rx) = mpsc::channel();
    let client = Reactor::new(config(1)).unwrap();
    let h = client.connect(
        path.clone(),
        Client {
            want: 28,
            got: Vec::new(),
            done: tx,
        },
        Duration::from_secs(5),
    );
    assert!(h.result().is_none());
    let handle = client.handle();
    let t = thread::spawn(move || client.run());
    h.wait().unwrap();
    let (got, reason) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(got, b"hello from a client protocol");
    assert_eq!(reason, CloseReason::Done);
    handle.shutdown();
    t.join().unwrap().unwrap();
    srv.stop();
}

/// Echoes, and records how each connection ended.
struct RecordingEcho(Arc<Mutex<Vec<CloseReason>>>);

impl Protocol for RecordingEcho {
    fn data_received(&mut self, d: &[u8], t: &mut dyn Transport) {
        t.write(d);
    }
    fn connection_lost(&mut self, r: &CloseReason) {
        self.0.lock().unwrap().push(r.clone());
    }
}

on_both_backends! {
    fn shutdown_with_connections_in_flight_delivers_every_byte(backend: Backend) {
        let lost = Arc::new(Mutex::new(Vec::new()));
        let l2 = lost.clone();
        let cfg = ReactorConfig {
            backend,
            workers: 2,
            grace: Duration::from_secs(30),
            ..Default::default()
        };
        let mut srv = Running::start(cfg, move |r| {
            r.listen(any_port(), move |_: &ConnInfo| RecordingEcho(l2.clone()))
                .unwrap();
        });
        let port = srv.port();
        let (started_tx, started_rx) = mpsc::channel();
        let clients: Vec<_> = (0..8)
            .map(|i| {
                let started = started_tx.clone();
                thread::spawn(move || {
                    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(WAIT)).unwrap();
                    let mut w = s.try_clone().unwrap();
                    let data = pattern(4 << 20, i);
                    let expect = data.clone();
                    let writer = thread::spawn(move || {
                        w.write_all(&data[..1 << 20]).unwrap();
                        started.send(()).unwrap();
                        w.write_all(&data[1 << 20..]).unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut got = Vec::new();
                    let mut r = s;
                    r.read_to_end(&mut got).unwrap();
                    writer.join().unwrap();
                    assert!(got == expect, "client {i} got {} bytes", got.len());
                })
            })
            .collect();
        for _ in 0..8 {
            started_rx.recv_timeout(WAIT).unwrap();
        }
        srv.handle.shutdown();
        // New connections are refused once the listeners are gone.
        eventually("listener closed", || {
            TcpStream::connect(("127.0.0.1", port)).is_err()
        });
        for c in clients {
            c.join().unwrap();
        }
        srv.thread.take().unwrap().join().unwrap().unwrap();
        let lost = lost.lock().unwrap();
        // The 8 clients, plus any probe connection accepted before the listener closed.
        assert!(lost.len() >= 8);
        assert!(lost.iter().all(|r| *r == CloseReason::Done));
    }
}

on_both_backends! {
    fn shutdown_after_grace_closes_with_shutdown_reason(backend: Backend) {
        let lost = Arc::new(Mutex::new(Vec::new()));
        let l2 = lost.clone();
        let cfg = ReactorConfig {
            backend,
            workers: 1,
            grace: Duration::from_millis(100),
            ..Default::default()
        };
        let srv = Running::start(cfg, move |r| {
            r.listen(any_port(), move |_: &ConnInfo| RecordingEcho(l2.clone()))
                .unwrap();
        });
        let mut s = srv.connect();
        s.write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        srv.stop();
        assert_eq!(*lost.lock().unwrap(), vec![CloseReason::Shutdown]);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

on_both_backends! {
    fn connect_close_cycles_do_not_leak_descriptors(backend: Backend) {
        let srv = Running::start(config_on(backend, 2), |r| {
            r.listen(any_port(), echo).unwrap();
        });
        let mut warm = srv.connect();
        warm.write_all(b"w").unwrap();
        let mut b = [0u8; 1];
        warm.read_exact(&mut b).unwrap();
        drop(warm);
        eventually("warm-up closed", || srv.handle.connections() == 0);
        let start = open_fds();
        for i in 0..2000 {
            let mut s = srv.connect();
            if i % 2 == 0 {
                s.write_all(b"x").unwrap();
                s.read_exact(&mut b).unwrap();
            }
        }
        eventually("every connection closed", || srv.handle.connections() == 0);
        // The count is the whole process's: tests running beside this one open
        // and close descriptors too, so wait (bounded) for theirs to go; a leak
        // of these 2000 connections would not.
        eventually(&format!("descriptors back to {start} (+4)"), || {
            open_fds() <= start + 4
        });
        srv.stop();
    }
}

on_both_backends! {
    fn one_flooding_connection_does_not_starve_another(backend: Backend) {
        struct Discard;
        impl Protocol for Discard {
            fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
                if data.first() == Some(&b'?') {
                    t.write(b"!");
                }
            }
        }
        let srv = Running::start(config_on(backend, 1), |r| {
            r.listen(any_port(), |_: &ConnInfo| Discard).unwrap();
        });
        let mut flood = srv.connect();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let flooder = thread::spawn(move || {
            let chunk = vec![b'x'; 256 * 1024];
            let mut sent = 0usize;
            while !s2.load(Ordering::SeqCst) {
                flood.write_all(&chunk).unwrap();
                sent += chunk.len();
            }
            sent
        });
        let mut pinger = srv.connect();
        for _ in 0..200 {
            pinger.write_all(b"?").unwrap();
            let mut b = [0u8; 1];
            pinger.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"!");
        }
        stop.store(true, Ordering::SeqCst);
        let sent = flooder.join().unwrap();
        assert!(sent > 0);
        srv.stop();
    }
}

/// Records every event so the order contract can be checked.
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}
impl Protocol for Recorder {
    fn connection_made(&mut self, _: &mut dyn Transport) {
        self.log.lock().unwrap().push("made".into());
    }
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        self.log.lock().unwrap().push("data".into());
        match data {
            b"close" => {
                t.write(b"closing");
                t.close();
                t.write(b"ignored after close");
            }
            b"abort" => {
                t.write(b"dropped?");
                t.abort();
            }
            b"pause" => {
                t.pause_reading();
                t.call_later(Duration::from_millis(100));
            }
            _ => t.write(data),
        }
    }
    fn timer_fired(&mut self, _: TimerId, t: &mut dyn Transport) {
        self.log.lock().unwrap().push("resume".into());
        t.resume_reading();
    }
    fn connection_lost(&mut self, r: &CloseReason) {
        self.log.lock().unwrap().push(format!("lost: {r}"));
    }
}

on_both_backends! {
    fn close_abort_and_pause_keep_the_event_contract(backend: Backend) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l2 = log.clone();
        let srv = Running::start(config_on(backend, 1), move |r| {
            r.listen(any_port(), move |_: &ConnInfo| Recorder { log: l2.clone() })
                .unwrap();
        });
        // close: flushes, drops later writes, then connection_lost(Done) last.
        let mut s = srv.connect();
        s.write_all(b"close").unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"closing");
        eventually("lost", || log.lock().unwrap().len() == 3);
        assert_eq!(
            *log.lock().unwrap(),
            vec!["made", "data", "lost: connection closed"]
        );
        log.lock().unwrap().clear();

        // abort: connection_lost(Aborted).
        let mut s = srv.connect();
        s.write_all(b"abort").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        eventually("lost", || log.lock().unwrap().len() == 3);
        assert_eq!(log.lock().unwrap()[2], "lost: connection aborted");
        log.lock().unwrap().clear();

        // pause: data sent while paused arrives after resume_reading.
        let mut s = srv.connect();
        s.write_all(b"pause").unwrap();
        thread::sleep(Duration::from_millis(20));
        s.write_all(b"later").unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"later");
        let l = log.lock().unwrap().clone();
        assert_eq!(l, vec!["made", "data", "resume", "data"]);
        drop(s);
        srv.stop();
    }
}

on_both_backends! {
    fn a_full_mailbox_closes_its_connection(backend: Backend) {
        let boxes = Arc::new(Mutex::new(Vec::<Mailbox>::new()));
        let b2 = boxes.clone();
        struct Holder(Arc<Mutex<Vec<Mailbox>>>);
        impl Protocol for Holder {
            fn connection_made(&mut self, t: &mut dyn Transport) {
                self.0.lock().unwrap().push(t.mailbox());
                t.write(b"+");
            }
            fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
        }
        let cfg = ReactorConfig {
            backend,
            workers: 1,
            mailbox_limit: 64 * 1024,
            high_water: 4096,
            low_water: 1024,
            ..Default::default()
        };
        let srv = Running::start(cfg, move |r| {
            r.listen(any_port(), move |_: &ConnInfo| Holder(b2.clone()))
                .unwrap();
        });
        let mut s = srv.connect();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        let mb = boxes.lock().unwrap()[0].clone();
        let msg = Bytes::from(vec![b'm'; 512]);
        // While the peer reads, mail is delivered.
        for _ in 0..10 {
            mb.post(msg.clone()).unwrap();
        }
        let mut got = vec![0u8; 5120];
        s.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&c| c == b'm'));
        // Once it stops reading, the mailbox fills and the connection is closed.
        eventually("the connection to close", || {
            for _ in 0..16 {
                let _ = mb.post(msg.clone());
            }
            mb.is_closed()
        });
        eventually("the slot to be freed", || srv.handle.connections() == 0);
        srv.stop();
    }
}

#[test]
fn a_connect_that_gets_no_answer_times_out() {
    // A listener with a full accept queue: Linux drops further SYNs, so a new
    // connect neither succeeds nor fails until its timeout.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&any_port().into()).unwrap();
    sock.listen(0).unwrap();
    let target = sock.local_addr().unwrap().as_socket().unwrap();
    let _queued: Vec<TcpStream> = (0..2)
        .filter_map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.connect_timeout(&target.into(), Duration::from_millis(200))
                .ok()
                .map(|()| s.into())
        })
        .collect();
    let client = Running::start(config(1), |_| {});
    let (tx, _rx) = mpsc::channel();
    let h = client.handle.connect(
        target,
        Client {
            want: 1,
            got: Vec::new(),
            done: tx,
        },
        Duration::from_millis(300),
    );
    let err = h.wait().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    client.stop();
}

on_both_backends! {
    fn a_panicking_protocol_loses_its_connection_not_the_loop(backend: Backend) {
        struct Fragile;
        impl Protocol for Fragile {
            fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
                if data.starts_with(b"boom") {
                    panic!("a Protocol bug (this panic is expected by the test)");
                }
                t.write(data);
            }
        }
        let srv = Running::start(config_on(backend, 1), |r| {
            r.listen(any_port(), |_: &ConnInfo| Fragile).unwrap();
        });
        let mut other = srv.connect();
        other.write_all(b"before").unwrap();
        let mut b = [0u8; 6];
        other.read_exact(&mut b).unwrap();
        let mut victim = srv.connect();
        victim.write_all(b"boom").unwrap();
        let mut rest = Vec::new();
        let _ = victim.read_to_end(&mut rest);
        assert!(rest.is_empty());
        other.write_all(b"after!").unwrap();
        other.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"after!");
        eventually("slot freed", || srv.handle.connections() == 1);
        drop(other);
        srv.stop();
    }
}
