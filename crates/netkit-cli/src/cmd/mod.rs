//! One module per subcommand, and what they share: the usage-error type, the
//! `HOST PORT` form of an address, and bind errors that name the address once.

use std::fmt;

use netkit::net::Address;

pub mod bench;
pub mod calcsize;
pub mod connect;
pub mod fetch;
pub mod listen;
pub mod pack;
pub mod relay;
pub mod send;
pub mod serve;
pub mod unpack;
pub mod zipinfo;

/// A mistake in how the command was called (a malformed address or URL, an
/// unknown service, an impossible combination of options): `main` prints it and
/// exits 2, where a runtime or data error exits 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error (exit 2) with this message, for `return Err(usage(...))` or
/// `.map_err(|e| usage(...))`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Whether an error (or anything in its chain) is a [`UsageError`].
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<UsageError>().is_some())
}

/// Parses an address given on the command line; a malformed one is a usage
/// error.
pub fn parse_address(text: &str) -> anyhow::Result<Address> {
    // The parser's message names the text and what was expected.
    Address::parse(text).map_err(|e| usage(e.to_string()))
}

/// `ADDR [PORT]` as one address, for ncat's habit of `HOST PORT`: with a PORT,
/// ADDR is a host (an IPv6 literal with or without brackets, and an optional
/// `tcp://`, `udp://` or `tls://` in front) and the result is `HOST:PORT`.
/// Without one, ADDR is returned as it is.
///
/// # Errors
///
/// A usage error when PORT is not a port number, or ADDR is a Unix address or
/// already has a port.
pub fn join_port(addr: &str, port: Option<&str>) -> anyhow::Result<String> {
    let Some(port) = port else {
        return Ok(addr.to_string());
    };
    let port: u16 = port.parse().map_err(|_| {
        usage(format!(
            "invalid port `{port}`: expected a number from 0 to 65535"
        ))
    })?;
    let (scheme, host) = match addr.split_once("://") {
        Some((scheme, host)) => (&addr[..scheme.len() + 3], host),
        None => ("", addr),
    };
    if scheme.starts_with("unix") {
        return Err(usage(format!(
            "`{addr}` is a Unix address: it takes no PORT"
        )));
    }
    let colons = host.matches(':').count();
    let has_port = if host.starts_with('[') {
        host.contains("]:")
    } else {
        colons == 1
    };
    if host.is_empty() || has_port {
        return Err(usage(format!(
            "`{addr}` with PORT {port}: give HOST PORT or HOST:PORT, not both"
        )));
    }
    if colons > 1 && !host.starts_with('[') {
        return Ok(format!("{scheme}[{host}]:{port}"));
    }
    Ok(format!("{scheme}{host}:{port}"))
}

/// A failed bind of `addr`, naming the address once (the library's error
/// usually names it already).
pub fn bind_error(addr: &Address, e: std::io::Error) -> anyhow::Error {
    if e.to_string().contains(&addr.to_string()) {
        anyhow::Error::new(e)
    } else {
        anyhow::Error::new(e).context(format!("cannot listen on {addr}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_join_into_one_address() {
        let j = |a: &str, p: &str| join_port(a, Some(p)).map_err(|e| e.to_string());
        assert_eq!(j("127.0.0.1", "9000").unwrap(), "127.0.0.1:9000");
        assert_eq!(j("localhost", "0").unwrap(), "localhost:0");
        assert_eq!(j("::1", "9000").unwrap(), "[::1]:9000");
        assert_eq!(j("[::1]", "9000").unwrap(), "[::1]:9000");
        assert_eq!(j("udp://127.0.0.1", "7").unwrap(), "udp://127.0.0.1:7");
        assert_eq!(
            j("tls://example.test", "443").unwrap(),
            "tls://example.test:443"
        );
        assert_eq!(join_port("127.0.0.1:1", None).unwrap(), "127.0.0.1:1");
        for (a, p) in [
            ("127.0.0.1:1", "2"),
            ("[::1]:1", "2"),
            ("unix:///tmp/s", "1"),
            ("127.0.0.1", "http"),
            ("127.0.0.1", "65536"),
            ("", "1"),
        ] {
            let e = join_port(a, Some(p)).unwrap_err();
            assert!(is_usage(&e), "{a} {p}: {e}");
        }
    }
}
