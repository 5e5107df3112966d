//! TLS endpoints for the thread-per-session relay: a blocking handshake over a
//! connected or accepted stream, then a bridge thread that owns the TLS connection
//! and the TCP socket and exposes the plaintext as one end of a socket pair, so every
//! session (pipe, `--exec`, dumps) sees an ordinary stream. Half-close maps to TLS
//! `close_notify` plus TCP FIN both ways; buffers are bounded (rustls's plus one
//! 64 KiB chunk each way).
//!
//! Building the rustls configurations (certificates, trust, ALPN) is the caller's;
//! `crate::protocol::trust` holds the one client trust policy. What the bridge does
//! not do: client certificates, session resumption, reloading certificates.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use crate::net::{self, Stream};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes moved per step of the bridge.
const CHUNK: usize = 64 * 1024;

/// `e` with `what` in front of its message, of the same kind.
fn context(e: io::Error, what: impl fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A rustls error as an `io::Error` saying what failed.
fn tls_error(e: rustls::Error, what: &str) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The thread that moves a TLS connection's data; wait for it before exiting, or
/// data still on its way is lost.
#[derive(Debug)]
pub struct Bridge(thread::JoinHandle<()>);

impl Bridge {
    /// Waits until the bridge has sent everything and closed, at most `limit`.
    pub fn wait(self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.0.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if self.0.is_finished() {
            let _ = self.0.join();
        }
    }
}

/// A client session after its handshake.
#[derive(Debug)]
pub struct Connected {
    /// The plaintext end.
    pub stream: Stream,
    /// The bridge behind it.
    pub bridge: Bridge,
    /// The ALPN protocol the server chose (lossily as text), if any.
    pub alpn: Option<String>,
}

/// Performs a client handshake with `host` over `tcp`; returns the plaintext end,
/// the bridge behind it and the ALPN protocol chosen.
///
/// # Errors
///
/// A `host` that is not a TLS server name (`InvalidInput`), a failed handshake (its
/// error, kind kept, after `TLS handshake with HOST failed:`), or no bridge.
pub fn connect(tcp: Stream, host: &str, config: &Arc<ClientConfig>) -> io::Result<Connected> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{host}` is not a valid TLS server name: {e}"),
        )
    })?;
    let conn = ClientConnection::new(config.clone(), name)
        .map_err(|e| tls_error(e, "TLS setup failed"))?;
    let mut conn = Connection::from(conn);
    handshake(&mut conn, &tcp)
        .map_err(|e| context(e, format!("TLS handshake with {host} failed")))?;
    let alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let (stream, bridge) =
        bridge(conn, tcp).map_err(|e| context(e, "cannot start the TLS bridge"))?;
    Ok(Connected {
        stream,
        bridge,
        alpn,
    })
}

/// Performs a server handshake over an accepted `tcp`; returns the plaintext end
/// and the bridge behind it.
///
/// # Errors
///
/// A failed handshake (its error, kind kept, after `TLS handshake failed:`), or no
/// bridge.
pub fn accept(tcp: Stream, config: &Arc<ServerConfig>) -> io::Result<(Stream, Bridge)> {
    let conn =
        ServerConnection::new(config.clone()).map_err(|e| tls_error(e, "TLS setup failed"))?;
    let mut conn = Connection::from(conn);
    handshake(&mut conn, &tcp).map_err(|e| context(e, "TLS handshake failed"))?;
    bridge(conn, tcp).map_err(|e| context(e, "cannot start the TLS bridge"))
}

fn handshake(conn: &mut Connection, tcp: &Stream) -> io::Result<()> {
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut io = tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut io)?;
    }
    while conn.wants_write() {
        conn.write_tls(&mut io)?;
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)
}

/// Moves `conn`'s plaintext to and from one end of a socket pair, on a thread.
fn bridge(conn: Connection, tcp: Stream) -> io::Result<(Stream, Bridge)> {
    let (outer, inner) = net::socketpair()?;
    tcp.set_nonblocking(true)?;
    inner.set_nonblocking(true)?;
    let handle = thread::spawn(move || {
        if bridge_loop(conn, &tcp, &inner).is_err() {
            let _ = tcp.shutdown(Shutdown::Both);
            let _ = inner.shutdown(Shutdown::Both);
        }
    });
    Ok((outer, Bridge(handle)))
}

/// The bridge's loop: every step that can make progress is tried; with none
/// left, it waits for readiness (edge-triggered, so every wait follows a
/// `WouldBlock` on what it waits for).
fn bridge_loop(mut conn: Connection, tcp: &Stream, plain: &Stream) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(&mut SourceFd(&tcp.as_raw_fd()), Token(0), both)?;
    poll.registry()
        .register(&mut SourceFd(&plain.as_raw_fd()), Token(1), both)?;
    let mut events = Events::with_capacity(4);
    let mut buf = vec![0u8; CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    let mut at = 0usize;
    let (mut tls_eof, mut plain_eof, mut tcp_shut) = (false, false, false);
    loop {
        let mut progress = false;
        // TLS records out to the network.
        while conn.wants_write() {
            match conn.write_tls(&mut &*tcp) {
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if plain_eof && !tcp_shut && !conn.wants_write() {
            let _ = tcp.shutdown(Shutdown::Write);
            tcp_shut = true;
            progress = true;
        }
        // Decrypted data out to the plaintext end.
        while at < pending.len() {
            match (&*plain).write(&pending[at..]) {
                Ok(n) => {
                    at += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // More decrypted data, reading the network when rustls has none.
        if at >= pending.len() && !tls_eof {
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    tls_eof = true;
                    let _ = plain.shutdown(Shutdown::Write);
                    progress = true;
                }
                Ok(n) => {
                    pending.clear();
                    pending.extend_from_slice(&buf[..n]);
                    at = 0;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match conn.read_tls(&mut &*tcp) {
                        Ok(0) => {
                            tls_eof = true;
                            let _ = plain.shutdown(Shutdown::Write);
                            progress = true;
                        }
                        Ok(_) => {
                            if let Err(e) = conn.process_new_packets() {
                                // Send the alert, then give up.
                                let _ = conn.write_tls(&mut &*tcp);
                                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                            }
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    tls_eof = true;
                    let _ = plain.shutdown(Shutdown::Write);
                    progress = true;
                }
                Err(e) => return Err(e),
            }
        }
        // Plaintext in, once rustls has sent what it holds (bounded buffering).
        if !plain_eof && !conn.wants_write() {
            match (&*plain).read(&mut buf) {
                Ok(0) => {
                    plain_eof = true;
                    conn.send_close_notify();
                    progress = true;
                }
                Ok(n) => {
                    conn.writer().write_all(&buf[..n])?;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Err(e) => return Err(e),
            }
        }
        if tls_eof && plain_eof && tcp_shut && at >= pending.len() {
            return Ok(());
        }
        if !progress {
            match poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
