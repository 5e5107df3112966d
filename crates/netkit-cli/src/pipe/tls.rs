//! TLS endpoints (rustls with the `ring` provider): `tls://HOST:PORT` targets for
//! `connect` and `relay`, and TLS listeners (`--tls-cert/--tls-key` or
//! `--tls-self-signed`) for `listen` and `relay`.
//!
//! The scheme lives here, in the CLI, not in `netkit::net::Address`: `tls://` is
//! stripped and the rest parsed as a TCP address. Verification is on by default
//! (system roots, or only `--cacert`'s, a self-signed server certificate named
//! there accepted as itself; see `netkit::protocol::trust`); `--insecure` turns it off explicitly.
//! The SNI name is the host of the address.
//!
//! After a blocking handshake, a bridge thread owns the TLS connection and the TCP
//! socket and exposes the plaintext as one end of a socket pair, so every session
//! (pipe, `--exec`, dumps) sees an ordinary stream. Half-close maps to TLS
//! `close_notify` plus TCP FIN both ways; buffers are bounded (rustls's plus one
//! 64 KiB chunk each way). What the bridge does not do: client certificates,
//! session resumption, reloading certificates.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use netkit::net::{self, Address, Stream};
use netkit::protocol::trust::{self, Trust};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use sha2::{Digest, Sha256};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes moved per step of the bridge.
const CHUNK: usize = 64 * 1024;

/// The `tls://` scheme prefix.
pub const SCHEME: &str = "tls://";

/// TLS client options (`connect`, `relay` targets).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// tls:// targets: trust only the certificates in this PEM file (instead of
    /// the system's roots).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// tls:// targets: do not verify the server's certificate or name (unsafe).
    #[arg(long)]
    pub insecure: bool,
    /// tls:// targets: offer these ALPN protocols (comma-separated, e.g. h2,http/1.1);
    /// the one chosen is printed on stderr.
    #[arg(long, value_name = "PROTOS", value_delimiter = ',')]
    pub alpn: Vec<String>,
}

/// TLS server options (`listen`, `relay`'s listening side).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a fresh in-memory self-signed certificate for localhost,
    /// 127.0.0.1 and ::1; its SHA-256 fingerprint is printed on stderr.
    #[arg(long)]
    pub tls_self_signed: bool,
}

/// A stream address with an optional TLS layer.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: Address,
    /// The TLS server name, if the address was `tls://HOST:PORT`.
    pub tls_host: Option<String>,
}

/// Parses `tls://HOST:PORT` or any address of `netkit::net`'s grammar.
pub fn parse_target(s: &str) -> anyhow::Result<Target> {
    match s.strip_prefix(SCHEME) {
        Some(rest) => {
            let addr = crate::cmd::parse_address(rest)?;
            let Some(hp) = addr.host_port().filter(|_| addr.is_stream()) else {
                return Err(crate::cmd::usage(format!(
                    "invalid address `{s}`: tls:// takes HOST:PORT"
                )));
            };
            let host = hp.host.clone();
            Ok(Target {
                addr,
                tls_host: Some(host),
            })
        }
        None => Ok(Target {
            addr: crate::cmd::parse_address(s)?,
            tls_host: None,
        }),
    }
}

fn provider() -> Arc<CryptoProvider> {
    trust::provider()
}

/// The client configuration these options ask for (built by
/// [`netkit::protocol::trust`], the one trust policy of every netkit client).
pub fn client_config(args: &ClientArgs) -> anyhow::Result<Arc<ClientConfig>> {
    let trust = match (&args.cacert, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(path), false) => Trust::CaFile(path.clone()),
        (None, false) => Trust::System,
    };
    let mut config = trust::client_config(&trust)?;
    config.alpn_protocols = args.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// The server configuration, or `None` when no TLS option was given. A
/// self-signed certificate's fingerprint is printed on stderr.
pub fn server_config(args: &ServerArgs) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    let (certs, key) = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => {
            let certs = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                anyhow::anyhow!("cannot read a private key from {}: {e}", key.display())
            })?;
            (certs, key)
        }
        (_, _, true) => {
            let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
            let ck = rcgen::generate_simple_self_signed(names)
                .context("cannot make a self-signed certificate")?;
            let der = ck.cert.der().clone();
            say!("tls certificate sha256 fingerprint {}", fingerprint(&der));
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
                .map_err(|e| anyhow::anyhow!("bad generated key: {e}"))?;
            (vec![der], key)
        }
        _ => return Ok(None),
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS setup failed")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not make a TLS server")?;
    Ok(Some(Arc::new(config)))
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

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("bad PEM in {}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
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

/// Performs a client handshake with `host` over `tcp`; returns the plaintext end
/// and the bridge behind it.
pub fn connect(
    tcp: Stream,
    host: &str,
    config: &Arc<ClientConfig>,
) -> anyhow::Result<(Stream, Bridge)> {
    let name = ServerName::try_from(host.to_string())
        .with_context(|| format!("`{host}` is not a valid TLS server name"))?;
    let conn = ClientConnection::new(config.clone(), name).context("TLS setup failed")?;
    let mut conn = Connection::from(conn);
    handshake(&mut conn, &tcp).with_context(|| format!("TLS handshake with {host} failed"))?;
    if !config.alpn_protocols.is_empty() {
        let chosen = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        say!("tls alpn {}", chosen.as_deref().unwrap_or("(none)"));
    }
    bridge(conn, tcp).context("cannot start the TLS bridge")
}

/// Performs a server handshake over an accepted `tcp`; returns the plaintext end
/// and the bridge behind it.
pub fn accept(tcp: Stream, config: &Arc<ServerConfig>) -> anyhow::Result<(Stream, Bridge)> {
    let conn = ServerConnection::new(config.clone()).context("TLS setup failed")?;
    let mut conn = Connection::from(conn);
    handshake(&mut conn, &tcp).context("TLS handshake failed")?;
    bridge(conn, tcp).context("cannot start the TLS bridge")
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
    fn targets_parse_with_and_without_tls() {
        let t = parse_target("tls://localhost:443").unwrap();
        assert_eq!(t.tls_host.as_deref(), Some("localhost"));
        assert!(t.addr.is_stream());
        let t = parse_target("tls://[::1]:8443").unwrap();
        assert_eq!(t.tls_host.as_deref(), Some("::1"));
        let t = parse_target("127.0.0.1:80").unwrap();
        assert!(t.tls_host.is_none());
        assert!(parse_target("tls://udp://127.0.0.1:1").is_err());
        assert!(parse_target("tls://unix:///tmp/x").is_err());
        assert!(parse_target("tls://nope").is_err());
    }

    #[test]
    fn fingerprints_are_colon_separated_sha256() {
        assert_eq!(
            fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }
}
