//! TLS as a Protocol wrapper (rustls): [`TlsFactory`] puts a TLS server in front
//! of any [`Factory`], [`TlsProtocol::client`] a TLS client in front of any
//! [`Protocol`]. The wrapper sits between the runner's [`Transport`] (ciphertext)
//! and the wrapped Protocol (plaintext), so TLS runs unchanged under every runner
//! — sequential, threads, pool, fork, the reactor — and the wrapped Protocol sees
//! the real peer address, timers and mailboxes of the connection underneath.
//!
//! The wrapped Protocol hears nothing until the handshake is done: then it gets
//! [`connection_made`](Protocol::connection_made). A handshake that fails or takes
//! longer than [`HANDSHAKE_TIMEOUT`] closes the connection with a log line (the
//! TLS alert is sent first); a server-side Protocol never hears of it, a client
//! gets [`connection_lost`](Protocol::connection_lost) with the error, so it can
//! report why it never connected.
//!
//! End-of-file both ways: the peer's `close_notify` (or a bare FIN, logged as
//! truncation) reaches the wrapped Protocol as
//! [`eof_received`](Protocol::eof_received); its
//! [`shutdown_write`](Transport::shutdown_write) sends `close_notify` and then
//! FIN, and reading goes on. [`write_file`](Transport::write_file) cannot use
//! `sendfile` under TLS: the range is read and encrypted a bounded chunk at a
//! time, as a producer, so a large file never sits in memory.
//!
//! Out of scope: certificates and configuration (the caller builds the rustls
//! `ServerConfig`/`ClientConfig`), sockets, client certificates' checks beyond
//! what the configuration asks rustls to do.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::forward::pass_through;
use super::{CloseReason, ConnInfo, Factory, Protocol, TimerId, Transport};

/// How long a peer may take to complete the handshake, by default.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most plaintext handed to the wrapped Protocol in one call (one TLS record).
const CHUNK: usize = 16 * 1024;

/// How much of a queued file is encrypted per producer call.
const FILE_BUDGET: usize = 4 * CHUNK;

/// Wraps a [`Factory`]: every connection is a TLS server connection.
pub struct TlsFactory<F> {
    inner: F,
    config: Arc<ServerConfig>,
    timeout: Duration,
}

impl<F> fmt::Debug for TlsFactory<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFactory")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<F: Factory> TlsFactory<F> {
    /// Serves `inner`'s Protocols over TLS with `config`.
    pub fn new(config: Arc<ServerConfig>, inner: F) -> Self {
        TlsFactory {
            inner,
            config,
            timeout: HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets how long a client may take to complete the handshake.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<F: Factory> Factory for TlsFactory<F> {
    type Proto = TlsProtocol<F::Proto>;

    fn build(&self, conn: &ConnInfo) -> TlsProtocol<F::Proto> {
        let inner = self.inner.build(conn);
        let tls = ServerConnection::new(self.config.clone())
            .map(Connection::Server)
            .map_err(|e| e.to_string());
        TlsProtocol::new(tls, inner, false).with_handshake_timeout(self.timeout)
    }

    fn shares_state(&self) -> bool {
        self.inner.shares_state()
    }
}

/// Output the wrapped Protocol queued behind a file range: sent in order.
enum Out {
    Bytes(Vec<u8>),
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Bytes(b) => b.len(),
            Out::File { len, .. } => usize::try_from(*len).unwrap_or(usize::MAX),
        }
    }
}

/// What the wrapped Protocol asked for that waits for queued output to go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    ShutdownWrite,
    Close,
}

/// The connection state the wrapped Protocol's Transport works on.
struct Session {
    tls: Connection,
    /// Output queued behind a file range, and its total length.
    queue: VecDeque<Out>,
    queued: usize,
    /// A close or half-close waiting for `queue` to drain.
    ending: Option<Ending>,
    /// Set once `ending` has been carried out.
    ended: bool,
    /// The wrapped Protocol closed or aborted: it gets no more events.
    closing: bool,
    /// The wrapped Protocol paused reading.
    paused: bool,
}

impl Session {
    /// Moves the TLS records rustls has ready into the runner's write queue.
    fn flush(&mut self, t: &mut dyn Transport) {
        let mut sink = Sink(t);
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Encrypts plaintext (the buffer is unlimited: the runner's queue is the limit).
    fn encrypt(&mut self, data: &[u8]) {
        // Fails only after close_notify was sent, when nothing may be written.
        let _ = self.tls.writer().write_all(data);
    }
}

/// An `io::Write` that queues on the runner's Transport.
struct Sink<'a>(&'a mut dyn Transport);

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            self.0.write(b);
            n += b.len();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The Transport the wrapped Protocol sees: writes are encrypted, everything
/// else is the connection underneath.
struct Plain<'a> {
    t: &'a mut dyn Transport,
    s: &'a mut Session,
}

impl Transport for Plain<'_> {
    fn write(&mut self, data: &[u8]) {
        if self.s.closing || self.s.ending.is_some() || data.is_empty() {
            return;
        }
        if self.s.queue.is_empty() {
            self.s.encrypt(data);
        } else {
            self.s.queued += data.len();
            self.s.queue.push_back(Out::Bytes(data.to_vec()));
        }
    }
    fn write_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if self.s.closing || self.s.ending.is_some() || len == 0 {
            return;
        }
        let out = Out::File { file, offset, len };
        self.s.queued = self.s.queued.saturating_add(out.len());
        self.s.queue.push_back(out);
    }
    fn buffered(&self) -> usize {
        self.t.buffered().saturating_add(self.s.queued)
    }
    fn close(&mut self) {
        self.s.closing = true;
        self.s.ending = Some(Ending::Close);
    }
    fn abort(&mut self) {
        self.s.closing = true;
        self.t.abort();
    }
    fn shutdown_write(&mut self) {
        if self.s.ending.is_none() {
            self.s.ending = Some(Ending::ShutdownWrite);
        }
    }
    fn pause_reading(&mut self) {
        self.s.paused = true;
        self.t.pause_reading();
    }
    fn resume_reading(&mut self) {
        self.s.paused = false;
        self.t.resume_reading();
    }
    pass_through!(t: addresses, timers, mailbox);
}

/// One TLS connection (server or client) around a wrapped Protocol.
pub struct TlsProtocol<P> {
    inner: P,
    /// The session, or why it could not be created.
    s: Result<Session, String>,
    /// Whether the handshake completed and the wrapped Protocol was told.
    made: bool,
    /// Whether a failed handshake is reported to the wrapped Protocol.
    client: bool,
    timeout: Duration,
    timer: Option<TimerId>,
    /// Why the connection failed, for `connection_lost`.
    failure: Option<String>,
    /// Ciphertext held while the wrapped Protocol is paused.
    backlog: Vec<u8>,
    /// The peer's end of the stream was seen (FIN) / passed on.
    peer_fin: bool,
    eof_done: bool,
    scratch: Vec<u8>,
}

impl<P> fmt::Debug for TlsProtocol<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsProtocol")
            .field("client", &self.client)
            .field("handshake_done", &self.made)
            .finish_non_exhaustive()
    }
}

impl<P: Protocol> TlsProtocol<P> {
    /// A TLS server connection around `inner` (what [`TlsFactory`] builds).
    pub fn server(config: Arc<ServerConfig>, inner: P) -> Result<Self, rustls::Error> {
        let tls = ServerConnection::new(config)?;
        Ok(TlsProtocol::new(Ok(Connection::Server(tls)), inner, false))
    }

    /// A TLS client connection to `server_name` around `inner`: connect it with
    /// any runner (the reactor's `Handle::connect`, or a blocking runner over a
    /// connected stream). The certificate is checked as `config` says.
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        inner: P,
    ) -> Result<Self, rustls::Error> {
        let tls = ClientConnection::new(config, server_name)?;
        Ok(TlsProtocol::new(Ok(Connection::Client(tls)), inner, true))
    }

    fn new(tls: Result<Connection, String>, inner: P, client: bool) -> Self {
        let s = tls.map(|mut tls| {
            tls.set_buffer_limit(None);
            Session {
                tls,
                queue: VecDeque::new(),
                queued: 0,
                ending: None,
                ended: false,
                closing: false,
                paused: false,
            }
        });
        TlsProtocol {
            inner,
            s,
            made: false,
            client,
            timeout: HANDSHAKE_TIMEOUT,
            timer: None,
            failure: None,
            backlog: Vec::new(),
            peer_fin: false,
            eof_done: false,
            scratch: Vec::new(),
        }
    }

    /// Sets how long the handshake may take.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wrapped Protocol.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The protocol ALPN agreed on, once the handshake is done.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.s.as_ref().ok().and_then(|s| s.tls.alpn_protocol())
    }

    /// Whether the wrapped Protocol may still get events.
    fn live(&self) -> bool {
        self.made && self.failure.is_none() && self.s.as_ref().is_ok_and(|s| !s.closing)
    }

    /// Closes the connection after a TLS failure, sending any alert first.
    fn fail(&mut self, why: String, t: &mut dyn Transport) {
        tracing::warn!(peer = %t.peer_addr(), "TLS: {why}; closing the connection");
        if let Ok(s) = &mut self.s {
            s.flush(t);
            s.closing = true;
        }
        self.failure = Some(why);
        t.close();
    }

    /// Runs `f` on the wrapped Protocol with the plaintext Transport, then
    /// settles: delivers what is buffered, sends what is ready.
    fn call(&mut self, t: &mut dyn Transport, f: impl FnOnce(&mut P, &mut dyn Transport)) {
        if !self.live() {
            return;
        }
        if let Ok(s) = &mut self.s {
            f(&mut self.inner, &mut Plain { t, s });
        }
        self.settle(t);
    }

    /// Feeds ciphertext to rustls, completing the handshake and delivering
    /// plaintext as it decrypts.
    fn feed(&mut self, data: &[u8], t: &mut dyn Transport) {
        let mut rd = data;
        while !rd.is_empty() {
            let Ok(s) = &mut self.s else { return };
            if self.made && s.paused {
                self.backlog.extend_from_slice(rd);
                return;
            }
            match s.tls.read_tls(&mut rd) {
                Ok(0) => return, // after close_notify: nothing more is read
                Ok(_) => {}
                Err(_) => {
                    // Decrypted plaintext waits: keep the rest for later.
                    self.backlog.extend_from_slice(rd);
                    return;
                }
            }
            if let Err(e) = s.tls.process_new_packets() {
                return self.fail(e.to_string(), t);
            }
            if !self.made && !s.tls.is_handshaking() {
                self.made = true;
                if let Some(id) = self.timer.take() {
                    t.cancel_timer(id);
                }
                tracing::debug!(peer = %t.peer_addr(), "TLS handshake done");
                self.inner.connection_made(&mut Plain { t, s });
            }
            self.deliver(t);
            if self.made && !self.live() {
                return;
            }
        }
    }

    /// Hands decrypted plaintext to the wrapped Protocol until it pauses or
    /// closes; passes the peer's end on once everything before it was read.
    fn deliver(&mut self, t: &mut dyn Transport) {
        if self.scratch.len() < CHUNK {
            self.scratch.resize(CHUNK, 0);
        }
        while self.live() {
            let Ok(s) = &mut self.s else { return };
            if s.paused {
                return;
            }
            match s.tls.reader().read(&mut self.scratch) {
                Ok(0) => return self.end_of_stream(t),
                Ok(n) => {
                    let data = self.scratch.get(..n).unwrap_or_default();
                    self.inner.data_received(data, &mut Plain { t, s });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.peer_fin && self.backlog.is_empty() {
                        self.end_of_stream(t);
                    }
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %t.peer_addr(), "TLS: peer closed without close_notify");
                    return self.end_of_stream(t);
                }
            }
        }
    }

    /// Tells the wrapped Protocol, once, that the peer will send no more.
    fn end_of_stream(&mut self, t: &mut dyn Transport) {
        if self.eof_done {
            return;
        }
        self.eof_done = true;
        if let Ok(s) = &mut self.s {
            self.inner.eof_received(&mut Plain { t, s });
        }
    }

    /// Encrypts queued file ranges a bounded chunk at a time.
    fn produce(&mut self, t: &mut dyn Transport) {
        let Ok(s) = &mut self.s else { return };
        let mut budget = FILE_BUDGET;
        while budget > 0 {
            let Some(front) = s.queue.front_mut() else {
                return;
            };
            match front {
                Out::Bytes(b) => {
                    let b = std::mem::take(b);
                    s.queued -= b.len();
                    s.queue.pop_front();
                    budget = budget.saturating_sub(b.len());
                    s.encrypt(&b);
                }
                Out::File { file, offset, len } => {
                    let want = (*len).min(CHUNK as u64) as usize;
                    if self.scratch.len() < want {
                        self.scratch.resize(want, 0);
                    }
                    let buf = self.scratch.get_mut(..want).unwrap_or_default();
                    let n = match file.read_at(buf, *offset) {
                        Ok(0) => {
                            let why = "file ended before the bytes promised".to_string();
                            return self.fail_file(why, t);
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return self.fail_file(format!("cannot read file: {e}"), t),
                    };
                    *offset += n as u64;
                    *len -= n as u64;
                    let done = *len == 0;
                    s.queued -= n;
                    budget = budget.saturating_sub(n);
                    let data = buf.get(..n).unwrap_or_default();
                    // Fails only after close_notify, which waits for this queue.
                    let _ = s.tls.writer().write_all(data);
                    if done {
                        s.queue.pop_front();
                    }
                }
            }
        }
    }

    /// A queued file could not be read: the peer was promised bytes that do
    /// not exist, so the connection ends with an error.
    fn fail_file(&mut self, why: String, t: &mut dyn Transport) {
        tracing::warn!(peer = %t.peer_addr(), "TLS: {why}; aborting the connection");
        if let Ok(s) = &mut self.s {
            s.closing = true;
            s.queue.clear();
            s.queued = 0;
        }
        self.failure = Some(why);
        t.abort();
    }

    /// After every event: resume delivery the wrapped Protocol asked for, send
    /// what is encrypted, carry out a close or half-close once the queue behind
    /// a file is sent (the runner drains that queue through `resume_producing`).
    fn settle(&mut self, t: &mut dyn Transport) {
        if self.live() && self.s.as_ref().is_ok_and(|s| !s.paused) && !self.backlog.is_empty() {
            let held = std::mem::take(&mut self.backlog);
            self.feed(&held, t);
        }
        if self.live() {
            self.deliver(t);
        }
        if self.failure.is_some() {
            return;
        }
        let Ok(s) = &mut self.s else { return };
        if let (Some(ending), false, true) = (s.ending, s.ended, s.queue.is_empty()) {
            s.ended = true;
            s.tls.send_close_notify();
            s.flush(t);
            match ending {
                Ending::Close => t.close(),
                Ending::ShutdownWrite => t.shutdown_write(),
            }
            return;
        }
        s.flush(t);
    }
}

impl<P: Protocol> Protocol for TlsProtocol<P> {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        match &mut self.s {
            Ok(s) => {
                self.timer = Some(t.call_later(self.timeout));
                s.flush(t); // a client's ClientHello
            }
            Err(e) => {
                let why = format!("cannot start a TLS session: {e}");
                self.fail(why, t);
            }
        }
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        if self.failure.is_some() || self.s.as_ref().is_ok_and(|s| s.closing) {
            return;
        }
        self.feed(data, t);
        self.settle(t);
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        if self.failure.is_some() {
            return;
        }
        if !self.made {
            let why = "connection closed during the TLS handshake".to_string();
            return self.fail(why, t);
        }
        self.peer_fin = true;
        if self.live() && self.s.as_ref().is_ok_and(|s| !s.paused) && self.backlog.is_empty() {
            self.deliver(t);
            self.end_of_stream(t);
        }
        self.settle(t);
    }

    fn connection_lost(&mut self, reason: &CloseReason) {
        if !self.made && !self.client {
            return;
        }
        match self.failure.take() {
            Some(why) if matches!(reason, CloseReason::Done) => {
                self.inner.connection_lost(&CloseReason::Error(why))
            }
            _ => self.inner.connection_lost(reason),
        }
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        if self.timer == Some(id) {
            self.timer = None;
            if !self.made && self.failure.is_none() {
                let why = format!("no TLS handshake within {:?}", self.timeout);
                self.fail(why, t);
            }
            return;
        }
        self.call(t, |p, t| p.timer_fired(id, t));
    }

    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        self.call(t, |p, t| p.message_received(msg, t));
    }

    fn is_producer(&self) -> bool {
        // Queued file ranges are sent even after the wrapped Protocol closed.
        let queued = self.s.as_ref().is_ok_and(|s| !s.queue.is_empty());
        self.failure.is_none() && (queued || (self.live() && self.inner.is_producer()))
    }

    fn resume_producing(&mut self, t: &mut dyn Transport) {
        if self.failure.is_some() {
            return;
        }
        if self.s.as_ref().is_ok_and(|s| !s.queue.is_empty()) {
            self.produce(t);
            self.settle(t);
        } else {
            self.call(t, |p, t| p.resume_producing(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::RootCertStore;

    use super::*;
    use crate::protocol::testing::FakeTransport;
    use crate::protocol::PeerAddr;

    /// Records what a wrapped Protocol is told; echoes unless told otherwise.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Log {
        fn push(&self, s: String) {
            self.0.lock().unwrap().push(s);
        }
        fn all(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
        fn text(&self) -> String {
            self.all()
                .iter()
                .filter_map(|e| e.strip_prefix("data "))
                .collect()
        }
    }

    struct Peer {
        log: Log,
        echo: bool,
        pause_after_first: bool,
        file: Option<(Arc<File>, u64)>,
    }

    impl Peer {
        fn new(log: &Log) -> Self {
            Peer {
                log: log.clone(),
                echo: false,
                pause_after_first: false,
                file: None,
            }
        }
    }

    impl Protocol for Peer {
        fn connection_made(&mut self, t: &mut dyn Transport) {
            self.log.push(format!("made {}", t.peer_addr()));
            if let Some((file, len)) = self.file.take() {
                t.write(b"<");
                t.write_file(file, 0, len);
                t.write(b">");
                t.close();
            }
        }
        fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
            self.log
                .push(format!("data {}", String::from_utf8_lossy(data)));
            if self.echo {
                t.write(data);
            }
            if self.pause_after_first {
                self.pause_after_first = false;
                t.pause_reading();
            }
        }
        fn eof_received(&mut self, t: &mut dyn Transport) {
            self.log.push("eof".into());
            t.shutdown_write();
        }
        fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
            self.log
                .push(format!("msg {}", String::from_utf8_lossy(&msg)));
            t.resume_reading();
        }
        fn connection_lost(&mut self, reason: &CloseReason) {
            self.log.push(format!("lost {reason}"));
        }
    }

    fn cert() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        (ck.cert.der().clone(), key)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn server_config(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> Arc<ServerConfig> {
        let c = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        Arc::new(c)
    }

    fn client_config(trusted: CertificateDer<'static>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(trusted).unwrap();
        let c = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(c)
    }

    fn addr(s: &str) -> PeerAddr {
        PeerAddr::Inet(s.parse().unwrap())
    }

    /// A client and a server joined by two in-memory transports.
    struct Wire {
        c: TlsProtocol<Peer>,
        ct: FakeTransport,
        s: TlsProtocol<Peer>,
        st: FakeTransport,
        c_fin: bool,
        s_fin: bool,
        /// The most the server queued between two pumps.
        biggest_down: usize,
    }

    impl Wire {
        fn new(client: Peer, server: Peer, trusted: Option<CertificateDer<'static>>) -> Wire {
            let (cert, key) = cert();
            let trust = trusted.unwrap_or_else(|| cert.clone());
            let name = ServerName::try_from("localhost").unwrap();
            let mut w = Wire {
                c: TlsProtocol::client(client_config(trust), name, client).unwrap(),
                ct: FakeTransport::new(addr("127.0.0.1:9443"), addr("127.0.0.1:50000")),
                s: TlsProtocol::server(server_config(cert, key), server).unwrap(),
                st: FakeTransport::new(addr("127.0.0.1:50000"), addr("127.0.0.1:9443")),
                c_fin: false,
                s_fin: false,
                biggest_down: 0,
            };
            w.s.connection_made(&mut w.st);
            w.c.connection_made(&mut w.ct);
            w.pump();
            w
        }

        /// Moves bytes (and FINs) both ways until nothing moves.
        fn pump(&mut self) {
            for _ in 0..1000 {
                let up = self.ct.take_written();
                let down = self.st.take_written();
                self.biggest_down = self.biggest_down.max(down.len());
                if !up.is_empty() {
                    self.s.data_received(&up, &mut self.st);
                }
                if !down.is_empty() {
                    self.c.data_received(&down, &mut self.ct);
                }
                let mut moved = !up.is_empty() || !down.is_empty();
                // A FIN follows the bytes written before it.
                let c_done = (self.ct.outcome().write_shut || self.ct.is_finished())
                    && self.ct.outcome().written.is_empty();
                if c_done && !self.c_fin {
                    self.c_fin = true;
                    self.s.eof_received(&mut self.st);
                    moved = true;
                }
                let s_done = (self.st.outcome().write_shut || self.st.is_finished())
                    && self.st.outcome().written.is_empty();
                if s_done && !self.s_fin {
                    self.s_fin = true;
                    self.c.eof_received(&mut self.ct);
                    moved = true;
                }
                if self.s.is_producer() {
                    self.s.resume_producing(&mut self.st);
                    moved = true;
                }
                if !moved {
                    return;
                }
            }
            panic!("the wire never settled");
        }
    }

    #[test]
    fn handshake_then_data_both_ways_with_the_real_peer_address() {
        let (cl, sl) = (Log::default(), Log::default());
        let mut server = Peer::new(&sl);
        server.echo = true;
        let mut w = Wire::new(Peer::new(&cl), server, None);
        assert_eq!(sl.all(), ["made 127.0.0.1:50000"]);
        assert_eq!(cl.all(), ["made 127.0.0.1:9443"]);
        let mut c = w.c;
        c.call(&mut w.ct, |_, t| t.write(b"hello over tls"));
        w.c = c;
        w.pump();
        assert_eq!(sl.text(), "hello over tls");
        assert_eq!(cl.text(), "hello over tls");
        let wire = w.ct.outcome().writes.concat();
        assert!(
            !wire.windows(5).any(|x| x == b"hello"),
            "plaintext on the wire"
        );
    }

    #[test]
    fn half_close_each_way_is_close_notify_then_eof() {
        let (cl, sl) = (Log::default(), Log::default());
        let mut server = Peer::new(&sl);
        server.echo = true;
        let mut w = Wire::new(Peer::new(&cl), server, None);
        w.c.call(&mut w.ct, |_, t| {
            t.write(b"last words");
            t.shutdown_write();
        });
        w.pump();
        // The server read everything, then eof; its eof handler half-closed back.
        assert_eq!(sl.all()[1..], ["data last words", "eof"]);
        assert_eq!(cl.all()[1..], ["data last words", "eof"]);
        assert!(w.ct.outcome().write_shut && w.st.outcome().write_shut);
        assert!(!w.st.outcome().aborted && !w.ct.outcome().aborted);
    }

    #[test]
    fn a_file_is_encrypted_in_bounded_chunks_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&path, &body).unwrap();
        let (cl, sl) = (Log::default(), Log::default());
        let mut server = Peer::new(&sl);
        server.file = Some((Arc::new(File::open(&path).unwrap()), body.len() as u64));
        let w = Wire::new(Peer::new(&cl), server, None);
        let mut want = b"<".to_vec();
        want.extend_from_slice(&body);
        want.push(b'>');
        assert_eq!(cl.text().as_bytes(), &want[..]);
        assert!(cl.all().contains(&"eof".to_string()));
        assert!(w.st.outcome().closed);
        // One producer call encrypts at most FILE_BUDGET (plus record overhead).
        let biggest = w.biggest_down;
        assert!(
            biggest <= FILE_BUDGET + 1024,
            "{biggest} bytes queued at once"
        );
    }

    #[test]
    fn a_file_shorter_than_promised_aborts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"short").unwrap();
        let (cl, sl) = (Log::default(), Log::default());
        let mut server = Peer::new(&sl);
        server.file = Some((Arc::new(File::open(&path).unwrap()), 100));
        let w = Wire::new(Peer::new(&cl), server, None);
        assert!(w.st.outcome().aborted);
        assert!(!cl.text().ends_with('>'));
    }

    #[test]
    fn an_untrusted_certificate_fails_the_client_and_never_reaches_the_server() {
        let (cl, sl) = (Log::default(), Log::default());
        let (other, _) = cert();
        let w = Wire::new(Peer::new(&cl), Peer::new(&sl), Some(other));
        assert!(sl.all().is_empty(), "{:?}", sl.all());
        assert!(w.ct.is_finished() && w.st.is_finished());
        let mut c = w.c;
        c.connection_lost(&CloseReason::Done);
        let lost = cl.all();
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("invalid peer certificate"), "{lost:?}");
    }

    #[test]
    fn plaintext_garbage_and_silence_close_the_server_side() {
        let (cert, key) = cert();
        let config = server_config(cert, key);
        let sl = Log::default();
        let mut s = TlsProtocol::server(config.clone(), Peer::new(&sl)).unwrap();
        let mut st = FakeTransport::new(addr("127.0.0.1:1"), addr("127.0.0.1:2"));
        s.connection_made(&mut st);
        s.data_received(b"GET / HTTP/1.0\r\n\r\n", &mut st);
        assert!(st.is_finished());
        s.connection_lost(&CloseReason::Done);
        assert!(sl.all().is_empty());

        let out = crate::protocol::testing::Script::new()
            .fire_timers()
            .run(TlsProtocol::server(config, Peer::new(&sl)).unwrap());
        assert!(out.closed);
        assert!(sl.all().is_empty());
    }

    #[test]
    fn a_paused_protocol_gets_the_rest_when_it_resumes() {
        let (cl, sl) = (Log::default(), Log::default());
        let mut server = Peer::new(&sl);
        server.pause_after_first = true;
        let mut w = Wire::new(Peer::new(&cl), server, None);
        w.c.call(&mut w.ct, |_, t| t.write(b"one"));
        w.pump();
        w.c.call(&mut w.ct, |_, t| t.write(b"two"));
        w.pump();
        assert_eq!(sl.text(), "one");
        assert!(w.st.outcome().paused);
        w.s.message_received(Bytes::from_static(b"go"), &mut w.st);
        assert_eq!(sl.all()[1..], ["data one", "msg go", "data two"]);
    }
}
