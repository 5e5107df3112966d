//! Relaying: sessions that join two byte streams, stdin/stdout with a socket
//! (`netkit connect`, `netkit listen`) or two sockets (`netkit relay`), as netcat and
//! socat do.
//!
//! [`eof::Pipe`] decides what end-of-file and errors mean; [`run`] does the I/O
//! with one thread per direction and a fixed 64 KiB buffer each, so a slow writer
//! blocks its reader (backpressure) and memory per session stays bounded. The
//! session's own thread applies the pipe's actions and its `wait:` deadline.
//! [`reactor`] drives the same `Pipe` for stream-to-stream relays on the event
//! loops instead; [`dgram`] relays from a datagram address, one session per client.
//! [`tls`] turns a TLS session into a plain stream for these sessions, [`exec`]
//! hands a connection to a program (inetd style), and [`dump::Dumper`] shows the
//! traffic.
//!
//! This module sits beside `http`, above `reactor` and `server`. Command-line
//! options, the building of TLS configurations, and the terminal are the caller's:
//! what a relay has to say about a session that failed goes to a [`Log`].

pub mod dgram;
pub mod dump;
pub mod eof;
pub mod exec;
pub mod reactor;
pub mod tls;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{Datagram, Stream, UDP_MAX};

use self::dump::Dumper;
use self::eof::{Action, Pipe, Side};
use self::tls::Bridge;

/// Bytes each direction reads at a time; also the most a direction holds.
const CHUNK: usize = 64 * 1024;

/// How often a stdin reader checks whether its session has closed.
const STDIN_TICK: Duration = Duration::from_millis(50);

/// Where a relay reports what went wrong with one session (or one datagram): one
/// line of text, without a newline, e.g. `netkit: connection 3 from 127.0.0.1:5000:
/// cannot connect to ...`.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// How a session's driver shuts an endpoint down.
pub trait Control: Send + Sync {
    /// Stops writing: TCP FIN, or a flush for stdout.
    fn shutdown_write(&self);
    /// Ends everything; blocked reads and writes on this endpoint return.
    fn close(&self);
    /// Called once the session is over: waits for whatever still carries this
    /// endpoint's data (a TLS bridge flushing), within a bound.
    fn finish(&self) {}
}

/// One side of a session: where to read, where to write, how to shut down.
pub struct Endpoint {
    /// Data from this side.
    pub reader: Box<dyn Read + Send>,
    /// Data to this side.
    pub writer: Box<dyn Write + Send>,
    /// Shutting this side down.
    pub control: Arc<dyn Control>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").finish_non_exhaustive()
    }
}

/// How long a finished session waits for a TLS bridge to deliver the rest.
const BRIDGE_LINGER: Duration = Duration::from_secs(10);

struct StreamControl(Stream, Mutex<Option<Bridge>>);

impl Control for StreamControl {
    fn shutdown_write(&self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
    fn close(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
    fn finish(&self) {
        let bridge = self.1.lock().ok().and_then(|mut b| b.take());
        if let Some(b) = bridge {
            b.wait(BRIDGE_LINGER);
        }
    }
}

impl Endpoint {
    /// A connected TCP or Unix stream.
    pub fn stream(s: Stream) -> io::Result<Endpoint> {
        Endpoint::bridged(s, None)
    }

    /// A stream that is the plaintext end of a TLS bridge (or plain, with `None`);
    /// the session waits for the bridge when it ends.
    pub fn bridged(s: Stream, bridge: Option<Bridge>) -> io::Result<Endpoint> {
        Ok(Endpoint {
            reader: Box::new(s.try_clone()?),
            writer: Box::new(s.try_clone()?),
            control: Arc::new(StreamControl(s, Mutex::new(bridge))),
        })
    }

    /// A connected datagram socket (UDP, Unix datagram): each chunk written is
    /// one datagram, each datagram received one chunk. It never reaches EOF.
    pub fn datagram(d: Datagram) -> io::Result<Endpoint> {
        let closed = Arc::new(AtomicBool::new(false));
        d.set_read_timeout(Some(STDIN_TICK))?;
        let d = Arc::new(d);
        Ok(Endpoint {
            reader: Box::new(DatagramReader {
                sock: d.clone(),
                closed: closed.clone(),
            }),
            writer: Box::new(DatagramWriter(d)),
            control: Arc::new(FlagControl(closed)),
        })
    }

    /// This process's stdin and stdout. Stdin is read by one process-wide thread,
    /// so sessions one after another (`listen --keep-open`) share it.
    pub fn stdio() -> Endpoint {
        let closed = Arc::new(AtomicBool::new(false));
        Endpoint {
            reader: Box::new(StdinReader {
                closed: closed.clone(),
                pending: Vec::new(),
                at: 0,
            }),
            writer: Box::new(io::stdout()),
            control: Arc::new(StdioControl(closed)),
        }
    }
}

/// Closing sets a flag that the endpoint's reader polls.
struct FlagControl(Arc<AtomicBool>);

impl Control for FlagControl {
    fn shutdown_write(&self) {}
    fn close(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct DatagramReader {
    sock: Arc<Datagram>,
    closed: Arc<AtomicBool>,
}

impl Read for DatagramReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Ok(0);
            }
            match self.sock.recv(buf) {
                // An empty datagram is not an end of file.
                Ok(r) if r.len == 0 => {}
                Ok(r) => return Ok(r.len),
                Err(e) if is_idle_recv(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether a datagram receive error only means "nothing yet": a read timeout, an
/// interruption, or an earlier datagram refused (ICMP port unreachable).
fn is_idle_recv(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
    )
}

struct DatagramWriter(Arc<Datagram>);

impl Write for DatagramWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let chunk = &buf[..buf.len().min(UDP_MAX)];
        self.0.send(chunk)?;
        Ok(chunk.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct StdioControl(Arc<AtomicBool>);

impl Control for StdioControl {
    fn shutdown_write(&self) {
        let _ = io::stdout().flush();
    }
    fn close(&self) {
        self.0.store(true, Ordering::SeqCst);
        let _ = io::stdout().flush();
    }
}

/// The process-wide stdin pump: chunks of stdin, at most two in flight.
fn stdin_chunks() -> &'static Mutex<Receiver<Vec<u8>>> {
    static RX: OnceLock<Mutex<Receiver<Vec<u8>>>> = OnceLock::new();
    RX.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(2);
        thread::spawn(move || pump_stdin(&tx));
        Mutex::new(rx)
    })
}

fn pump_stdin(tx: &SyncSender<Vec<u8>>) {
    let mut stdin = io::stdin().lock();
    loop {
        let mut buf = vec![0u8; CHUNK];
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.send(buf).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Stdin read by a session that closed before it could forward it; the next
/// session (`listen --keep-open`) gets it first.
static STDIN_LEFTOVER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Reads the stdin pump until stdin ends or the session closes.
struct StdinReader {
    closed: Arc<AtomicBool>,
    pending: Vec<u8>,
    at: usize,
}

impl StdinReader {
    /// Hands what this reader holds to the next session.
    fn stash(&mut self, chunk: Vec<u8>) {
        let rest = self.pending.get(self.at..).unwrap_or(&[]);
        if let Ok(mut left) = STDIN_LEFTOVER.lock() {
            left.extend_from_slice(rest);
            left.extend_from_slice(&chunk);
        }
        self.pending.clear();
        self.at = 0;
    }
}

impl Read for StdinReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                self.stash(Vec::new());
                return Ok(0);
            }
            if let Some(rest) = self.pending.get(self.at..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.at += n;
                return Ok(n);
            }
            let left = STDIN_LEFTOVER
                .lock()
                .map(|mut l| std::mem::take(&mut *l))
                .unwrap_or_default();
            if !left.is_empty() {
                self.pending = left;
                self.at = 0;
                continue;
            }
            let rx = stdin_chunks()
                .lock()
                .map_err(|_| io::Error::other("stdin reader failed"))?;
            match rx.recv_timeout(STDIN_TICK) {
                Ok(chunk) if self.closed.load(Ordering::SeqCst) => {
                    self.stash(chunk);
                    return Ok(0);
                }
                Ok(chunk) => {
                    self.pending = chunk;
                    self.at = 0;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
    }
}

/// What a direction's thread reports.
enum Event {
    Eof(Side),
    Failed(Side, io::Error),
}

/// The labels of the two directions in dumps: data from A, data from B.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    /// Data read from A and written to B.
    pub a_to_b: &'static str,
    /// Data read from B and written to A.
    pub b_to_a: &'static str,
}

/// `connect`/`listen`: `>` is sent to the peer, `<` received from it.
pub const STDIO_LABELS: Labels = Labels {
    a_to_b: ">",
    b_to_a: "<",
};

/// The dump settings of one session.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Where chunks go.
    pub dumper: Arc<Dumper>,
    /// The connection id shown.
    pub conn: u64,
    /// Direction labels.
    pub labels: Labels,
}

/// Runs a session between `a` and `b` until `pipe` says it is over. Returns the
/// first error other than a reset or broken pipe (those end a session normally).
pub fn run(a: Endpoint, b: Endpoint, mut pipe: Pipe, trace: Option<Trace>) -> io::Result<()> {
    let (tx, rx) = mpsc::channel::<Event>();
    let (a_ctl, b_ctl) = (a.control.clone(), b.control.clone());
    let control = |side: Side| match side {
        Side::A => &a_ctl,
        Side::B => &b_ctl,
    };
    let (a_reader, a_writer, b_reader, b_writer) = (a.reader, a.writer, b.reader, b.writer);
    let mut threads = Vec::new();
    if pipe.reads(Side::A) {
        let (tx, trace, fwd) = (tx.clone(), trace.clone(), pipe.forwards(Side::A));
        let label = trace.as_ref().map(|t| t.labels.a_to_b).unwrap_or(">");
        threads.push(thread::spawn(move || {
            copy(Side::A, a_reader, b_writer, fwd, trace, label, &tx);
        }));
    }
    if pipe.reads(Side::B) {
        let (tx, trace, fwd) = (tx.clone(), trace.clone(), pipe.forwards(Side::B));
        let label = trace.as_ref().map(|t| t.labels.b_to_a).unwrap_or("<");
        threads.push(thread::spawn(move || {
            copy(Side::B, b_reader, a_writer, fwd, trace, label, &tx);
        }));
    }
    drop(tx);
    let mut first_error = None;
    while !pipe.is_closed() {
        let event = match pipe.deadline() {
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(e) => Some(e),
                Err(_) => break,
            },
        };
        let actions = match event {
            Some(Event::Eof(side)) => pipe.eof(side, Instant::now()),
            Some(Event::Failed(side, e)) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) && first_error.is_none()
                {
                    first_error = Some(e);
                }
                pipe.failed(side)
            }
            None => pipe.tick(Instant::now()),
        };
        for action in actions {
            match action {
                Action::ShutdownWrite(side) => control(side).shutdown_write(),
                Action::Close => {
                    a_ctl.close();
                    b_ctl.close();
                }
            }
        }
    }
    a_ctl.close();
    b_ctl.close();
    a_ctl.finish();
    b_ctl.finish();
    if let Some(t) = &trace {
        t.dumper.note(t.conn, "closed");
    }
    // Threads blocked on stdin or stdout are left to finish on their own; the
    // others return as soon as their sockets are shut down.
    drop(threads);
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Copies one direction until EOF or an error, then reports it.
fn copy(
    from: Side,
    mut reader: Box<dyn Read + Send>,
    mut writer: Box<dyn Write + Send>,
    forward: bool,
    trace: Option<Trace>,
    label: &str,
    tx: &mpsc::Sender<Event>,
) {
    let mut buf = vec![0u8; CHUNK];
    let event = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Event::Eof(from),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Event::Failed(from, e),
        };
        let data = &buf[..n];
        if let Some(t) = &trace {
            t.dumper.chunk(t.conn, label, data);
        }
        if !forward {
            continue;
        }
        if let Err(e) = writer.write_all(data).and_then(|()| writer.flush()) {
            break Event::Failed(from, e);
        }
    };
    drop(writer);
    let _ = tx.send(event);
}
