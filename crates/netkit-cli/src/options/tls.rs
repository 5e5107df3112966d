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

use std::path::PathBuf;
use std::sync::Arc;

use netkit::net::{Address, Stream};
use netkit::protocol::trust::{self, Trust};
pub use netkit::relay::tls::accept;
use netkit::relay::tls::{Bridge, ServerCert};
use rustls::{ClientConfig, ServerConfig};

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

/// The server configuration, or `None` when no TLS option was given (built by
/// [`netkit::relay::tls::server_config`]). A self-signed certificate's fingerprint
/// is printed on stderr.
pub fn server_config(args: &ServerArgs) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    let cert = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => ServerCert::Pem {
            cert: cert.clone(),
            key: key.clone(),
        },
        (_, _, true) => ServerCert::SelfSigned,
        _ => return Ok(None),
    };
    let server = netkit::relay::tls::server_config(&cert)?;
    if let Some(print) = &server.self_signed {
        say!("tls certificate sha256 fingerprint {print}");
    }
    Ok(Some(server.config))
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
}
