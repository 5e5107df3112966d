//! The server under test: parsing ADDR (TCP `HOST:PORT`, `tcp://HOST:PORT`,
//! `[::1]:PORT`, or `unix:///path`) and resolving it once, before the run, into the
//! endpoint every connection dials.
//!
//! Datagram addresses are refused: an echo benchmark needs a byte stream. Opening the
//! connections is the workers' job, not this module's.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// A parsed ADDR: what the user asked to benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A TCP server, host name or IP literal, not yet resolved.
    Tcp {
        /// Host name or IP literal (without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix stream socket at this path.
    Unix(PathBuf),
}

/// Where connections go: a resolved [`Target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A Unix stream socket path.
    Unix(PathBuf),
}

impl Target {
    /// Parses ADDR; the error says which form was expected.
    pub fn parse(text: &str) -> Result<Target, String> {
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!("invalid address '{text}': unix:// needs a path, like unix:///tmp/echo.sock"));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            if scheme != "tcp" {
                return Err(format!(
                    "invalid address '{text}': netkit bench needs a stream address (HOST:PORT, tcp://HOST:PORT or unix:///path), not {scheme}://"
                ));
            }
        }
        let hostport = text.strip_prefix("tcp://").unwrap_or(text);
        let bad = || format!("invalid address '{text}': expected HOST:PORT, tcp://HOST:PORT, [::1]:PORT or unix:///path");
        let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(format!("invalid address '{text}': port 0 names no server"));
        }
        Ok(Target::Tcp { host: host.to_owned(), port })
    }

    /// Resolves the host (TCP) once; the first address returned is the one dialled.
    pub fn resolve(&self) -> std::io::Result<Endpoint> {
        match self {
            Target::Unix(path) => Ok(Endpoint::Unix(path.clone())),
            Target::Tcp { host, port } => (host.as_str(), *port)
                .to_socket_addrs()?
                .next()
                .map(Endpoint::Tcp)
                .ok_or_else(|| std::io::Error::other(format!("{host} resolves to no address"))),
        }
    }
}

impl fmt::Display for Target {
    /// The canonical spelling: `127.0.0.1:9000`, `[::1]:9000`, `unix:///tmp/x.sock`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stream_forms() {
        let tcp = |h: &str, p| Target::Tcp { host: h.to_owned(), port: p };
        assert_eq!(Target::parse("127.0.0.1:9000"), Ok(tcp("127.0.0.1", 9000)));
        assert_eq!(Target::parse("tcp://localhost:80"), Ok(tcp("localhost", 80)));
        assert_eq!(Target::parse("[::1]:9000"), Ok(tcp("::1", 9000)));
        assert_eq!(Target::parse("unix:///tmp/x.sock"), Ok(Target::Unix("/tmp/x.sock".into())));
    }

    #[test]
    fn refuses_the_rest() {
        for bad in ["", "9000", "host", ":9000", "host:", "host:99999", "host:0", "::1:9000", "[::1:9000", "unix://", "udp://127.0.0.1:9", "http://x:1"] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn displays_canonically() {
        for text in ["127.0.0.1:9000", "[::1]:9000", "unix:///tmp/x.sock"] {
            assert_eq!(Target::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Target::parse("tcp://h:1").unwrap().to_string(), "h:1");
    }
}
