//! The UDP services: each datagram is answered with at most one datagram.
//!
//! Answers seed 004 (`udp_server.py`, which answers every datagram), with the
//! standard services instead of its fixed `Hi!`: [`UdpEcho`] (RFC 862),
//! [`UdpUpper`], [`UdpDiscard`] (RFC 863), [`UdpDaytime`] (RFC 867) and
//! [`UdpChargen`] (RFC 864). Each is a [`DatagramService`]: stateless per packet
//! (chargen keeps only an atomic line counter), so any runner may call it from any
//! thread. Sockets and buffer sizes are the runner's business.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use crate::protocol::{DatagramService, PeerAddr};

use super::chargen::{chargen_line, CYCLE_LINES};
use super::daytime::daytime_line;

/// Answers each datagram with the same bytes.
///
/// ```
/// use netkit::protocol::{DatagramService, PeerAddr};
/// use netkit::services::UdpEcho;
/// let peer = PeerAddr::Inet(([127, 0, 0, 1], 5000).into());
/// assert_eq!(UdpEcho.datagram_received(b"ping", &peer), Some(b"ping".to_vec()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpEcho;

impl DatagramService for UdpEcho {
    fn datagram_received(&self, data: &[u8], _peer: &PeerAddr) -> Option<Vec<u8>> {
        Some(data.to_vec())
    }
}

/// Answers each datagram with its bytes ASCII upper-cased (other bytes unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpUpper;

impl DatagramService for UdpUpper {
    fn datagram_received(&self, data: &[u8], _peer: &PeerAddr) -> Option<Vec<u8>> {
        Some(data.to_ascii_uppercase())
    }
}

/// Drops every datagram without answering.
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpDiscard;

impl DatagramService for UdpDiscard {
    fn datagram_received(&self, _data: &[u8], _peer: &PeerAddr) -> Option<Vec<u8>> {
        None
    }
}

/// Answers each datagram with the daytime line (see [`daytime_line`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpDaytime;

impl DatagramService for UdpDaytime {
    fn datagram_received(&self, _data: &[u8], _peer: &PeerAddr) -> Option<Vec<u8>> {
        Some(daytime_line(SystemTime::now()).into_bytes())
    }
}

/// Answers each datagram with the next line of the chargen pattern (as BSD inetd
/// does): 74 bytes, each answer starting one character later than the previous.
#[derive(Debug, Default)]
pub struct UdpChargen {
    next_line: AtomicUsize,
}

impl UdpChargen {
    /// A generator starting at line 0.
    pub fn new() -> Self {
        UdpChargen::default()
    }
}

impl DatagramService for UdpChargen {
    fn datagram_received(&self, _data: &[u8], _peer: &PeerAddr) -> Option<Vec<u8>> {
        let n = self
            .next_line
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some((n + 1) % CYCLE_LINES)
            })
            .unwrap_or_default();
        Some(chargen_line(n).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerAddr {
        PeerAddr::Inet(([127, 0, 0, 1], 40000).into())
    }

    #[test]
    fn echo_returns_the_datagram_even_empty_or_binary() {
        let p = peer();
        assert_eq!(UdpEcho.datagram_received(b"", &p), Some(Vec::new()));
        let bin: Vec<u8> = (0..=255).collect();
        assert_eq!(UdpEcho.datagram_received(&bin, &p), Some(bin.clone()));
    }

    #[test]
    fn upper_changes_only_ascii_letters() {
        let p = peer();
        let got = UdpUpper.datagram_received(b"data \xc3\xa9t\xff\r\n", &p);
        assert_eq!(got, Some(b"DATA \xc3\xa9T\xff\r\n".to_vec()));
    }

    #[test]
    fn discard_never_answers() {
        assert_eq!(UdpDiscard.datagram_received(b"x", &peer()), None);
    }

    #[test]
    fn daytime_answers_one_crlf_line() {
        let got = UdpDaytime.datagram_received(b"", &peer()).unwrap();
        assert!(got.ends_with(b"-UTC\r\n"));
        assert_eq!(got.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn chargen_rotates_one_line_per_datagram() {
        let svc = UdpChargen::new();
        for n in 0..200 {
            let got = svc.datagram_received(b"", &peer()).unwrap();
            assert_eq!(got, chargen_line(n), "datagram {n}");
        }
    }
}
