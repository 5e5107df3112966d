//! Watching a connection's traffic as a Protocol wrapper: [`TapFactory`] wraps
//! any [`Factory`] so that a [`Tap`] is told of every connection, every chunk
//! received and sent, and every close, numbered per connection — traffic dumps
//! (`--dump`) and audits, under every runner, without the wrapped Protocol
//! knowing.
//!
//! The tap sees what the wrapped Protocol sees: put it inside a
//! [`TlsFactory`](super::tls::TlsFactory) and it shows plaintext. File ranges
//! queued with [`Transport::write_file`] are reported by offset and length (their
//! bytes go from the file to the socket without passing through here).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use netkit::protocol::tap::{Tap, TapFactory};
//! use netkit::protocol::testing::Script;
//! use netkit::protocol::{CloseReason, ConnInfo, Factory, Protocol, Transport};
//!
//! struct Echo;
//! impl Protocol for Echo {
//!     fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
//!         t.write(data);
//!     }
//! }
//!
//! #[derive(Default)]
//! struct Count(Mutex<(usize, usize)>);
//! impl Tap for Count {
//!     fn received(&self, _conn: u64, data: &[u8]) {
//!         self.0.lock().unwrap().0 += data.len();
//!     }
//!     fn sent(&self, _conn: u64, data: &[u8]) {
//!         self.0.lock().unwrap().1 += data.len();
//!     }
//! }
//!
//! let tap = Arc::new(Count::default());
//! let f = TapFactory::new(tap.clone(), |_: &ConnInfo| Echo);
//! let info = ConnInfo {
//!     peer: "127.0.0.1:5000".parse::<std::net::SocketAddr>().unwrap().into(),
//!     local: "127.0.0.1:9000".parse::<std::net::SocketAddr>().unwrap().into(),
//! };
//! Script::new().data(b"hello").run(f.build(&info));
//! assert_eq!(*tap.0.lock().unwrap(), (5, 5));
//! ```

use std::fmt;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::forward::pass_through;
use super::{CloseReason, ConnInfo, Factory, Protocol, TimerId, Transport};

/// What a [`TapFactory`] reports. Connections are numbered from 1 in the order
/// they were built; every method has an empty default.
pub trait Tap: Send + Sync + 'static {
    /// Connection `conn` from `info.peer` started.
    fn opened(&self, conn: u64, info: &ConnInfo) {
        let _ = (conn, info);
    }
    /// `data` arrived from the peer.
    fn received(&self, conn: u64, data: &[u8]) {
        let _ = (conn, data);
    }
    /// `data` was queued for the peer.
    fn sent(&self, conn: u64, data: &[u8]) {
        let _ = (conn, data);
    }
    /// `len` bytes of a file, from `offset`, were queued for the peer.
    fn sent_file(&self, conn: u64, offset: u64, len: u64) {
        let _ = (conn, offset, len);
    }
    /// The peer half-closed (sent end-of-file).
    fn peer_eof(&self, conn: u64) {
        let _ = conn;
    }
    /// The connection ended.
    fn closed(&self, conn: u64, reason: &CloseReason) {
        let _ = (conn, reason);
    }
}

/// Wraps a [`Factory`]: every connection reports to a [`Tap`].
pub struct TapFactory<F, T: ?Sized> {
    inner: F,
    tap: Arc<T>,
    next: AtomicU64,
}

impl<F, T: ?Sized> fmt::Debug for TapFactory<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapFactory")
            .field("connections", &self.next.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<F: Factory, T: Tap + ?Sized> TapFactory<F, T> {
    /// Reports `inner`'s connections to `tap`.
    pub fn new(tap: Arc<T>, inner: F) -> Self {
        TapFactory {
            inner,
            tap,
            next: AtomicU64::new(0),
        }
    }
}

impl<F: Factory, T: Tap + ?Sized> Factory for TapFactory<F, T> {
    type Proto = TapProtocol<F::Proto, T>;

    fn build(&self, conn: &ConnInfo) -> TapProtocol<F::Proto, T> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.tap.opened(id, conn);
        TapProtocol {
            inner: self.inner.build(conn),
            tap: self.tap.clone(),
            id,
        }
    }

    fn shares_state(&self) -> bool {
        self.inner.shares_state()
    }
}

/// One connection of a [`TapFactory`].
pub struct TapProtocol<P, T: ?Sized> {
    inner: P,
    tap: Arc<T>,
    id: u64,
}

impl<P, T: ?Sized> fmt::Debug for TapProtocol<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapProtocol")
            .field("conn", &self.id)
            .finish_non_exhaustive()
    }
}

/// The Transport the wrapped Protocol sees: writes are reported, then passed on.
struct Tapped<'a, T: ?Sized> {
    t: &'a mut dyn Transport,
    tap: &'a T,
    id: u64,
}

impl<T: Tap + ?Sized> Transport for Tapped<'_, T> {
    fn write(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.tap.sent(self.id, data);
        }
        self.t.write(data);
    }
    fn write_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        self.tap.sent_file(self.id, offset, len);
        self.t.write_file(file, offset, len);
    }
    fn buffered(&self) -> usize {
        self.t.buffered()
    }
    pass_through!(t: ending, flow, addresses, timers, mailbox);
}

impl<P: Protocol, T: Tap + ?Sized> TapProtocol<P, T> {
    fn with(&mut self, t: &mut dyn Transport, f: impl FnOnce(&mut P, &mut dyn Transport)) {
        let mut tapped = Tapped {
            t,
            tap: &*self.tap,
            id: self.id,
        };
        f(&mut self.inner, &mut tapped);
    }
}

impl<P: Protocol, T: Tap + ?Sized> Protocol for TapProtocol<P, T> {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        self.with(t, |p, t| p.connection_made(t));
    }
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        self.tap.received(self.id, data);
        self.with(t, |p, t| p.data_received(data, t));
    }
    fn eof_received(&mut self, t: &mut dyn Transport) {
        self.tap.peer_eof(self.id);
        self.with(t, |p, t| p.eof_received(t));
    }
    fn connection_lost(&mut self, reason: &CloseReason) {
        self.tap.closed(self.id, reason);
        self.inner.connection_lost(reason);
    }
    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        self.with(t, |p, t| p.timer_fired(id, t));
    }
    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        self.with(t, |p, t| p.message_received(msg, t));
    }
    fn is_producer(&self) -> bool {
        self.inner.is_producer()
    }
    fn resume_producing(&mut self, t: &mut dyn Transport) {
        self.with(t, |p, t| p.resume_producing(t));
    }
}
