//! `netkit relay` sessions on the reactor: a stream LISTEN (TCP, Unix) to a stream TARGET
//! (TCP, Unix), every session on a few event loops instead of threads of its own.
//!
//! Each accepted connection (side A) gets an `End` Protocol; its
//! `connection_made` connects another `End` to TARGET (side B) with
//! [`Handle::connect`]. The two ends may live on different loops, so they talk only
//! through their connections' mailboxes, one tagged message at a time (data,
//! end-of-file, credit, close), and share one small `Session` behind a mutex: the
//! EOF state machine ([`Pipe`], unchanged from the thread path) and the credit
//! counters.
//!
//! - **Backpressure.** Per direction, the bytes posted by the source and not yet
//!   handed to the kernel by the sink are counted; above [`HIGH_WATER`] the source
//!   pauses reading, and the sink (a producer, so the loop tells it when its write
//!   queue drains) gives the credit back and resumes the source below
//!   [`LOW_WATER`]. A session holds at most about `2 × (HIGH_WATER + 64 KiB)`.
//!   Until B is connected, A is not read at all.
//! - **End-of-file.** A source's EOF travels behind its data; the sink reports it
//!   to the [`Pipe`] once its write queue is empty (as the thread path reports it
//!   once the last byte is written), then applies the actions: the half-close on
//!   itself, or the end of the session on both ends. `wait:` deadlines are
//!   `call_later` timers. When the session ends, an end whose queue is empty
//!   closes (FIN), one still holding data of a direction that had not ended
//!   aborts, as the thread path drops what it had not written.
//! - A failed connect reaches A when B's Protocol is dropped without ever being
//!   made (the reactor's contract for failed client connections); A then tries
//!   TARGET's next address within `--timeout`, or logs and closes.
//!
//! TLS on either side is `netkit::protocol::tls` around an `End`: a TLS
//! LISTEN wraps each accepted end in a server session, a `tls://` TARGET wraps B
//! in a client session (certificate checked as `--cacert`/`--insecure` say, SNI
//! from TARGET's host). B is made only once its handshake is done, so a refused
//! certificate is a failed connect, reported with the TLS error.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use super::dump::Dumper;
use super::eof::{Action, Pipe, Side};
use super::{Log, STDIO_LABELS};
use crate::net::Address;
use crate::protocol::tls::{TlsFactory, TlsProtocol};
use crate::protocol::{
    CloseReason, ConnInfo, Factory, Mailbox, PeerAddr, Protocol, TimerId, Transport,
};
use crate::reactor::{ConnectHandle, ConnectTo, Handle, Reactor};

/// Bytes of one direction in flight (posted by the source, not yet in the sink's
/// kernel buffer) above which the source stops reading.
pub const HIGH_WATER: usize = 128 * 1024;

/// In-flight bytes at or below which a paused source reads again.
pub const LOW_WATER: usize = 64 * 1024;

/// What a relay on the reactor needs, besides where it listens.
pub struct Options {
    /// Where to connect: a TCP or Unix stream address (for messages).
    pub target: Address,
    /// TARGET's addresses, tried in order ([`resolve`]).
    pub targets: Vec<ConnectTo>,
    /// How long connecting to TARGET may take, all its addresses together.
    pub timeout: Duration,
    /// Sessions at once; connections beyond are closed at once.
    pub max_conns: usize,
    /// The EOF state machine each session starts from.
    pub pipe: Pipe,
    /// Traffic dumps.
    pub dumper: Option<Arc<Dumper>>,
    /// TLS to TARGET: the configuration and the name to verify (and send as SNI).
    pub tls_client: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// Where failed sessions and turned-away connections are reported.
    pub log: Log,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .field("max_conns", &self.max_conns)
            .finish_non_exhaustive()
    }
}

/// Listens on `listen` with `reactor` (inside TLS with `tls_server`), relaying each
/// connection to the target `opts` names. Returns the address with its real port;
/// the sessions run when the reactor runs.
///
/// # Errors
///
/// The listener could not be made (as [`Reactor::listen`]).
pub fn listen(
    reactor: &mut Reactor,
    listen: &Address,
    tls_server: Option<Arc<ServerConfig>>,
    opts: Options,
) -> io::Result<Address> {
    let relay = Arc::new(Relay {
        handle: reactor.handle(),
        targets: opts.targets,
        target: opts.target,
        timeout: opts.timeout,
        max_conns: opts.max_conns,
        pipe: opts.pipe,
        dumper: opts.dumper,
        tls_client: opts.tls_client,
        log: opts.log,
        next_conn: AtomicU64::new(0),
        active: AtomicUsize::new(0),
    });
    let inbound = move |info: &ConnInfo| relay.inbound(info);
    match tls_server {
        Some(config) => {
            let f = TlsFactory::new(config, inbound);
            reactor.listen(listen, move |info: &ConnInfo| f.build(info))
        }
        None => reactor.listen(listen, inbound),
    }
}

/// TARGET's addresses, resolved once at start (the loops must not block on DNS).
///
/// # Errors
///
/// A name that does not resolve (or to nothing), or a datagram address.
pub fn resolve(target: &Address) -> io::Result<Vec<ConnectTo>> {
    match target {
        Address::Tcp(hp) => {
            let addrs = hp
                .resolve()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {target}: {e}")))?;
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("cannot resolve {target}: no addresses"),
                ));
            }
            Ok(addrs.into_iter().map(ConnectTo::Tcp).collect())
        }
        Address::Unix(p) => Ok(vec![ConnectTo::Unix(p.clone())]),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{target} is not a stream address"),
        )),
    }
}

/// What every session of one relay shares.
struct Relay {
    handle: Handle,
    targets: Vec<ConnectTo>,
    target: Address,
    timeout: Duration,
    max_conns: usize,
    pipe: Pipe,
    dumper: Option<Arc<Dumper>>,
    tls_client: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    log: Log,
    /// The last connection id given out.
    next_conn: AtomicU64,
    /// Sessions open.
    active: AtomicUsize,
}

impl Relay {
    /// The Protocol for a connection accepted on LISTEN (inside the TLS session,
    /// if LISTEN has one).
    fn inbound(self: &Arc<Self>, info: &ConnInfo) -> End {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let session = Arc::new(Mutex::new(Session::new(self.pipe.clone())));
        End::new(Side::A, self.clone(), conn, info.peer.clone(), session)
    }

    /// The Protocol for the connection to TARGET, in a TLS client session for a
    /// `tls://` TARGET; `a_mailbox` is side A's. A TLS session that cannot start
    /// is an error (B is dropped unmade, so A hears of a failed connect).
    fn outbound(
        self: &Arc<Self>,
        a: &End,
        a_mailbox: Mailbox,
    ) -> Result<Box<dyn Protocol>, String> {
        let mut b = End::new(
            Side::B,
            self.clone(),
            a.conn,
            a.peer.clone(),
            a.session.clone(),
        );
        b.other = Some(a_mailbox);
        match &self.tls_client {
            None => Ok(Box::new(b)),
            Some((config, name)) => TlsProtocol::client(config.clone(), name.clone(), b)
                .map(|p| Box::new(p) as Box<dyn Protocol>)
                .map_err(|e| format!("cannot start TLS: {e}")),
        }
    }
}

/// The kinds of message between the two ends, as the first byte of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    /// The rest of the message is data for the peer.
    Data = 0,
    /// B is connected (to A).
    Connected = 1,
    /// B's connect failed (to A).
    ConnectFailed = 2,
    /// The source reached end-of-file; everything it sent came before.
    Eof = 3,
    /// The source may read again.
    Resume = 4,
    /// The session is over.
    Close = 5,
    /// Half-close this end's peer.
    ShutdownWrite = 6,
    /// The other end is gone: watch the `wait:` deadline here.
    Tick = 7,
}

impl Tag {
    fn of(b: u8) -> Option<Tag> {
        [
            Tag::Data,
            Tag::Connected,
            Tag::ConnectFailed,
            Tag::Eof,
            Tag::Resume,
            Tag::Close,
            Tag::ShutdownWrite,
            Tag::Tick,
        ]
        .into_iter()
        .find(|t| *t as u8 == b)
    }

    /// A control message: the tag alone.
    fn msg(self) -> Bytes {
        static ALL: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
        Bytes::from_static(ALL.get(self as usize..=self as usize).unwrap_or(&[]))
    }
}

fn data_msg(data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(Tag::Data as u8);
    v.extend_from_slice(data);
    Bytes::from(v)
}

/// One direction's credit: bytes in flight and whether its source is paused.
#[derive(Debug, Default)]
struct Flow {
    in_flight: usize,
    paused: bool,
}

/// Where side B is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outbound {
    /// Not asked for yet (A is being turned away, or is about to connect).
    None,
    /// A connect is under way.
    Connecting,
    /// Connected.
    Up,
    /// The connect failed, or the connection is gone.
    Gone,
}

/// What the two ends of a session share.
struct Session {
    pipe: Pipe,
    /// Credit per direction, indexed by the source side.
    flow: [Flow; 2],
    /// The ends' mailboxes.
    mailbox: [Option<Mailbox>; 2],
    /// Whether each end's connection is gone.
    lost: [bool; 2],
    outbound: Outbound,
    connect: Option<ConnectHandle>,
    /// Why B's connection failed after the socket connected (its TLS handshake).
    connect_error: Option<String>,
    /// B was connected at some point (the session has a `closed` dump note).
    was_up: bool,
    /// Counted out of the relay's sessions.
    finished: bool,
    /// An error was logged already.
    logged: bool,
}

impl Session {
    fn new(pipe: Pipe) -> Session {
        Session {
            pipe,
            flow: [Flow::default(), Flow::default()],
            mailbox: [None, None],
            lost: [false; 2],
            outbound: Outbound::None,
            connect: None,
            connect_error: None,
            was_up: false,
            finished: false,
            logged: false,
        }
    }
}

fn idx(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

fn lock(s: &Mutex<Session>) -> MutexGuard<'_, Session> {
    // A panic while holding the lock leaves counters behind: usable.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a close reason is an error worth logging (not a reset or broken pipe,
/// which end sessions normally).
fn worth_logging(reason: &CloseReason) -> Option<&str> {
    let CloseReason::Error(msg) = reason else {
        return None;
    };
    let quiet = [libc::ECONNRESET, libc::EPIPE]
        .into_iter()
        .any(|e| *msg == io::Error::from_raw_os_error(e).to_string());
    (!quiet).then_some(msg.as_str())
}

/// One end of a session: side A (the accepted client) or side B (the target).
struct End {
    side: Side,
    relay: Arc<Relay>,
    conn: u64,
    /// The client's address (for log lines, on both ends).
    peer: PeerAddr,
    session: Arc<Mutex<Session>>,
    /// The other end's mailbox, once known.
    other: Option<Mailbox>,
    /// Whether data read here goes on (false: `--send-only`'s B, drained).
    forward: bool,
    /// `connection_made` ran.
    made: bool,
    /// Turned away at `--max-conns`: no session.
    rejected: bool,
    /// This end closed or aborted its connection.
    closed: bool,
    /// Bytes of the other direction written to this end's transport.
    written: u64,
    /// Of those, the ones whose credit went back.
    acked: u64,
    /// The other end's EOF arrived; reported once the write queue is empty.
    eof_pending: bool,
    eof_reported: bool,
    /// The `wait:` deadline a timer is set for.
    timer_for: Option<Instant>,
    /// A: which of TARGET's addresses is being tried, and until when.
    attempt: usize,
    connect_deadline: Option<Instant>,
}

impl End {
    fn new(
        side: Side,
        relay: Arc<Relay>,
        conn: u64,
        peer: PeerAddr,
        session: Arc<Mutex<Session>>,
    ) -> End {
        let forward = relay.pipe.forwards(side);
        End {
            side,
            relay,
            conn,
            peer,
            session,
            other: None,
            forward,
            made: false,
            rejected: false,
            closed: false,
            written: 0,
            acked: 0,
            eof_pending: false,
            eof_reported: false,
            timer_for: None,
            attempt: 0,
            connect_deadline: None,
        }
    }

    fn post(&self, msg: Bytes) {
        if let Some(m) = &self.other {
            // Closed: the other end is gone and its own connection_lost ends
            // the session. Full cannot happen: credit keeps a direction far
            // below the mailbox bound.
            let _ = m.post(msg);
        }
    }

    fn note(&self, what: &str) {
        if let Some(d) = &self.relay.dumper {
            d.note(self.conn, what);
        }
    }

    /// Closes this end for good: with a FIN once the queue is flushed, or at
    /// once, dropping what a direction that had not ended still held.
    fn close_now(&mut self, t: &mut dyn Transport) {
        if self.closed {
            return;
        }
        self.closed = true;
        if t.buffered() == 0 {
            t.close();
        } else {
            t.abort();
        }
    }

    /// Carries out the pipe's actions from this end.
    fn apply(&mut self, st: &mut Session, actions: Vec<Action>, t: &mut dyn Transport) {
        for a in actions {
            match a {
                Action::ShutdownWrite(s) if s == self.side => t.shutdown_write(),
                Action::ShutdownWrite(_) => self.post(Tag::ShutdownWrite.msg()),
                Action::Close => {
                    self.close_now(t);
                    self.post(Tag::Close.msg());
                }
            }
        }
        self.arm(st, t);
    }

    /// Sets a timer for the pipe's `wait:` deadline, once per deadline.
    fn arm(&mut self, st: &Session, t: &mut dyn Transport) {
        let Some(at) = st.pipe.deadline() else {
            return;
        };
        if self.closed || self.timer_for == Some(at) {
            return;
        }
        self.timer_for = Some(at);
        t.call_later(at.saturating_duration_since(Instant::now()));
    }

    /// Gives back the credit of bytes the kernel has taken since last time.
    fn ack(&mut self, t: &mut dyn Transport) {
        if self.closed {
            return;
        }
        let queued = u64::try_from(t.buffered()).unwrap_or(u64::MAX);
        let taken = self.written.saturating_sub(queued);
        let delta = taken.saturating_sub(self.acked);
        if delta == 0 {
            return;
        }
        self.acked = taken;
        let mut st = lock(&self.session);
        let flow = &mut st.flow[idx(self.side.other())];
        flow.in_flight = flow
            .in_flight
            .saturating_sub(usize::try_from(delta).unwrap_or(usize::MAX));
        if flow.paused && flow.in_flight <= LOW_WATER {
            flow.paused = false;
            drop(st);
            self.post(Tag::Resume.msg());
        }
    }

    /// Reports the other end's EOF to the pipe once everything before it is
    /// out of this end's queue.
    fn check_eof(&mut self, t: &mut dyn Transport) {
        if !self.eof_pending || self.eof_reported || self.closed || t.buffered() > 0 {
            return;
        }
        self.eof_reported = true;
        let session = self.session.clone();
        let mut st = lock(&session);
        let actions = st.pipe.eof(self.side.other(), Instant::now());
        self.apply(&mut st, actions, t);
    }

    /// A: starts connecting to TARGET's next address.
    fn connect(&mut self, t: &mut dyn Transport) {
        let relay = self.relay.clone();
        let (Some(to), Some(deadline)) = (relay.targets.get(self.attempt), self.connect_deadline)
        else {
            self.close_now(t);
            return;
        };
        let left = u32::try_from(relay.targets.len() - self.attempt).unwrap_or(1);
        let timeout = deadline.saturating_duration_since(Instant::now()) / left.max(1);
        let mailbox = t.mailbox();
        lock(&self.session).outbound = Outbound::Connecting;
        let b = match relay.outbound(self, mailbox) {
            Ok(b) => b,
            Err(e) => {
                // B was dropped unmade: its failed connect is on its way to A.
                lock(&self.session).connect_error = Some(e);
                return;
            }
        };
        // Not under the session lock: a connect that fails at once drops `b`,
        // whose Drop takes the lock.
        let h = relay.handle.connect(to.clone(), b, timeout);
        lock(&self.session).connect = Some(h);
    }

    /// A: B's connect failed.
    fn connect_failed(&mut self, t: &mut dyn Transport) {
        let (tls_error, result) = {
            let mut st = lock(&self.session);
            (
                st.connect_error.take(),
                st.connect.take().and_then(|h| h.result()),
            )
        };
        let err = match (tls_error, result) {
            (Some(e), _) => e,
            (None, Some(Err(e))) => e.to_string(),
            (None, Some(Ok(()))) => "the connection was lost".to_string(),
            (None, None) => "the connection attempt was abandoned".to_string(),
        };
        self.attempt += 1;
        let in_time = self.connect_deadline.is_some_and(|d| Instant::now() < d);
        if self.attempt < self.relay.targets.len() && in_time && !self.closed {
            self.connect(t);
            return;
        }
        (self.relay.log)(&format!(
            "netkit: connection {} from {}: cannot connect to {}: {err}",
            self.conn, self.peer, self.relay.target
        ));
        self.close_now(t);
    }

    /// Counts the session out once both ends are gone.
    fn maybe_finish(&self, st: &mut Session) {
        let b_gone = matches!(st.outbound, Outbound::None | Outbound::Gone);
        if st.finished || !st.lost[idx(Side::A)] || !b_gone {
            return;
        }
        st.finished = true;
        self.relay.active.fetch_sub(1, Ordering::SeqCst);
        if st.was_up {
            self.note("closed");
        }
    }
}

impl Protocol for End {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        self.made = true;
        match self.side {
            Side::A => {
                if self.relay.active.fetch_add(1, Ordering::SeqCst) >= self.relay.max_conns {
                    self.relay.active.fetch_sub(1, Ordering::SeqCst);
                    (self.relay.log)(&format!(
                        "netkit: connection {} from {}: over --max-conns, closed",
                        self.conn, self.peer
                    ));
                    self.rejected = true;
                    self.closed = true;
                    t.abort();
                    return;
                }
                self.note(&format!("accepted from {}", self.peer));
                lock(&self.session).mailbox[idx(Side::A)] = Some(t.mailbox());
                // Nothing is read from A until B is there to take it.
                t.pause_reading();
                self.connect_deadline = Some(Instant::now() + self.relay.timeout);
                self.connect(t);
            }
            Side::B => {
                let mailbox = t.mailbox();
                let mut st = lock(&self.session);
                if st.lost[idx(Side::A)] || st.pipe.is_closed() {
                    drop(st);
                    self.closed = true;
                    t.abort();
                    return;
                }
                st.mailbox[idx(Side::B)] = Some(mailbox);
                st.outbound = Outbound::Up;
                st.was_up = true;
                drop(st);
                self.post(Tag::Connected.msg());
            }
        }
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        if let Some(d) = &self.relay.dumper {
            let label = match self.side {
                Side::A => STDIO_LABELS.a_to_b,
                Side::B => STDIO_LABELS.b_to_a,
            };
            d.chunk(self.conn, label, data);
        }
        if !self.forward || self.other.is_none() {
            return;
        }
        {
            let mut st = lock(&self.session);
            let flow = &mut st.flow[idx(self.side)];
            flow.in_flight += data.len();
            if flow.in_flight >= HIGH_WATER && !flow.paused {
                flow.paused = true;
                t.pause_reading();
            }
        }
        self.post(data_msg(data));
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        if self.forward {
            // Behind the data, to the sink, which tells the pipe once it has
            // written everything.
            self.post(Tag::Eof.msg());
            return;
        }
        let session = self.session.clone();
        let mut st = lock(&session);
        let actions = st.pipe.eof(self.side, Instant::now());
        self.apply(&mut st, actions, t);
    }

    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        let Some(tag) = msg.first().copied().and_then(Tag::of) else {
            return;
        };
        match tag {
            Tag::Data => {
                if self.closed {
                    return;
                }
                let data = msg.get(1..).unwrap_or_default();
                t.write(data);
                self.written += data.len() as u64;
                self.ack(t);
            }
            Tag::Eof => {
                self.eof_pending = true;
                self.check_eof(t);
            }
            Tag::Resume => {
                if !self.closed {
                    t.resume_reading();
                }
            }
            Tag::Close => self.close_now(t),
            Tag::ShutdownWrite => t.shutdown_write(),
            Tag::Tick => {
                let session = self.session.clone();
                let st = lock(&session);
                self.arm(&st, t);
            }
            Tag::Connected => {
                let reads = {
                    let st = lock(&self.session);
                    self.other = st.mailbox[idx(Side::B)].clone();
                    st.pipe.reads(Side::A)
                };
                if self.closed {
                    return;
                }
                self.note(&format!("connected to {}", self.relay.target));
                if reads {
                    t.resume_reading();
                }
            }
            Tag::ConnectFailed => self.connect_failed(t),
        }
    }

    fn timer_fired(&mut self, _id: TimerId, t: &mut dyn Transport) {
        let session = self.session.clone();
        let mut st = lock(&session);
        let actions = st.pipe.tick(Instant::now());
        self.apply(&mut st, actions, t);
    }

    fn is_producer(&self) -> bool {
        true
    }

    /// The write queue is below the loop's low watermark: give credit back and
    /// see whether a pending EOF can be reported.
    fn resume_producing(&mut self, t: &mut dyn Transport) {
        self.ack(t);
        self.check_eof(t);
    }

    fn connection_lost(&mut self, reason: &CloseReason) {
        self.closed = true;
        if self.rejected {
            return;
        }
        if self.side == Side::B && !self.made {
            // B's TLS handshake failed: A reports it with the failed connect
            // (when B is dropped).
            if let CloseReason::Error(e) = reason {
                lock(&self.session).connect_error = Some(format!("TLS handshake failed: {e}"));
            }
            return;
        }
        let mut st = lock(&self.session);
        st.lost[idx(self.side)] = true;
        if self.side == Side::B {
            st.outbound = Outbound::Gone;
        }
        if let Some(msg) = worth_logging(reason) {
            if !st.logged {
                st.logged = true;
                (self.relay.log)(&format!(
                    "netkit: connection {} from {}: {msg}",
                    self.conn, self.peer
                ));
            }
        }
        if !st.pipe.is_closed() {
            if *reason == CloseReason::Done {
                // Both directions of this connection ended normally; the other
                // end carries on, and watches the `wait:` deadline if any.
                self.post(Tag::Tick.msg());
            } else if st.pipe.failed(self.side).contains(&Action::Close) {
                self.post(Tag::Close.msg());
            }
        }
        self.maybe_finish(&mut st);
    }
}

impl Drop for End {
    /// A B that was never made is a failed connect: A hears of it (or, if A is
    /// gone already, the session ends here).
    fn drop(&mut self) {
        if self.side != Side::B || self.made {
            return;
        }
        let mut st = lock(&self.session);
        st.outbound = Outbound::Gone;
        if st.lost[idx(Side::A)] {
            self.maybe_finish(&mut st);
        } else {
            drop(st);
            self.post(Tag::ConnectFailed.msg());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for b in 0..8u8 {
            let tag = Tag::of(b).unwrap();
            assert_eq!(tag as u8, b);
            assert_eq!(&tag.msg()[..], &[b]);
        }
        assert_eq!(Tag::of(8), None);
        let m = data_msg(b"xy");
        assert_eq!(Tag::of(m[0]), Some(Tag::Data));
        assert_eq!(&m[1..], b"xy");
    }

    #[test]
    fn resets_and_broken_pipes_are_not_logged() {
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET).to_string();
        let pipe = io::Error::from_raw_os_error(libc::EPIPE).to_string();
        assert_eq!(worth_logging(&CloseReason::Error(reset)), None);
        assert_eq!(worth_logging(&CloseReason::Error(pipe)), None);
        assert_eq!(worth_logging(&CloseReason::Done), None);
        let other = CloseReason::Error("No route to host".into());
        assert_eq!(worth_logging(&other), Some("No route to host"));
    }
}
