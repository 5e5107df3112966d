//! The `server` module as a library: handlers (setup/handle/finish, read_line
//! and its bound), panics and errors contained per connection, a ShutdownHandle
//! called from inside a handler, the Protocol runner's contract (timers, close
//! reasons, backpressure, mailboxes — in the threads, pool and sequential
//! modes), datagram handlers, pool and fork modes, and
//! configuration errors.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use netkit::net::{self, Address, Datagram, Stream};
use netkit::protocol::{CloseReason, ConnInfo, Factory, Protocol, TimerId, Transport};
use netkit::server::{
    Conn, DatagramRequest, Handler, Mode, Server, ServerBuilder, ServerError, ShutdownHandle,
};

const STEP: Duration = Duration::from_secs(20);

type Running = (
    Address,
    ShutdownHandle,
    thread::JoinHandle<Result<(), ServerError>>,
);

fn local() -> Address {
    "127.0.0.1:0".parse().unwrap()
}

fn dial(addr: &Address) -> Stream {
    let s = net::connect(addr, STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    s
}

/// Starts `server` on a thread; returns its first address, a stop handle and the thread.
fn start(server: Server) -> Running {
    let addr = server.local_addresses()[0].clone();
    let stop = server.shutdown_handle();
    (addr, stop, thread::spawn(move || server.serve_forever()))
}

fn read_all(s: &Stream) -> Vec<u8> {
    let mut v = Vec::new();
    (&*s).read_to_end(&mut v).unwrap();
    v
}

/// Upper-cases each line (the seed's `MyTCPHandler`, line by line).
fn upper(c: &mut Conn) -> io::Result<()> {
    let mut line = Vec::new();
    while c.read_line(&mut line)? > 0 {
        c.write_all(&line.to_ascii_uppercase())?;
        line.clear();
    }
    Ok(())
}

#[test]
fn handler_serves_lines_in_every_mode() {
    for mode in Mode::ALL {
        let server = Server::builder()
            .listen(local())
            .mode(mode)
            .handler(upper)
            .build()
            .unwrap();
        let (addr, stop, t) = start(server);
        for _ in 0..3 {
            let s = dial(&addr);
            s.send_all(b"hello\nwor").unwrap();
            s.send_all(b"ld\nlast").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            assert_eq!(read_all(&s), b"HELLO\nWORLD\nLAST", "{mode}");
        }
        stop.shutdown();
        t.join().unwrap().unwrap();
    }
}

struct Staged {
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Handler for Staged {
    fn setup(&self, c: &mut Conn) -> io::Result<()> {
        self.log.lock().unwrap().push("setup");
        c.write_all(b"welcome\n")
    }
    fn handle(&self, _c: &mut Conn) -> io::Result<()> {
        self.log.lock().unwrap().push("handle");
        Err(io::Error::other("handler gave up"))
    }
    fn finish(&self, c: &mut Conn) -> io::Result<()> {
        self.log.lock().unwrap().push("finish");
        c.write_all(b"bye\n")
    }
}

#[test]
fn setup_handle_finish_run_in_order_and_finish_runs_after_an_error() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = Server::builder()
        .listen(local())
        .handler(Staged { log: log.clone() })
        .build()
        .unwrap();
    let (addr, stop, t) = start(server);
    let s = dial(&addr);
    assert_eq!(read_all(&s), b"welcome\nbye\n");
    assert_eq!(*log.lock().unwrap(), ["setup", "handle", "finish"]);
    stop.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn read_line_over_max_line_is_an_error_for_that_connection_only() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    let server = Server::builder()
        .listen(local())
        .max_line(16)
        .handler(move |c: &mut Conn| {
            let r = upper(c);
            if let Err(e) = &r {
                e2.lock().unwrap().push(e.kind());
            }
            r
        })
        .build()
        .unwrap();
    let (addr, stop, t) = start(server);
    let good = dial(&addr);
    good.send_all(b"short\n").unwrap();
    let bad = dial(&addr);
    bad.send_all(&[b'a'; 100]).unwrap();
    bad.send_all(b"\n").unwrap();
    let mut back = Vec::new();
    let _ = (&bad).read_to_end(&mut back);
    assert!(back.is_empty(), "{back:?}");
    good.send_all(b"still here\n").unwrap();
    good.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&good), b"SHORT\nSTILL HERE\n");
    assert_eq!(*errors.lock().unwrap(), [io::ErrorKind::InvalidData]);
    stop.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    for mode in [Mode::Sequential, Mode::Threads, Mode::Pool] {
        let served = Arc::new(AtomicUsize::new(0));
        let n = served.clone();
        let server = Server::builder()
            .listen(local())
            .mode(mode)
            .workers(1)
            .handler(move |c: &mut Conn| {
                let mut line = Vec::new();
                c.read_line(&mut line)?;
                if line.starts_with(b"panic") {
                    panic!("the handler was told to panic");
                }
                n.fetch_add(1, Ordering::SeqCst);
                c.write_all(b"fine\n")
            })
            .build()
            .unwrap();
        let (addr, stop, t) = start(server);
        for i in 0..6 {
            let s = dial(&addr);
            if i % 2 == 0 {
                s.send_all(b"panic\n").unwrap();
                let mut back = Vec::new();
                let _ = (&s).read_to_end(&mut back);
                assert_eq!(back, b"", "{mode}");
            } else {
                s.send_all(b"hi\n").unwrap();
                assert_eq!(read_all(&s), b"fine\n", "{mode}");
            }
        }
        assert_eq!(served.load(Ordering::SeqCst), 3);
        stop.shutdown();
        t.join().unwrap().unwrap();
    }
}

#[test]
fn shutdown_from_inside_a_handler_returns_and_the_server_stops() {
    for mode in [Mode::Sequential, Mode::Threads, Mode::Pool] {
        let server = Server::builder()
            .listen(local())
            .mode(mode)
            .handler(|c: &mut Conn| {
                c.shutdown_handle().shutdown();
                assert!(c.shutdown_handle().is_shutting_down());
                c.write_all(b"stopping\n")
            })
            .build()
            .unwrap();
        let (addr, _stop, t) = start(server);
        let s = dial(&addr);
        assert_eq!(read_all(&s), b"stopping\n");
        t.join().unwrap().unwrap();
    }
}

#[test]
fn idle_timeout_closes_a_silent_blocking_client() {
    let server = Server::builder()
        .listen(local())
        .idle_timeout(Some(Duration::from_millis(200)))
        .handler(upper)
        .build()
        .unwrap();
    let (addr, stop, t) = start(server);
    let s = dial(&addr);
    assert_eq!(read_all(&s), b"");
    stop.shutdown();
    t.join().unwrap().unwrap();
}

/// A Protocol that reports what happened to it.
struct Probe {
    events: mpsc::Sender<String>,
    cancelled: Option<TimerId>,
}

impl Protocol for Probe {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        t.call_later(Duration::from_millis(30));
        let id = t.call_later(Duration::from_millis(10));
        t.cancel_timer(id);
        self.cancelled = Some(id);
    }
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        match data {
            b"abort" => t.abort(),
            b"close" => {
                t.write(b"closing");
                t.close();
                t.write(b" ignored after close");
            }
            b"fin" => {
                t.write(b"half");
                t.shutdown_write();
            }
            _ => t.write(data),
        }
    }
    fn eof_received(&mut self, t: &mut dyn Transport) {
        let _ = self.events.send("eof".into());
        t.close();
    }
    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        if Some(id) == self.cancelled {
            let _ = self.events.send("cancelled timer fired".into());
        }
        t.write(b"tick;");
    }
    fn connection_lost(&mut self, reason: &CloseReason) {
        let _ = self.events.send(format!("lost {reason:?}"));
    }
}

fn probe_server(builder: ServerBuilder) -> (Running, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = builder
        .listen(local())
        .protocol(move |_: &ConnInfo| Probe {
            events: tx.lock().unwrap().clone(),
            cancelled: None,
        })
        .build()
        .unwrap();
    (start(server), rx)
}

fn next(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(STEP).unwrap()
}

#[test]
fn protocol_runner_keeps_the_transport_contract() {
    for mode in [Mode::Threads, Mode::Pool, Mode::Sequential] {
        transport_contract(mode);
    }
}

fn transport_contract(mode: Mode) {
    let builder = Server::builder()
        .mode(mode)
        .idle_timeout(Some(Duration::from_millis(1500)));
    let ((addr, stop, t), rx) = probe_server(builder);
    let mut tick = [0u8; 5];

    // Timers fire (the cancelled one does not); close flushes first; writes
    // after close are dropped; the reason is Done.
    let s = dial(&addr);
    s.read_exact(&mut tick).unwrap();
    assert_eq!(&tick, b"tick;");
    s.send_all(b"close").unwrap();
    assert_eq!(read_all(&s), b"closing");
    assert_eq!(next(&rx), "lost Done");

    // abort: the reason is Aborted.
    let s = dial(&addr);
    s.read_exact(&mut tick).unwrap();
    s.send_all(b"abort").unwrap();
    let _ = (&s).read_to_end(&mut Vec::new());
    assert_eq!(next(&rx), "lost Aborted");

    // shutdown_write sends FIN after the flush; reading goes on; the peer's
    // EOF is delivered and connection_lost comes last.
    let s = dial(&addr);
    s.read_exact(&mut tick).unwrap();
    s.send_all(b"fin").unwrap();
    assert_eq!(read_all(&s), b"half");
    s.send_all(b"more").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(next(&rx), "eof");
    assert_eq!(next(&rx), "lost Done");

    // A silent peer: IdleTimeout.
    let s = dial(&addr);
    let mut all = Vec::new();
    let _ = (&s).read_to_end(&mut all);
    assert_eq!(all, b"tick;");
    assert_eq!(next(&rx), "lost IdleTimeout");

    stop.shutdown();
    t.join().unwrap().unwrap();
    assert!(rx.try_recv().is_err(), "unexpected events");
}

#[test]
fn shutdown_closes_protocol_connections_after_the_grace_period() {
    for mode in [Mode::Sequential, Mode::Threads, Mode::Pool] {
        let builder = Server::builder()
            .mode(mode)
            .grace(Duration::from_millis(200));
        let ((addr, stop, t), rx) = probe_server(builder);
        let s = dial(&addr);
        s.send_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).unwrap();
        stop.shutdown();
        assert_eq!(next(&rx), "lost Shutdown", "{mode}");
        t.join().unwrap().unwrap();
        // Not accepting any more.
        assert!(
            net::connect(&addr, Duration::from_secs(2)).is_err(),
            "{mode}"
        );
    }
}

#[test]
fn a_peer_that_does_not_read_is_held_back_and_loses_nothing() {
    for mode in [Mode::Threads, Mode::Pool, Mode::Sequential] {
        held_back(mode);
    }
}

fn held_back(mode: Mode) {
    let server = Server::builder()
        .mode(mode)
        .listen(local())
        .protocol(|_: &ConnInfo| netkit::services::Echo)
        .build()
        .unwrap();
    let (addr, stop, t) = start(server);
    let s = dial(&addr);
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Without reading, the server's queue passes its high watermark, it stops
    // reading, and the kernel buffers fill: our writes stall.
    let chunk = vec![b'z'; 64 * 1024];
    let mut sent = 0usize;
    let stalled = loop {
        match (&s).write(&chunk) {
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break true
            }
            Err(e) => panic!("{e}"),
        }
        if sent > 256 * 1024 * 1024 {
            break false;
        }
    };
    assert!(stalled, "{mode}: 256 MiB went in without being read back");
    s.set_write_timeout(Some(STEP)).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let back = read_all(&s);
    assert_eq!(back.len(), sent, "{mode}");
    assert!(back.iter().all(|&b| b == b'z'), "{mode}");
    stop.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn datagram_handler_answers_udp_and_unix_datagrams() {
    let dir = std::env::temp_dir().join(format!("nk-srv-dgram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unix: Address = format!("unix-dgram://{}", dir.join("d.sock").display())
        .parse()
        .unwrap();
    let server = Server::builder()
        .listen("udp://127.0.0.1:0".parse().unwrap())
        .listen(unix)
        .datagram_handler(|req: &mut DatagramRequest<'_>| {
            req.reply(&req.data().to_ascii_uppercase())
        })
        .build()
        .unwrap();
    let addrs = server.local_addresses();
    let (_, stop, t) = start(server);
    for a in &addrs {
        let sock = Datagram::connect_to(a).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        let reply = (0..5).find_map(|_| {
            sock.send(b"hi there").unwrap();
            sock.recv(&mut buf).ok().map(|r| buf[..r.len].to_vec())
        });
        assert_eq!(reply.as_deref(), Some(&b"HI THERE"[..]), "{a}");
    }
    stop.shutdown();
    t.join().unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pool_with_one_worker_queues_connections_and_serves_them_all() {
    let server = Server::builder()
        .listen(local())
        .mode(Mode::Pool)
        .workers(1)
        .handler(upper)
        .build()
        .unwrap();
    let (addr, stop, t) = start(server);
    let clients: Vec<Stream> = (0..5).map(|_| dial(&addr)).collect();
    for (i, s) in clients.iter().enumerate() {
        s.send_all(format!("client {i}\n").as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    }
    for (i, s) in clients.iter().enumerate() {
        assert_eq!(read_all(s), format!("CLIENT {i}\n").as_bytes());
    }
    stop.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn fork_mode_serves_a_process_per_connection() {
    let server = Server::builder()
        .listen(local())
        .mode(Mode::Fork)
        .handler(|c: &mut Conn| {
            let pid = std::process::id();
            c.write_all(format!("{pid}\n").as_bytes())
        })
        .build()
        .unwrap();
    let (addr, stop, t) = start(server);
    let a = String::from_utf8(read_all(&dial(&addr))).unwrap();
    let b = String::from_utf8(read_all(&dial(&addr))).unwrap();
    let me = format!("{}\n", std::process::id());
    assert!(a != me && b != me && a != b, "{a} {b} {me}");
    stop.shutdown();
    t.join().unwrap().unwrap();
}

struct SharedRoom;

impl Factory for SharedRoom {
    type Proto = netkit::services::Echo;
    fn build(&self, _: &ConnInfo) -> netkit::services::Echo {
        netkit::services::Echo
    }
    fn shares_state(&self) -> bool {
        true
    }
}

#[test]
fn configuration_errors_are_typed() {
    let e = Server::builder()
        .mode(Mode::Fork)
        .listen(local())
        .protocol(SharedRoom)
        .build()
        .unwrap_err();
    assert!(matches!(e, ServerError::SharedStateInFork), "{e}");
    assert!(e.to_string().contains("shares state"));
    let e = Server::builder().handler(upper).build().unwrap_err();
    assert!(matches!(e, ServerError::NoListeners), "{e}");
    let e = Server::builder().listen(local()).build().unwrap_err();
    assert!(matches!(e, ServerError::NoStreamHandler { .. }), "{e}");
    let e = Server::builder()
        .listen("udp://127.0.0.1:0".parse().unwrap())
        .handler(upper)
        .build()
        .unwrap_err();
    assert!(matches!(e, ServerError::NoDatagramHandler { .. }), "{e}");
    let taken = Server::builder()
        .listen(local())
        .handler(upper)
        .build()
        .unwrap();
    let addr = taken.local_addresses()[0].clone();
    let e = Server::builder()
        .listen(addr)
        .handler(upper)
        .build()
        .unwrap_err();
    assert!(matches!(e, ServerError::Bind { .. }), "{e}");
}

#[test]
fn conn_mixes_read_line_and_read_exact() {
    let server = Server::builder()
        .listen(local())
        .handler(|c: &mut Conn| {
            let mut line = Vec::new();
            c.read_line(&mut line)?;
            let n: usize = std::str::from_utf8(&line).unwrap().trim().parse().unwrap();
            let mut body = vec![0u8; n];
            c.read_exact(&mut body)?;
            c.write_all(&body)?;
            c.write_all(format!(" from {}", c.peer_addr()).as_bytes())
        })
        .build()
        .unwrap();
    let (addr, stop, t) = start(server);
    let s = dial(&addr);
    let local = s.local_addr().unwrap();
    s.send_all(b"5\nhelloEXTRA").unwrap();
    assert_eq!(read_all(&s), format!("hello from {local}").as_bytes());
    stop.shutdown();
    t.join().unwrap().unwrap();
}

/// Hands its mailbox to the test, pauses reading on "pause" until a timer.
struct Postbox {
    boxes: mpsc::Sender<netkit::protocol::Mailbox>,
    events: mpsc::Sender<String>,
}

impl Protocol for Postbox {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        let _ = self.boxes.send(t.mailbox());
    }
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        if data == b"pause" {
            t.pause_reading();
            t.call_later(Duration::from_millis(300));
            t.write(b"paused;");
        } else {
            t.write(data);
        }
    }
    fn timer_fired(&mut self, _: TimerId, t: &mut dyn Transport) {
        t.write(b"resumed;");
        t.resume_reading();
    }
    fn connection_lost(&mut self, reason: &CloseReason) {
        let _ = self.events.send(format!("{reason}"));
    }
}

fn postbox_server(
    mode: Mode,
) -> (
    Running,
    mpsc::Receiver<netkit::protocol::Mailbox>,
    mpsc::Receiver<String>,
) {
    let (btx, brx) = mpsc::channel();
    let (etx, erx) = mpsc::channel();
    let (btx, etx) = (Mutex::new(btx), Mutex::new(etx));
    let server = Server::builder()
        .mode(mode)
        .workers(1)
        .listen(local())
        .grace(Duration::from_millis(100))
        .protocol(move |_: &ConnInfo| Postbox {
            boxes: btx.lock().unwrap().clone(),
            events: etx.lock().unwrap().clone(),
        })
        .build()
        .unwrap();
    (start(server), brx, erx)
}

#[test]
fn mailbox_messages_reach_the_peer_and_pause_holds_data_until_resume() {
    for mode in [Mode::Threads, Mode::Pool, Mode::Sequential] {
        mailbox_and_pause(mode);
    }
}

fn mailbox_and_pause(mode: Mode) {
    let ((addr, stop, t), boxes, events) = postbox_server(mode);
    let s = dial(&addr);
    let mb = boxes.recv_timeout(STEP).unwrap();
    mb.post(bytes::Bytes::from_static(b"message;")).unwrap();
    let mut got = [0u8; 8];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"message;");
    s.send_all(b"pause").unwrap();
    let mut got = [0u8; 7];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"paused;");
    s.send_all(b"held").unwrap();
    // "held" is delivered only after the timer resumes reading.
    let mut got = [0u8; 12];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"resumed;held");
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&s), b"");
    assert_eq!(events.recv_timeout(STEP).unwrap(), "connection closed");
    assert!(mb.is_closed());
    stop.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn a_full_mailbox_closes_that_connection_only() {
    for mode in [Mode::Threads, Mode::Pool, Mode::Sequential] {
        full_mailbox(mode);
    }
}

fn full_mailbox(mode: Mode) {
    let ((addr, stop, t), boxes, events) = postbox_server(mode);
    let slow = dial(&addr);
    let slow_box = boxes.recv_timeout(STEP).unwrap();
    let other = dial(&addr);
    let other_box = boxes.recv_timeout(STEP).unwrap();
    // The slow peer never reads; post until its mailbox gives up on it.
    let chunk = bytes::Bytes::from(vec![b'm'; 64 * 1024]);
    let mut refused = false;
    for _ in 0..100_000 {
        if slow_box.post(chunk.clone()).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the mailbox never filled");
    let reason = events.recv_timeout(STEP).unwrap();
    assert!(reason.contains("mailbox full"), "{reason}");
    // The other connection is unaffected.
    other_box
        .post(bytes::Bytes::from_static(b"still here"))
        .unwrap();
    let mut got = [0u8; 10];
    other.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here");
    drop(slow);
    stop.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn prebound_listener_and_reuse_port() {
    // A listener bound elsewhere (socket activation, say) is served as is.
    let l = netkit::net::Listener::bind(&local(), &netkit::net::ListenOptions::default()).unwrap();
    let addr = l.local_address();
    let server = Server::builder()
        .listener(l)
        .handler(upper)
        .build()
        .unwrap();
    assert_eq!(server.local_addresses().len(), 1);
    assert_eq!(server.local_addresses()[0], addr);
    let (_, stop, t) = start(server);
    let s = dial(&addr);
    s.send_all(b"prebound\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&s), b"PREBOUND\n");
    stop.shutdown();
    t.join().unwrap().unwrap();

    // Two servers share one port with SO_REUSEPORT.
    let first = Server::builder()
        .listen(local())
        .reuse_port(true)
        .handler(upper)
        .build()
        .unwrap();
    let shared = first.local_addresses()[0].clone();
    let second = Server::builder()
        .listen(shared.clone())
        .reuse_port(true)
        .handler(upper)
        .build()
        .unwrap();
    let (_, stop1, t1) = start(first);
    let (_, stop2, t2) = start(second);
    for _ in 0..4 {
        let s = dial(&shared);
        s.send_all(b"shared\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_all(&s), b"SHARED\n");
    }
    stop1.shutdown();
    stop2.shutdown();
    t1.join().unwrap().unwrap();
    t2.join().unwrap().unwrap();
}

/// Sends a reply far larger than the socket buffers when asked (`go`); reports
/// why its connection ended.
struct BigReply(mpsc::Sender<CloseReason>);
/// The size of `BigReply`'s reply.
const BIG_REPLY: usize = 32 * 1024 * 1024;
impl Protocol for BigReply {
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        if data.starts_with(b"go") {
            t.write(&vec![b'r'; BIG_REPLY]);
        }
    }
    fn connection_lost(&mut self, reason: &CloseReason) {
        let _ = self.0.send(reason.clone());
    }
}

#[test]
fn idle_timeout_sends_queued_output_before_closing() {
    for mode in [Mode::Threads, Mode::Pool, Mode::Sequential] {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let idle = Duration::from_secs(1);
        let server = Server::builder()
            .mode(mode)
            .listen(local())
            .idle_timeout(Some(idle))
            .protocol(move |_: &ConnInfo| BigReply(tx.lock().unwrap().clone()))
            .build()
            .unwrap();
        let (addr, stop, t) = start(server);
        let s = dial(&addr);
        s.send_all(b"go").unwrap();
        // Silent and not reading until the idle timeout has fired, then reading
        // within the next idle period: the queued reply arrives in full.
        thread::sleep(idle + idle / 2);
        let got = read_all(&s);
        assert_eq!(got.len(), BIG_REPLY, "{mode}: the reply was cut short");
        assert!(got.iter().all(|&b| b == b'r'), "{mode}");
        let reason = rx.recv_timeout(STEP).unwrap();
        assert_eq!(reason, CloseReason::IdleTimeout, "{mode}");
        stop.shutdown();
        t.join().unwrap().unwrap();
    }
}
