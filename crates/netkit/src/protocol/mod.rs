//! The Protocol model (Twisted's, sans-IO): [`Protocol`], [`Transport`] and [`Factory`].
//!
//! A [`Protocol`] is a state machine that reacts to connection events —
//! [`connection_made`](Protocol::connection_made), [`data_received`](Protocol::data_received),
//! [`eof_received`](Protocol::eof_received), [`connection_lost`](Protocol::connection_lost) —
//! and answers by calling its [`Transport`]. Nothing in this module touches a socket:
//! a runner (the blocking runner in `server`, the event loop in `reactor`, or the
//! [`testing`] script runner) owns the I/O and calls the Protocol. That is what lets
//! one Protocol run unchanged under every concurrency mode.
//!
//! In scope: the traits, cross-connection [`Mailbox`]es, the LineReceiver-style
//! ([`line`](mod@line)) and Int32StringReceiver-style ([`int32`]) helpers, the PROXY
//! protocol, TLS and traffic taps as Protocol wrappers ([`proxy`], [`tls`], [`tap`]), and a
//! socket-free test runner.
//! Out of scope: sockets, threads, event loops.
//!
//! ```
//! use netkit::protocol::{Protocol, Transport, testing::Script};
//!
//! /// Echo, as in Twisted's first example.
//! struct Echo;
//!
//! impl Protocol for Echo {
//!     fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
//!         t.write(data);
//!     }
//! }
//!
//! let out = Script::new().data(b"hello").eof().run(Echo);
//! assert_eq!(out.written, b"hello");
//! assert!(out.closed);
//! ```

mod forward;
pub mod int32;
mod limits;
pub mod line;
mod mailbox;
pub mod proxy;
pub mod tap;
pub mod testing;
pub mod tls;
pub mod trust;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

pub use crate::net::PeerAddr;
pub use limits::{
    DEFAULT_GRACE, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_LINE, HIGH_WATER,
    LOW_WATER, MAILBOX_LIMIT,
};
pub use mailbox::{Mailbox, MailboxError, MailboxReceiver, Wake};

/// Identifies a timer a Protocol asked for with [`Transport::call_later`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// Why a connection ended, as told to [`Protocol::connection_lost`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Closed in an orderly way, by either side.
    Done,
    /// The peer reset the connection, or it failed with an I/O error.
    Error(String),
    /// The connection was silent for longer than the idle timeout.
    IdleTimeout,
    /// The server is shutting down and the grace period ended.
    Shutdown,
    /// The connection was closed with [`Transport::abort`].
    Aborted,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Done => f.write_str("connection closed"),
            CloseReason::Error(e) => write!(f, "connection failed: {e}"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Shutdown => f.write_str("server shutting down"),
            CloseReason::Aborted => f.write_str("connection aborted"),
        }
    }
}

/// What a Protocol can do to its connection. Implemented by every runner.
///
/// Writes are queued: [`write`](Transport::write) never blocks and never fails; a
/// runner flushes the queue as the peer reads. When the queue passes the runner's
/// high watermark it stops reading from the peer until the queue drains (so a peer
/// that never reads cannot grow the server's memory), and producers
/// ([`Protocol::is_producer`]) are only asked for more output below the low watermark.
pub trait Transport {
    /// Queues `data` for the peer (Twisted's `transport.write`).
    fn write(&mut self, data: &[u8]);

    /// Queues `len` bytes of `file`, starting at `offset`, after whatever is queued.
    /// Runners send it with `sendfile(2)` (zero-copy) where they can, a bounded
    /// chunk at a time, so a large file never sits in memory. The range counts toward
    /// [`buffered`](Transport::buffered) until it is sent. If the file turns out
    /// shorter than `offset + len`, the connection is closed (the peer was promised
    /// bytes that do not exist) with [`CloseReason::Error`].
    fn write_file(&mut self, file: std::sync::Arc<std::fs::File>, offset: u64, len: u64);

    /// Bytes queued and not yet handed to the kernel.
    fn buffered(&self) -> usize;

    /// Closes the connection once the queued bytes are flushed (`loseConnection`).
    /// No more events are delivered except [`Protocol::connection_lost`].
    fn close(&mut self);

    /// Closes the connection at once, dropping queued bytes (`abortConnection`).
    fn abort(&mut self);

    /// Sends end-of-file (half-close) once the queued bytes are flushed
    /// (`loseWriteConnection`); reading goes on.
    fn shutdown_write(&mut self);

    /// Stops delivering [`Protocol::data_received`] until [`resume_reading`](Transport::resume_reading).
    fn pause_reading(&mut self);

    /// Delivers data again after [`pause_reading`](Transport::pause_reading).
    fn resume_reading(&mut self);

    /// The peer's address (behind a PROXY-protocol listener: the real client's).
    fn peer_addr(&self) -> &PeerAddr;

    /// The local address of the connection.
    fn local_addr(&self) -> &PeerAddr;

    /// Asks for [`Protocol::timer_fired`] after `delay` (`reactor.callLater`).
    fn call_later(&mut self, delay: Duration) -> TimerId;

    /// Cancels a timer; a timer that already fired or was cancelled is ignored.
    fn cancel_timer(&mut self, id: TimerId);

    /// A handle other connections (or threads) can use to send this connection
    /// messages, delivered as [`Protocol::message_received`].
    fn mailbox(&mut self) -> Mailbox;
}

/// A connection's behaviour, written once and run by every runner.
///
/// Every method has a default except [`data_received`](Protocol::data_received). The
/// default [`eof_received`](Protocol::eof_received) closes the connection, as
/// Twisted does for a protocol that is not half-close aware.
pub trait Protocol: Send {
    /// The connection is up (`connectionMade`).
    fn connection_made(&mut self, t: &mut dyn Transport) {
        let _ = t;
    }

    /// Bytes arrived from the peer, in whatever chunks the network gave.
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport);

    /// The peer shut down its writing side (half-close). Default: close.
    fn eof_received(&mut self, t: &mut dyn Transport) {
        t.close();
    }

    /// The connection is gone (`connectionLost`); the last event delivered.
    fn connection_lost(&mut self, reason: &CloseReason) {
        let _ = reason;
    }

    /// A timer asked for with [`Transport::call_later`] fired.
    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        let _ = (id, t);
    }

    /// A message posted to this connection's [`Mailbox`]. Default: write it to the peer.
    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        t.write(&msg);
    }

    /// Whether this Protocol produces output on its own (Twisted's pull producer).
    /// When true, the runner calls [`resume_producing`](Protocol::resume_producing)
    /// each time its write queue is below the low watermark.
    fn is_producer(&self) -> bool {
        false
    }

    /// Write the next bounded chunk of output (`resumeProducing`).
    fn resume_producing(&mut self, t: &mut dyn Transport) {
        let _ = t;
    }
}

impl<P: Protocol + ?Sized> Protocol for Box<P> {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        (**self).connection_made(t)
    }
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        (**self).data_received(data, t)
    }
    fn eof_received(&mut self, t: &mut dyn Transport) {
        (**self).eof_received(t)
    }
    fn connection_lost(&mut self, reason: &CloseReason) {
        (**self).connection_lost(reason)
    }
    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        (**self).timer_fired(id, t)
    }
    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        (**self).message_received(msg, t)
    }
    fn is_producer(&self) -> bool {
        (**self).is_producer()
    }
    fn resume_producing(&mut self, t: &mut dyn Transport) {
        (**self).resume_producing(t)
    }
}

/// What a [`Factory`] is told about a new connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: PeerAddr,
    /// The local address the connection arrived on.
    pub local: PeerAddr,
}

/// Makes one Protocol per connection (Twisted's `Factory.buildProtocol`) and holds
/// whatever state connections share.
///
/// Any `Fn(&ConnInfo) -> P` closure is a Factory:
///
/// ```
/// use netkit::protocol::{ConnInfo, Factory, Protocol, Transport};
/// struct Hello;
/// impl Protocol for Hello {
///     fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
/// }
/// fn takes(_: impl Factory) {}
/// takes(|_: &ConnInfo| Hello);
/// ```
pub trait Factory: Send + Sync + 'static {
    /// The Protocol this factory makes.
    type Proto: Protocol + 'static;

    /// Makes the Protocol for a new connection.
    fn build(&self, conn: &ConnInfo) -> Self::Proto;

    /// Whether connections share state through this factory (as `chat` does). A
    /// process-per-connection runner refuses such a factory: each child would see
    /// only its own copy.
    fn shares_state(&self) -> bool {
        false
    }
}

impl<F, P> Factory for F
where
    F: Fn(&ConnInfo) -> P + Send + Sync + 'static,
    P: Protocol + 'static,
{
    type Proto = P;
    fn build(&self, conn: &ConnInfo) -> P {
        self(conn)
    }
}

/// A Factory chosen at run time (the CLI's services): builds boxed Protocols.
pub type DynFactory = std::sync::Arc<dyn Factory<Proto = Box<dyn Protocol>>>;

impl<T: Factory + ?Sized> Factory for std::sync::Arc<T> {
    type Proto = T::Proto;
    fn build(&self, conn: &ConnInfo) -> T::Proto {
        (**self).build(conn)
    }
    fn shares_state(&self) -> bool {
        (**self).shares_state()
    }
}

/// Wraps a Factory so that it builds `Box<dyn Protocol>`, for [`DynFactory`].
#[derive(Debug, Clone)]
pub struct Boxed<F>(pub F);

impl<F: Factory> Factory for Boxed<F> {
    type Proto = Box<dyn Protocol>;
    fn build(&self, conn: &ConnInfo) -> Box<dyn Protocol> {
        Box::new(self.0.build(conn))
    }
    fn shares_state(&self) -> bool {
        self.0.shares_state()
    }
}

/// Answers each datagram with at most one datagram (the UDP services).
///
/// Datagram services are stateless per packet, so the same handler runs under the
/// blocking runner and the reactor.
pub trait DatagramService: Send + Sync + 'static {
    /// Handles one datagram from `peer`; returns the reply to send back, if any.
    fn datagram_received(&self, data: &[u8], peer: &PeerAddr) -> Option<Vec<u8>>;
}
