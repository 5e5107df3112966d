//! The address grammar every netkit command and server shares: parsing,
//! canonical printing and name resolution.
//!
//! In scope: `HOST:PORT`, `tcp://HOST:PORT`, `udp://HOST:PORT`,
//! `unix:///path`, `unix-dgram:///path` and bracketed IPv6 (`[::1]:PORT`),
//! with port 0 meaning "pick a free port". Out of scope: opening sockets (see
//! the listener, connect and datagram modules).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// The longest Unix socket path the kernel accepts (`sun_path` less its NUL).
pub const UNIX_PATH_MAX: usize = 107;

const EXPECTED: &str =
    "expected HOST:PORT, tcp://HOST:PORT, udp://HOST:PORT, [IPv6]:PORT, unix:///path or unix-dgram:///path";

/// A malformed address. Every message quotes the input and names the forms
/// that are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// The input was empty (or only whitespace).
    #[error("empty address; {EXPECTED}")]
    Empty,
    /// A `scheme://` prefix other than tcp, udp, unix or unix-dgram.
    #[error("invalid address {input:?}: unknown scheme {scheme:?}; {EXPECTED}")]
    UnknownScheme {
        /// The address as given.
        input: String,
        /// The scheme found before `://`.
        scheme: String,
    },
    /// A host address without a `:PORT`.
    #[error("invalid address {input:?}: missing :PORT; {EXPECTED}")]
    MissingPort {
        /// The address as given.
        input: String,
    },
    /// The port is not a number from 0 to 65535.
    #[error(
        "invalid address {input:?}: port {port:?} is not a number from 0 to 65535; {EXPECTED}"
    )]
    BadPort {
        /// The address as given.
        input: String,
        /// The text found where the port should be.
        port: String,
    },
    /// The host is empty or contains characters no host name or IP address has.
    #[error("invalid address {input:?}: {reason}; {EXPECTED}")]
    BadHost {
        /// The address as given.
        input: String,
        /// What is wrong with the host part.
        reason: String,
    },
    /// An IPv6 address written without brackets, e.g. `::1:80`.
    #[error("invalid address {input:?}: an IPv6 address must be in brackets, as in [::1]:PORT")]
    UnbracketedIpv6 {
        /// The address as given.
        input: String,
    },
    /// `unix://` or `unix-dgram://` with nothing after it.
    #[error("invalid address {input:?}: missing socket path; expected unix:///path or unix-dgram:///path")]
    EmptyPath {
        /// The address as given.
        input: String,
    },
    /// A Unix socket path containing a NUL byte.
    #[error("invalid address {input:?}: socket path contains a NUL byte; expected unix:///path or unix-dgram:///path")]
    NulInPath {
        /// The address as given.
        input: String,
    },
    /// A Unix socket path longer than the kernel accepts.
    #[error("invalid address {input:?}: socket path is {len} bytes, longer than the {UNIX_PATH_MAX}-byte limit for Unix sockets")]
    PathTooLong {
        /// The address as given.
        input: String,
        /// The path's length in bytes.
        len: usize,
    },
}

/// A host (name or IP address, without brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// A host name (`localhost`), an IPv4 address or an IPv6 address (without brackets).
    pub host: String,
    /// The port; 0 asks the system for a free one when binding.
    pub port: u16,
}

impl HostPort {
    /// Builds a `HostPort` from a socket address.
    pub fn from_socket_addr(addr: SocketAddr) -> HostPort {
        HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// Resolves the host through `getaddrinfo(3)` (an IP address is used as
    /// is) into every socket address it names, in the resolver's order.
    ///
    /// ```
    /// use netkit::net::HostPort;
    ///
    /// let hp = HostPort { host: "localhost".into(), port: 80 };
    /// assert!(hp.resolve()?.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The resolver's error, with the host in the message; `NotFound` when the
    /// name resolves to no address.
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {:?}: {e}", self.host)))?
            .collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("cannot resolve {:?}: no addresses", self.host),
            ));
        }
        Ok(addrs)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> Self {
        HostPort::from_socket_addr(addr)
    }
}

/// Where to listen or connect: a TCP or UDP host and port, or a Unix stream or
/// datagram socket path.
///
/// ```
/// use netkit::net::Address;
///
/// let a: Address = "[::1]:9000".parse()?;
/// assert_eq!(a.to_string(), "[::1]:9000");
/// let u = Address::parse("unix-dgram:///tmp/log.sock")?;
/// assert!(!u.is_stream());
/// assert!(Address::parse("localhost").unwrap_err().to_string().contains("\"localhost\""));
/// # Ok::<(), netkit::net::AddrError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// TCP: `HOST:PORT` or `tcp://HOST:PORT`.
    Tcp(HostPort),
    /// UDP: `udp://HOST:PORT`.
    Udp(HostPort),
    /// A Unix stream socket: `unix:///path`.
    Unix(PathBuf),
    /// A Unix datagram socket: `unix-dgram:///path`.
    UnixDgram(PathBuf),
}

impl Address {
    /// Parses an address; see the type's documentation for the grammar.
    ///
    /// # Errors
    ///
    /// An [`AddrError`] quoting the input and naming the accepted forms.
    pub fn parse(input: &str) -> Result<Address, AddrError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        match s.split_once("://") {
            Some(("tcp", rest)) => parse_host_port(input, rest).map(Address::Tcp),
            Some(("udp", rest)) => parse_host_port(input, rest).map(Address::Udp),
            Some(("unix", rest)) => parse_path(input, rest).map(Address::Unix),
            Some(("unix-dgram", rest)) => parse_path(input, rest).map(Address::UnixDgram),
            Some((scheme, _)) => Err(AddrError::UnknownScheme {
                input: input.to_string(),
                scheme: scheme.to_string(),
            }),
            None => parse_host_port(input, s).map(Address::Tcp),
        }
    }

    /// The TCP address of `addr`.
    pub fn tcp(addr: SocketAddr) -> Address {
        Address::Tcp(HostPort::from_socket_addr(addr))
    }

    /// The UDP address of `addr`.
    pub fn udp(addr: SocketAddr) -> Address {
        Address::Udp(HostPort::from_socket_addr(addr))
    }

    /// True for stream addresses (TCP and Unix stream), false for datagram ones.
    pub fn is_stream(&self) -> bool {
        matches!(self, Address::Tcp(_) | Address::Unix(_))
    }

    /// The host and port of a TCP or UDP address.
    pub fn host_port(&self) -> Option<&HostPort> {
        match self {
            Address::Tcp(hp) | Address::Udp(hp) => Some(hp),
            Address::Unix(_) | Address::UnixDgram(_) => None,
        }
    }
}

impl FromStr for Address {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(hp) => write!(f, "{hp}"),
            Address::Udp(hp) => write!(f, "udp://{hp}"),
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::UnixDgram(p) => write!(f, "unix-dgram://{}", p.display()),
        }
    }
}

fn parse_path(input: &str, rest: &str) -> Result<PathBuf, AddrError> {
    if rest.is_empty() {
        return Err(AddrError::EmptyPath {
            input: input.to_string(),
        });
    }
    if rest.contains('\0') {
        return Err(AddrError::NulInPath {
            input: input.to_string(),
        });
    }
    if rest.len() > UNIX_PATH_MAX {
        return Err(AddrError::PathTooLong {
            input: input.to_string(),
            len: rest.len(),
        });
    }
    Ok(PathBuf::from(rest))
}

fn parse_host_port(input: &str, s: &str) -> Result<HostPort, AddrError> {
    let bad_host = |reason: &str| AddrError::BadHost {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| bad_host("unclosed '[' around an IPv6 address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| AddrError::MissingPort {
                input: input.to_string(),
            })?;
        let ip_part = host.split_once('%').map_or(host, |(ip, _)| ip);
        if ip_part.parse::<Ipv6Addr>().is_err() {
            return Err(bad_host(&format!(
                "{host:?} in brackets is not an IPv6 address"
            )));
        }
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(|| AddrError::MissingPort {
            input: input.to_string(),
        })?;
        if host.contains(':') {
            return Err(AddrError::UnbracketedIpv6 {
                input: input.to_string(),
            });
        }
        if host.is_empty() {
            return Err(bad_host(
                "missing host (use 0.0.0.0:PORT for every interface)",
            ));
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(bad_host(&format!("host contains {c:?}")));
        }
        (host, port)
    };
    if port.is_empty() {
        return Err(AddrError::MissingPort {
            input: input.to_string(),
        });
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| AddrError::BadPort {
            input: input.to_string(),
            port: port.to_string(),
        })?;
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}
