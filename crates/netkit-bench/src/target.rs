//! The server under test: ADDR parsed with netkit's address grammar
//! ([`netkit::net::Address`]), narrowed to what an echo benchmark can dial (TCP or
//! Unix stream, a real port), and resolved once, before the run, into the endpoint
//! every connection dials.
//!
//! Opening the connections is the workers' job, not this module's.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use netkit::net::Address;

/// A parsed ADDR: a TCP or Unix stream address with a non-zero port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(Address);

/// Where connections go: a resolved [`Target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A Unix stream socket path.
    Unix(PathBuf),
}

impl Target {
    /// Parses ADDR; the error says which forms are accepted.
    pub fn parse(text: &str) -> Result<Target, String> {
        let address = Address::parse(text).map_err(|e| e.to_string())?;
        match &address {
            Address::Udp(_) | Address::UnixDgram(_) => Err(format!(
                "invalid address {text:?}: netkit bench needs a stream address \
                 (HOST:PORT, tcp://HOST:PORT, [::1]:PORT or unix:///path)"
            )),
            Address::Tcp(hp) if hp.port == 0 => {
                Err(format!("invalid address {text:?}: port 0 names no server"))
            }
            _ => Ok(Target(address)),
        }
    }

    /// Resolves the host (TCP) once; the first address the resolver returns is the
    /// one every connection dials.
    pub fn resolve(&self) -> io::Result<Endpoint> {
        match &self.0 {
            Address::Tcp(hp) => hp
                .resolve()?
                .into_iter()
                .next()
                .map(Endpoint::Tcp)
                .ok_or_else(|| io::Error::other(format!("{hp} resolves to no address"))),
            Address::Unix(path) => Ok(Endpoint::Unix(path.clone())),
            other => Err(io::Error::other(format!("{other} is not a stream address"))),
        }
    }
}

impl fmt::Display for Target {
    /// The canonical spelling: `127.0.0.1:9000`, `[::1]:9000`, `unix:///tmp/x.sock`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_stream_forms() {
        for (text, canonical) in [
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("tcp://localhost:80", "localhost:80"),
            ("[::1]:9000", "[::1]:9000"),
            ("unix:///tmp/x.sock", "unix:///tmp/x.sock"),
        ] {
            assert_eq!(Target::parse(text).unwrap().to_string(), canonical);
        }
    }

    #[test]
    fn refuses_the_rest() {
        for bad in [
            "",
            "9000",
            "host",
            ":9000",
            "host:",
            "host:99999",
            "host:0",
            "::1:9000",
            "unix://",
            "udp://127.0.0.1:9",
            "unix-dgram:///tmp/x",
            "http://x:1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn resolves_literals_and_paths() {
        let tcp = Target::parse("127.0.0.1:9").unwrap().resolve().unwrap();
        assert_eq!(tcp, Endpoint::Tcp("127.0.0.1:9".parse().unwrap()));
        let unix = Target::parse("unix:///tmp/x.sock")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(unix, Endpoint::Unix("/tmp/x.sock".into()));
    }
}
