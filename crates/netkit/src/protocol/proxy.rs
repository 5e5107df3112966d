//! The PROXY protocol as a Protocol wrapper, for runners that have no header
//! phase of their own (the reactor): [`ProxyFactory`] wraps any [`Factory`] so
//! that each connection first reads a PROXY header (parsed by
//! [`frame::proxy`](crate::frame::proxy)), then builds the real Protocol with the
//! client's address in its [`ConnInfo`] and [`Transport::peer_addr`], and hands
//! it the bytes that followed the header as its first data.
//!
//! A connection whose header is missing, malformed or later than
//! [`HEADER_TIMEOUT`] is closed with a log
//! line, and the wrapped factory never sees it. Out of scope: sockets; the
//! blocking server reads the header itself before building the Protocol.
//!
//! ```
//! use netkit::frame::proxy::{ProxyAddrs, ProxyHeader};
//! use netkit::protocol::proxy::ProxyFactory;
//! use netkit::protocol::testing::Script;
//! use netkit::protocol::{ConnInfo, Factory, Protocol, Transport};
//!
//! struct Who;
//! impl Protocol for Who {
//!     fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
//!         let text = format!("{} says {}", t.peer_addr(), String::from_utf8_lossy(data));
//!         t.write(text.as_bytes());
//!     }
//! }
//!
//! let f = ProxyFactory::new(|_: &ConnInfo| Who);
//! let mut first = ProxyHeader::encode_v1(&ProxyAddrs::Proxied {
//!     source: "203.0.113.5:4000".parse().unwrap(),
//!     destination: "127.0.0.1:9000".parse().unwrap(),
//! });
//! first.extend_from_slice(b"hi");
//! let out = Script::new().data(&first).run(f.build(&ConnInfo {
//!     peer: "127.0.0.1:50000".parse::<std::net::SocketAddr>().unwrap().into(),
//!     local: "127.0.0.1:9000".parse::<std::net::SocketAddr>().unwrap().into(),
//! }));
//! assert_eq!(out.text(), "203.0.113.5:4000 says hi");
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::forward::pass_through;
use super::{CloseReason, ConnInfo, Factory, PeerAddr, Protocol, TimerId, Transport};
use crate::frame::proxy::{self, ProxyAddrs, HEADER_TIMEOUT, V2_MAX};

/// Wraps a [`Factory`]: every connection starts with a PROXY header.
pub struct ProxyFactory<F> {
    inner: Arc<F>,
    timeout: Duration,
}

impl<F> fmt::Debug for ProxyFactory<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyFactory")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<F: Factory> ProxyFactory<F> {
    /// Wraps `inner`, with the default header timeout.
    pub fn new(inner: F) -> Self {
        ProxyFactory {
            inner: Arc::new(inner),
            timeout: HEADER_TIMEOUT,
        }
    }

    /// Sets how long a connection may take to send its header.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<F: Factory> Factory for ProxyFactory<F> {
    type Proto = ProxyProtocol<F>;

    fn build(&self, conn: &ConnInfo) -> ProxyProtocol<F> {
        ProxyProtocol {
            factory: self.inner.clone(),
            timeout: self.timeout,
            info: conn.clone(),
            buf: Vec::new(),
            timer: None,
            inner: None,
            closed: false,
        }
    }

    fn shares_state(&self) -> bool {
        self.inner.shares_state()
    }
}

/// One connection of a [`ProxyFactory`]: reading the header, then the wrapped
/// Protocol.
pub struct ProxyProtocol<F: Factory> {
    factory: Arc<F>,
    timeout: Duration,
    info: ConnInfo,
    buf: Vec<u8>,
    timer: Option<TimerId>,
    inner: Option<F::Proto>,
    closed: bool,
}

impl<F: Factory> fmt::Debug for ProxyProtocol<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyProtocol")
            .field("info", &self.info)
            .field("header_done", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

/// The Transport the wrapped Protocol sees: the header's addresses, and closes
/// remembered so no event follows them.
struct Fixed<'a> {
    t: &'a mut dyn Transport,
    info: &'a ConnInfo,
    closed: &'a mut bool,
}

impl Transport for Fixed<'_> {
    pass_through!(t: output, flow, timers, mailbox);

    fn close(&mut self) {
        *self.closed = true;
        self.t.close();
    }
    fn abort(&mut self) {
        *self.closed = true;
        self.t.abort();
    }
    fn shutdown_write(&mut self) {
        self.t.shutdown_write();
    }
    fn peer_addr(&self) -> &PeerAddr {
        &self.info.peer
    }
    fn local_addr(&self) -> &PeerAddr {
        &self.info.local
    }
}

impl<F: Factory> ProxyProtocol<F> {
    /// Closes a connection whose header failed, with a log line.
    fn refuse(&mut self, why: &dyn fmt::Display, t: &mut dyn Transport) {
        tracing::warn!(peer = %self.info.peer, "PROXY protocol: {why}; closing the connection");
        self.closed = true;
        self.buf = Vec::new();
        t.abort();
    }

    /// Runs `f` on the wrapped Protocol with the fixed Transport, unless closed.
    fn with_inner(&mut self, t: &mut dyn Transport, f: impl FnOnce(&mut F::Proto, &mut Fixed<'_>)) {
        if self.closed {
            return;
        }
        if let Some(p) = self.inner.as_mut() {
            let mut fixed = Fixed {
                t,
                info: &self.info,
                closed: &mut self.closed,
            };
            f(p, &mut fixed);
        }
    }
}

impl<F: Factory> Protocol for ProxyProtocol<F> {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        self.timer = Some(t.call_later(self.timeout));
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        if self.inner.is_some() {
            self.with_inner(t, |p, t| p.data_received(data, t));
            return;
        }
        if self.closed {
            return;
        }
        self.buf.extend_from_slice(data);
        let header = match proxy::parse(&self.buf) {
            Ok(Some(h)) => h,
            Ok(None) if self.buf.len() <= V2_MAX => return,
            Ok(None) => return self.refuse(&"PROXY header too long", t),
            Err(e) => return self.refuse(&e, t),
        };
        if let Some(id) = self.timer.take() {
            t.cancel_timer(id);
        }
        if let ProxyAddrs::Proxied {
            source,
            destination,
        } = header.addrs
        {
            tracing::debug!(peer = %self.info.peer, client = %source, "PROXY header");
            self.info.peer = PeerAddr::Inet(source);
            self.info.local = PeerAddr::Inet(destination);
        }
        let rest = self.buf.split_off(header.len.min(self.buf.len()));
        self.buf = Vec::new();
        self.inner = Some(self.factory.build(&self.info));
        self.with_inner(t, |p, t| p.connection_made(t));
        if !rest.is_empty() {
            self.with_inner(t, |p, t| p.data_received(&rest, t));
        }
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        if self.inner.is_some() {
            self.with_inner(t, |p, t| p.eof_received(t));
        } else if !self.closed {
            self.refuse(&"connection closed before the PROXY header was complete", t);
        }
    }

    fn connection_lost(&mut self, reason: &CloseReason) {
        if let Some(p) = self.inner.as_mut() {
            p.connection_lost(reason);
        }
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        if self.timer == Some(id) {
            self.timer = None;
            if self.inner.is_none() && !self.closed {
                let why = format!("no PROXY header within {:?}", self.timeout);
                self.refuse(&why, t);
            }
            return;
        }
        self.with_inner(t, |p, t| p.timer_fired(id, t));
    }

    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        self.with_inner(t, |p, t| p.message_received(msg, t));
    }

    fn is_producer(&self) -> bool {
        !self.closed && self.inner.as_ref().is_some_and(|p| p.is_producer())
    }

    fn resume_producing(&mut self, t: &mut dyn Transport) {
        self.with_inner(t, |p, t| p.resume_producing(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::proxy::ProxyHeader;
    use crate::protocol::testing::Script;

    struct Echo;
    impl Protocol for Echo {
        fn connection_made(&mut self, t: &mut dyn Transport) {
            let hello = format!("[{} -> {}]", t.peer_addr(), t.local_addr());
            t.write(hello.as_bytes());
        }
        fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
            t.write(data);
        }
    }

    fn info() -> ConnInfo {
        ConnInfo {
            peer: PeerAddr::Inet("127.0.0.1:50000".parse().unwrap()),
            local: PeerAddr::Inet("127.0.0.1:9000".parse().unwrap()),
        }
    }

    fn header() -> Vec<u8> {
        ProxyHeader::encode_v2(&ProxyAddrs::Proxied {
            source: "198.51.100.3:1234".parse().unwrap(),
            destination: "192.0.2.1:80".parse().unwrap(),
        })
    }

    #[test]
    fn header_in_pieces_then_data() {
        let f = ProxyFactory::new(|_: &ConnInfo| Echo);
        let mut bytes = header();
        bytes.extend_from_slice(b"abc");
        let mut s = Script::new();
        for c in bytes.chunks(5) {
            s = s.data(c);
        }
        let out = s.data(b"def").run(f.build(&info()));
        assert_eq!(out.text(), "[198.51.100.3:1234 -> 192.0.2.1:80]abcdef");
        assert!(!out.closed && !out.aborted);
        assert!(out.pending_timers.is_empty(), "header timer cancelled");
    }

    #[test]
    fn missing_malformed_late_and_truncated_headers_abort() {
        let f = ProxyFactory::new(|_: &ConnInfo| Echo);
        let out = Script::new().data(b"hello\n").run(f.build(&info()));
        assert!(out.aborted && out.written.is_empty());
        let out = Script::new()
            .data(b"PROXY TCP4 1.2.3.4 x 1 2\r\n")
            .run(f.build(&info()));
        assert!(out.aborted && out.written.is_empty());
        let out = Script::new()
            .data(b"PROXY TCP4")
            .fire_timers()
            .run(f.build(&info()));
        assert!(out.aborted && out.written.is_empty());
        let out = Script::new().data(b"PROXY").eof().run(f.build(&info()));
        assert!(out.aborted && out.written.is_empty());
    }

    #[test]
    fn local_header_keeps_the_socket_addresses_and_eof_reaches_the_protocol() {
        let f = ProxyFactory::new(|_: &ConnInfo| Echo);
        let mut bytes = ProxyHeader::encode_v1(&ProxyAddrs::Local);
        bytes.extend_from_slice(b"x");
        let out = Script::new().data(&bytes).eof().run(f.build(&info()));
        assert_eq!(out.text(), "[127.0.0.1:50000 -> 127.0.0.1:9000]x");
        assert!(out.closed);
        assert_eq!(out.lost, Some(CloseReason::Done));
    }
}
