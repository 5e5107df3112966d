//! The PROXY protocol header (HAProxy's, versions 1 and 2), parsed sans-IO.
//!
//! A load balancer that speaks the PROXY protocol opens each backend connection
//! with one header saying who the real client is; the backend reads it before
//! anything else and then treats the rest of the stream as the client's bytes.
//! [`parse`] is a push parser over the bytes received so far: it answers with a
//! whole header (its length and addresses), "need more", or an error, and never
//! looks past the header, so bytes that follow it in the same segment stay for
//! the caller to deliver. It is bounded: a version 1 header is at most
//! [`V1_MAX`] bytes, and a version 2 header at most [`V2_MAX`] bytes (the
//! address block plus [`V2_MAX_TLVS`] bytes of TLVs) although its length field
//! allows 64 KiB.
//!
//! [`ProxyHeader::encode_v1`] and [`ProxyHeader::encode_v2`] write headers, for
//! tests and for clients that sit behind nothing but want to claim an address.
//!
//! Out of scope: reading from sockets and enforcing [`HEADER_TIMEOUT`] (the runners read the
//! header under a deadline), and the TLVs' meaning (they are checked for framing
//! and skipped).
//!
//! ```
//! use netkit::frame::proxy::{self, ProxyHeader};
//!
//! let bytes = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET /";
//! assert_eq!(proxy::parse(&bytes[..20]).unwrap(), None); // need more
//! let h = proxy::parse(bytes).unwrap().unwrap();
//! assert_eq!(h.len, 41);
//! assert_eq!(h.source().unwrap().to_string(), "192.0.2.7:56324");
//! assert_eq!(&bytes[h.len..], b"GET /");
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a server should wait for a connection's header before closing it
/// (the blocking server and the reactor both use it).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest version 1 header, `\r\n` included (the specification's bound).
pub const V1_MAX: usize = 107;
/// The version 2 signature, the first 12 bytes of every version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The most TLV bytes a version 2 header may carry here.
pub const V2_MAX_TLVS: usize = 4096;
/// The longest version 2 header accepted: 16 fixed bytes, the largest (Unix)
/// address block and [`V2_MAX_TLVS`].
pub const V2_MAX: usize = 16 + V2_UNIX_LEN + V2_MAX_TLVS;

/// The version 1 prefix.
const V1_PREFIX: &[u8] = b"PROXY ";
/// Address block lengths of version 2 by family.
const V2_INET_LEN: usize = 12;
const V2_INET6_LEN: usize = 36;
const V2_UNIX_LEN: usize = 216;

/// Why a PROXY header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The connection does not start with a PROXY header of either version.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// A version 1 header has no `\r\n` within its 107 bytes.
    #[error("PROXY v1 header longer than {V1_MAX} bytes")]
    V1TooLong,
    /// A version 1 header is malformed; the text says which part.
    #[error("bad PROXY v1 header: {0}")]
    BadV1(&'static str),
    /// A version 2 header's version nibble is not 2.
    #[error("PROXY v2 header with version {0}")]
    BadVersion(u8),
    /// A version 2 header's command is neither LOCAL nor PROXY.
    #[error("PROXY v2 header with unknown command {0}")]
    BadCommand(u8),
    /// A version 2 header's address family or transport is unknown.
    #[error("PROXY v2 header with unknown family/transport byte {0:#04x}")]
    BadFamily(u8),
    /// A version 2 header's length is shorter than its address block.
    #[error("PROXY v2 header length {len} is shorter than its {need}-byte address block")]
    ShortAddresses {
        /// The length field.
        len: usize,
        /// The address block's size.
        need: usize,
    },
    /// A version 2 header carries more TLV bytes than [`V2_MAX_TLVS`].
    #[error("PROXY v2 header carries {0} bytes of TLVs (at most {V2_MAX_TLVS})")]
    TooManyTlvs(usize),
    /// A version 2 TLV runs past the end of the header.
    #[error("PROXY v2 TLV runs past the end of the header")]
    BadTlv,
}

/// Which version of the protocol a header was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text form: `PROXY TCP4 ...\r\n`.
    V1,
    /// The binary form, with the 12-byte signature.
    V2,
}

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAddrs {
    /// The connection was relayed for a client: its address and the address it
    /// connected to.
    Proxied {
        /// The real client.
        source: SocketAddr,
        /// The address the client connected to (the balancer's frontend).
        destination: SocketAddr,
    },
    /// The balancer speaks for itself (v2 LOCAL, a health check) or gives no
    /// usable address (v1 UNKNOWN, v2 UNSPEC or Unix addresses): the socket's own
    /// addresses apply.
    Local,
}

/// A whole PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The header's version.
    pub version: ProxyVersion,
    /// The addresses it carries.
    pub addrs: ProxyAddrs,
    /// Its length in bytes; whatever follows belongs to the client's stream.
    pub len: usize,
}

impl ProxyHeader {
    /// The real client's address, when the header names one.
    pub fn source(&self) -> Option<SocketAddr> {
        match self.addrs {
            ProxyAddrs::Proxied { source, .. } => Some(source),
            ProxyAddrs::Local => None,
        }
    }

    /// The address the client connected to, when the header names one.
    pub fn destination(&self) -> Option<SocketAddr> {
        match self.addrs {
            ProxyAddrs::Proxied { destination, .. } => Some(destination),
            ProxyAddrs::Local => None,
        }
    }

    /// Writes a version 1 header for `addrs` (`PROXY UNKNOWN\r\n` for
    /// [`ProxyAddrs::Local`], and for a source and destination of different
    /// families, which version 1 cannot say).
    pub fn encode_v1(addrs: &ProxyAddrs) -> Vec<u8> {
        match addrs {
            ProxyAddrs::Proxied {
                source: s,
                destination: d,
            } => match (s.ip(), d.ip()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    format!("PROXY TCP4 {a} {b} {} {}\r\n", s.port(), d.port()).into_bytes()
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    format!("PROXY TCP6 {a} {b} {} {}\r\n", s.port(), d.port()).into_bytes()
                }
                _ => b"PROXY UNKNOWN\r\n".to_vec(),
            },
            ProxyAddrs::Local => b"PROXY UNKNOWN\r\n".to_vec(),
        }
    }

    /// Writes a version 2 header for `addrs` (a LOCAL header for
    /// [`ProxyAddrs::Local`]; IPv4 addresses are written as IPv4-mapped IPv6
    /// when the other end is IPv6).
    pub fn encode_v2(addrs: &ProxyAddrs) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        match addrs {
            ProxyAddrs::Local => out.extend_from_slice(&[0x20, 0x00, 0, 0]),
            ProxyAddrs::Proxied {
                source: s,
                destination: d,
            } => match (s.ip(), d.ip()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    out.extend_from_slice(&[0x21, 0x11, 0, V2_INET_LEN as u8]);
                    out.extend_from_slice(&a.octets());
                    out.extend_from_slice(&b.octets());
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
                (a, b) => {
                    out.extend_from_slice(&[0x21, 0x21, 0, V2_INET6_LEN as u8]);
                    out.extend_from_slice(&v6(a).octets());
                    out.extend_from_slice(&v6(b).octets());
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
            },
        }
        out
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// Parses the PROXY header at the start of `buf`, the bytes received so far.
///
/// Returns `Ok(Some(header))` once the whole header is there (`header.len`
/// bytes; the rest of `buf` is the client's), `Ok(None)` when `buf` is a valid
/// but incomplete prefix, and an error as soon as the bytes cannot be a header
/// (so a client that sends no header is refused at its first byte).
///
/// # Errors
///
/// [`ProxyError`]: not a header, a malformed one, or one over the bounds.
pub fn parse(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == V1_PREFIX[0] {
        parse_v1(buf)
    } else if first == V2_SIGNATURE[0] {
        parse_v2(buf)
    } else {
        Err(ProxyError::NotProxy)
    }
}

/// Version 1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(ProxyError::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError::V1TooLong)
        } else {
            Ok(None)
        };
    };
    if window[cr] == b'\n' {
        return Err(ProxyError::BadV1("line ends in a bare LF"));
    }
    match window.get(cr + 1) {
        None if cr + 1 >= V1_MAX => return Err(ProxyError::V1TooLong),
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(ProxyError::BadV1("CR not followed by LF")),
    }
    let line = &window[V1_PREFIX.len()..cr];
    let len = cr + 2;
    let text = std::str::from_utf8(line).map_err(|_| ProxyError::BadV1("not ASCII"))?;
    let mut fields = text.split(' ');
    let proto = fields.next().unwrap_or("");
    if proto == "UNKNOWN" {
        // The rest of the line, whatever it is, is to be ignored.
        return Ok(Some(ProxyHeader {
            version: ProxyVersion::V1,
            addrs: ProxyAddrs::Local,
            len,
        }));
    }
    let v6 = match proto {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(ProxyError::BadV1("protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::BadV1("wrong number of fields"));
    };
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        if v6 {
            s.parse::<Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| ProxyError::BadV1("bad IPv6 address"))
        } else {
            s.parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| ProxyError::BadV1("bad IPv4 address"))
        }
    };
    let source = SocketAddr::new(ip(src)?, port(sport)?);
    let destination = SocketAddr::new(ip(dst)?, port(dport)?);
    Ok(Some(ProxyHeader {
        version: ProxyVersion::V1,
        addrs: ProxyAddrs::Proxied {
            source,
            destination,
        },
        len,
    }))
}

/// A version 1 port: 1 to 5 decimal digits, no sign, no leading zero, at most 65535.
fn port(s: &str) -> Result<u16, ProxyError> {
    let ok = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !ok {
        return Err(ProxyError::BadV1("bad port"));
    }
    s.parse()
        .map_err(|_| ProxyError::BadV1("port out of range"))
}

/// Version 2: signature, version/command, family/transport, length, addresses, TLVs.
fn parse_v2(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(ProxyError::NotProxy);
    }
    let Some(&[ver_cmd, fam, hi, lo]) = buf.get(12..16) else {
        // Check what is there of the fixed part before asking for more.
        if let Some(&ver_cmd) = buf.get(12) {
            check_ver_cmd(ver_cmd)?;
        }
        if let Some(&fam) = buf.get(13) {
            addr_len(fam)?;
        }
        return Ok(None);
    };
    let local = check_ver_cmd(ver_cmd)?;
    let need = addr_len(fam)?;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len < need {
        return Err(ProxyError::ShortAddresses { len, need });
    }
    if len - need > V2_MAX_TLVS {
        return Err(ProxyError::TooManyTlvs(len - need));
    }
    let Some(body) = buf.get(16..16 + len) else {
        return Ok(None);
    };
    let (addrs, tlvs) = body.split_at(need);
    check_tlvs(tlvs)?;
    let addrs = if local {
        ProxyAddrs::Local
    } else {
        v2_addrs(fam, addrs)
    };
    Ok(Some(ProxyHeader {
        version: ProxyVersion::V2,
        addrs,
        len: 16 + len,
    }))
}

/// Checks the version/command byte; true for LOCAL.
fn check_ver_cmd(b: u8) -> Result<bool, ProxyError> {
    if b >> 4 != 2 {
        return Err(ProxyError::BadVersion(b >> 4));
    }
    match b & 0x0f {
        0 => Ok(true),
        1 => Ok(false),
        c => Err(ProxyError::BadCommand(c)),
    }
}

/// The address block length for a family/transport byte.
fn addr_len(fam: u8) -> Result<usize, ProxyError> {
    if fam & 0x0f > 2 {
        return Err(ProxyError::BadFamily(fam));
    }
    match fam >> 4 {
        0 => Ok(0),
        1 => Ok(V2_INET_LEN),
        2 => Ok(V2_INET6_LEN),
        3 => Ok(V2_UNIX_LEN),
        _ => Err(ProxyError::BadFamily(fam)),
    }
}

/// The addresses of a PROXY command (UNSPEC and Unix give [`ProxyAddrs::Local`]).
fn v2_addrs(fam: u8, a: &[u8]) -> ProxyAddrs {
    let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
    match (fam >> 4, a.len()) {
        (1, V2_INET_LEN) => ProxyAddrs::Proxied {
            source: SocketAddr::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]).into(), port(8)),
            destination: SocketAddr::new(Ipv4Addr::new(a[4], a[5], a[6], a[7]).into(), port(10)),
        },
        (2, V2_INET6_LEN) => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            ProxyAddrs::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        _ => ProxyAddrs::Local,
    }
}

/// Checks that the TLVs (type, 16-bit length, value) exactly fill their space.
fn check_tlvs(mut t: &[u8]) -> Result<(), ProxyError> {
    while !t.is_empty() {
        let Some(&[_, hi, lo]) = t.get(..3) else {
            return Err(ProxyError::BadTlv);
        };
        let end = 3 + usize::from(u16::from_be_bytes([hi, lo]));
        t = t.get(end..).ok_or(ProxyError::BadTlv)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn proxied(s: &str, d: &str) -> ProxyAddrs {
        ProxyAddrs::Proxied {
            source: sa(s),
            destination: sa(d),
        }
    }

    /// Every prefix of a header is "need more", the whole is the header.
    fn whole_and_prefixes(bytes: &[u8]) -> ProxyHeader {
        for i in 0..bytes.len() {
            assert_eq!(parse(&bytes[..i]), Ok(None), "prefix {i} of {bytes:?}");
        }
        let h = parse(bytes).unwrap().unwrap();
        assert_eq!(h.len, bytes.len());
        h
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let h = whole_and_prefixes(b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n");
        assert_eq!(h.version, ProxyVersion::V1);
        assert_eq!(h.addrs, proxied("192.0.2.7:56324", "10.0.0.1:443"));
        let h = whole_and_prefixes(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
        assert_eq!(h.addrs, proxied("[2001:db8::1]:1", "[::1]:65535"));
        let h = whole_and_prefixes(b"PROXY UNKNOWN\r\n");
        assert_eq!(h.addrs, ProxyAddrs::Local);
        let h = whole_and_prefixes(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
        assert_eq!(h.addrs, ProxyAddrs::Local);
    }

    #[test]
    fn v1_bytes_after_the_header_are_left_alone() {
        let b = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhello\n";
        let h = parse(b).unwrap().unwrap();
        assert_eq!(&b[h.len..], b"hello\n");
    }

    #[test]
    fn v1_malformed() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
            b"PROXY TCP4 300.2.3.4 5.6.7.8 1 2\r\n",
        ];
        for b in bad {
            assert!(
                matches!(parse(b), Err(ProxyError::BadV1(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(b),
                parse(b)
            );
        }
        assert_eq!(parse(b"GET / HTTP/1.0\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"PROXX"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"h"), Err(ProxyError::NotProxy));
    }

    #[test]
    fn v1_is_bounded() {
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX - 1, b'x');
        assert_eq!(parse(&long), Ok(None));
        long.push(b'x');
        assert_eq!(parse(&long), Err(ProxyError::V1TooLong));
        // 105 bytes of line and CRLF is the largest header.
        let mut max = b"PROXY UNKNOWN ".to_vec();
        max.resize(V1_MAX - 2, b'x');
        max.extend_from_slice(b"\r\n");
        assert_eq!(parse(&max).unwrap().unwrap().len, V1_MAX);
        let mut over = b"PROXY UNKNOWN ".to_vec();
        over.resize(V1_MAX - 1, b'x');
        over.extend_from_slice(b"\r\n");
        assert_eq!(parse(&over), Err(ProxyError::V1TooLong));
    }

    #[test]
    fn v2_round_trips_and_prefixes() {
        for addrs in [
            proxied("192.0.2.7:56324", "10.0.0.1:443"),
            proxied("[2001:db8::1]:1", "[::1]:65535"),
            ProxyAddrs::Local,
        ] {
            let bytes = ProxyHeader::encode_v2(&addrs);
            let h = whole_and_prefixes(&bytes);
            assert_eq!(h.version, ProxyVersion::V2);
            assert_eq!(h.addrs, addrs);
            let text = ProxyHeader::encode_v1(&addrs);
            assert_eq!(whole_and_prefixes(&text).addrs, addrs);
        }
    }

    #[test]
    fn v2_tlvs_unix_and_unspec() {
        let mut b = ProxyHeader::encode_v2(&proxied("1.2.3.4:5", "6.7.8.9:10"));
        // Two TLVs: ALPN "h2" and an empty NOOP.
        b.extend_from_slice(&[0x01, 0, 2, b'h', b'2', 0x04, 0, 0]);
        b[15] += 8;
        b.extend_from_slice(b"data");
        let h = parse(&b).unwrap().unwrap();
        assert_eq!(h.len, b.len() - 4);
        assert_eq!(h.source(), Some(sa("1.2.3.4:5")));
        // A TLV that runs past the end.
        let mut bad = ProxyHeader::encode_v2(&proxied("1.2.3.4:5", "6.7.8.9:10"));
        bad.extend_from_slice(&[0x01, 0, 9, b'h']);
        bad[15] += 4;
        assert_eq!(parse(&bad), Err(ProxyError::BadTlv));
        // Unix addresses and UNSPEC: the socket's own addresses apply.
        let mut unix = V2_SIGNATURE.to_vec();
        unix.extend_from_slice(&[0x21, 0x31, 0, 216]);
        unix.resize(16 + 216, 0);
        assert_eq!(parse(&unix).unwrap().unwrap().addrs, ProxyAddrs::Local);
        let mut unspec = V2_SIGNATURE.to_vec();
        unspec.extend_from_slice(&[0x21, 0x00, 0, 0]);
        assert_eq!(parse(&unspec).unwrap().unwrap().addrs, ProxyAddrs::Local);
    }

    #[test]
    fn v2_malformed_and_bounded() {
        let with = |ver_cmd: u8, fam: u8, len: u16| {
            let mut b = V2_SIGNATURE.to_vec();
            b.push(ver_cmd);
            b.push(fam);
            b.extend_from_slice(&len.to_be_bytes());
            b
        };
        assert_eq!(parse(&with(0x11, 0x11, 12)), Err(ProxyError::BadVersion(1)));
        assert_eq!(parse(&with(0x22, 0x11, 12)), Err(ProxyError::BadCommand(2)));
        assert_eq!(
            parse(&with(0x21, 0x41, 12)),
            Err(ProxyError::BadFamily(0x41))
        );
        assert_eq!(
            parse(&with(0x21, 0x13, 12)),
            Err(ProxyError::BadFamily(0x13))
        );
        assert_eq!(
            parse(&with(0x21, 0x11, 11)),
            Err(ProxyError::ShortAddresses { len: 11, need: 12 })
        );
        assert_eq!(
            parse(&with(0x21, 0x11, 12 + 4097)),
            Err(ProxyError::TooManyTlvs(4097))
        );
        assert_eq!(parse(&with(0x21, 0x11, 12 + 4096)), Ok(None));
        // Errors in the fixed part are found before the length arrives.
        assert_eq!(
            parse(&with(0x31, 0x11, 0)[..13]),
            Err(ProxyError::BadVersion(3))
        );
        assert_eq!(
            parse(&with(0x21, 0x51, 0)[..14]),
            Err(ProxyError::BadFamily(0x51))
        );
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\r\n\r\n"), Ok(None));
    }

    #[test]
    fn mixed_families_encode_as_unknown_in_v1_and_mapped_in_v2() {
        let mixed = proxied("1.2.3.4:5", "[::1]:6");
        assert_eq!(ProxyHeader::encode_v1(&mixed), b"PROXY UNKNOWN\r\n");
        let h = parse(&ProxyHeader::encode_v2(&mixed)).unwrap().unwrap();
        assert_eq!(h.source(), Some(sa("[::ffff:1.2.3.4]:5")));
        assert_eq!(h.destination(), Some(sa("[::1]:6")));
    }
}
