//! The default limits every runner and service shares, each defined once: the
//! longest line, the write-queue watermarks, the mailbox bound, the shutdown
//! grace period, the idle timeout and the request-head timeout. The blocking
//! server (`server`), the event loop (`reactor`), the services, the HTTP
//! service and `netkit serve`'s flags all take their defaults from here; the
//! listen backlog is the socket layer's own (`net::DEFAULT_BACKLOG`), and
//! Twisted's `LineReceiver.MAX_LENGTH` stays with
//! [`LineReceiver`](super::line::LineReceiver). Out of scope: enforcing them
//! (the runners and services do).

use std::time::Duration;

/// The longest line a line-based service (and the blocking server's
/// `Conn::read_line`) accepts by default: 64 KiB.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Queued output above which a runner stops reading from the peer: 256 KiB.
pub const HIGH_WATER: usize = 256 * 1024;

/// Queued output below which reading resumes and producers are asked for more:
/// 64 KiB.
pub const LOW_WATER: usize = 64 * 1024;

/// Bytes of undelivered mailbox messages a connection may hold before it is
/// closed as too slow: 1 MiB.
pub const MAILBOX_LIMIT: usize = 1024 * 1024;

/// How long connections may finish after a graceful shutdown begins: 10 s.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The idle timeout: `None`, a silent peer is never closed for it.
pub const DEFAULT_IDLE_TIMEOUT: Option<Duration> = None;

/// How long a client may take to send a whole request head (HTTP) or file
/// header (`receive`); an idle HTTP keep-alive connection is closed after it
/// too: 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
