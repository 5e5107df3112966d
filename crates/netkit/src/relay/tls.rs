//! TLS endpoints for the thread-per-session relay: a blocking handshake over a
//! connected or accepted stream, then a bridge thread that owns the TLS connection
//! and the TCP socket and exposes the plaintext as one end of a socket pair, so every
//! session (pipe, `--exec`, dumps) sees an ordinary stream. Half-close maps to TLS
//! `close_notify` plus TCP FIN both ways; buffers are bounded (rustls's plus one
//! 64 KiB chunk each way).
//!
//! [`server_config`] builds a server configuration from PEM files or a fresh
//! self-signed certificate (whose [`fingerprint`] the caller shows); client
//! configurations come from `crate::protocol::trust`, the one client trust policy.
//! What the bridge does not do: client certificates, session resumption, reloading
//! certificates.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::net::{self, Stream};
use crate::protocol::trust;

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

/// Where a TLS server's certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCert {
    /// A certificate chain and its private key, each a PEM file.
    Pem {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A fresh in-memory self-signed certificate for localhost, 127.0.0.1 and ::1.
    SelfSigned,
}

/// Why a server configuration could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The certificate file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The certificate file is not PEM.
    #[error("bad PEM in {}: {reason}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no usable private key (or could not be read).
    #[error("cannot read a private key from {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
    /// The self-signed certificate's key is not one rustls takes.
    #[error("bad generated key: {0}")]
    GeneratedKey(String),
    /// rustls refused the protocol versions.
    #[error("TLS setup failed: {0}")]
    Setup(String),
    /// The certificate and the key do not go together (or rustls refused them).
    #[error("the certificate and key do not make a TLS server: {0}")]
    Mismatch(String),
}

/// A built server configuration.
#[derive(Debug)]
pub struct Server {
    /// The configuration.
    pub config: Arc<ServerConfig>,
    /// The [`fingerprint`] of a self-signed certificate (`None` for PEM files),
    /// for the caller to show so that clients can pin it.
    pub self_signed: Option<String>,
}

/// A server configuration (safe protocol versions, no client certificates) for
/// `cert`.
///
/// # Errors
///
/// A [`TlsConfigError`] naming the file or the step that failed.
pub fn server_config(cert: &ServerCert) -> Result<Server, TlsConfigError> {
    let (certs, key, self_signed) = match cert {
        ServerCert::Pem { cert, key } => {
            let certs = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsConfigError::Key {
                path: key.clone(),
                reason: e.to_string(),
            })?;
            (certs, key, None)
        }
        ServerCert::SelfSigned => {
            let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
            let ck = rcgen::generate_simple_self_signed(names)
                .map_err(|e| TlsConfigError::SelfSigned(e.to_string()))?;
            let der = ck.cert.der().clone();
            let print = fingerprint(&der);
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
                .map_err(|e| TlsConfigError::GeneratedKey(e.to_string()))?;
            (vec![der], key, Some(print))
        }
    };
    let config = ServerConfig::builder_with_provider(trust::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError::Mismatch(e.to_string()))?;
    Ok(Server {
        config: Arc::new(config),
        self_signed,
    })
}

/// `AB:CD:...`: the SHA-256 of a DER certificate, as `openssl x509 -fingerprint
/// -sha256` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Every certificate of a PEM file; an error if there is none.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = std::fs::read(path).map_err(|error| TlsConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_colon_separated_sha256() {
        assert_eq!(
            fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }
}
