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
//! The handshakes and the bridge that turns a TLS session into a plain stream are
//! `netkit::relay::tls`; [`connect`] wraps the client side and prints the ALPN
//! protocol chosen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use netkit::net::{Address, Stream};
use netkit::protocol::trust::{self, Trust};
pub use netkit::relay::tls::accept;
use netkit::relay::tls::Bridge;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ServerConfig};
use sha2::{Digest, Sha256};

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

/// Performs a client handshake with `host` over `tcp`; returns the plaintext end
/// and the bridge behind it. When ALPN protocols were offered, the one chosen is
/// printed on stderr.
pub fn connect(
    tcp: Stream,
    host: &str,
    config: &Arc<ClientConfig>,
) -> anyhow::Result<(Stream, Bridge)> {
    let c = netkit::relay::tls::connect(tcp, host, config)?;
    if !config.alpn_protocols.is_empty() {
        say!("tls alpn {}", c.alpn.as_deref().unwrap_or("(none)"));
    }
    Ok((c.stream, c.bridge))
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
