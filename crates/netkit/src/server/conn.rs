//! Serving one stream connection, whatever the mode: build the Protocol's
//! [`Session`] (a PROXY header is then read by the factory's
//! [`ProxyFactory`](crate::protocol::proxy::ProxyFactory) wrapper, in turns like
//! any input) and run it on the blocking runner, or read the PROXY header when
//! the listener expects one and run the blocking handler's setup, handle and
//! finish; contain a panic and log failures with the peer's address.
//!
//! Out of scope: accepting and the modes (`modes.rs`), the pool's turns
//! (`pool.rs`).

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::frame::proxy::ProxyAddrs;
use crate::net::Stream;
use crate::protocol::{CloseReason, ConnInfo, PeerAddr, Wake};

use super::proxy::{read_header, PROXY_HEADER_TIMEOUT};
use super::runner;
use super::session::Session;
use super::shutdown::{ActiveGuard, Lifecycle};
use super::{Config, Conn, Handler, ShutdownHandle, StreamApp};

/// What every connection needs: the app, the limits, the lifecycle.
pub(super) struct Ctx {
    pub(super) app: StreamApp,
    pub(super) config: Config,
    pub(super) life: Arc<Lifecycle>,
}

impl Ctx {
    /// Counts a connection in flight; tracks a blocking handler's socket.
    pub(super) fn enter(&self, stream: &Stream) -> ActiveGuard {
        let mut guard = self.life.enter();
        if matches!(self.app, StreamApp::Handler(_)) {
            guard.track(stream);
        }
        guard
    }

    /// Whether the connection limit allows another connection.
    pub(super) fn below_limit(&self, active: usize) -> bool {
        self.config.max_conns.map_or(true, |m| active < m)
    }

    /// Serves one connection to the end, logging failures and panics.
    pub(super) fn serve(&self, stream: Stream, peer: PeerAddr) {
        tracing::debug!(%peer, "connection");
        let socket_peer = peer.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| self.serve_inner(stream, peer)));
        if let Err(p) = result {
            tracing::error!(peer = %socket_peer, "handler panicked: {}", panic_message(&p));
        }
    }

    fn serve_inner(&self, stream: Stream, peer: PeerAddr) {
        match &self.app {
            StreamApp::Protocol(_) => {
                if let Some(session) = self.session(stream, peer, None) {
                    let peer = session.peer().clone();
                    let reason = runner::run(session);
                    log_close(&peer, &reason);
                }
            }
            StreamApp::Handler(h) => self.serve_handler(&**h, stream, peer),
        }
    }

    /// A Protocol connection's session, its Protocol built by the factory;
    /// `wake` is how its mailbox reaches the driver (`None`: a wake pipe).
    /// `None` for a handler server or a socket that cannot be made non-blocking.
    pub(super) fn session(
        &self,
        stream: Stream,
        peer: PeerAddr,
        wake: Option<Arc<dyn Wake>>,
    ) -> Option<Session> {
        let StreamApp::Protocol(f) = &self.app else {
            return None;
        };
        if let Err(e) = stream.set_nonblocking(true) {
            tracing::warn!(%peer, "cannot make the socket non-blocking: {e}");
            return None;
        }
        let local = stream.local_addr().unwrap_or(PeerAddr::Unix(None));
        let info = ConnInfo {
            peer: peer.clone(),
            local: local.clone(),
        };
        let proto = f.build(&info);
        Some(Session::new(
            stream,
            proto,
            peer,
            local,
            self.config.idle,
            self.life.clone(),
            wake,
        ))
    }

    /// Serves a blocking handler's connection, after its PROXY header.
    fn serve_handler(&self, h: &dyn Handler, stream: Stream, peer: PeerAddr) {
        let mut local = stream.local_addr().unwrap_or(PeerAddr::Unix(None));
        let mut peer = peer;
        let mut first = Vec::new();
        if self.config.proxy_protocol {
            match read_header(&stream, PROXY_HEADER_TIMEOUT, &self.life) {
                Ok((header, rest)) => {
                    if let ProxyAddrs::Proxied {
                        source,
                        destination,
                    } = header.addrs
                    {
                        tracing::debug!(%peer, client = %source, "PROXY header");
                        peer = PeerAddr::Inet(source);
                        local = PeerAddr::Inet(destination);
                    }
                    first = rest;
                }
                Err(e) => {
                    tracing::warn!(%peer, "PROXY protocol: {e}; closing the connection");
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        }
        if let Err(e) = stream.set_nonblocking(false) {
            tracing::warn!(%peer, "cannot make the socket blocking: {e}");
            return;
        }
        if let Some(idle) = self.config.idle {
            if let Err(e) = stream.set_read_timeout(Some(idle)) {
                tracing::warn!(%peer, "cannot set the idle timeout: {e}");
            }
        }
        let shutdown = ShutdownHandle {
            inner: self.life.clone(),
        };
        let mut conn = Conn::new(stream, peer, local, self.config.max_line, shutdown);
        conn.preload(&first);
        run_handler(h, &mut conn);
    }
}

/// Runs a handler's `setup`, `handle` and `finish`, logging errors.
fn run_handler(h: &dyn Handler, conn: &mut Conn) {
    if let Err(e) = h.setup(conn) {
        log_handler_error(conn.peer_addr(), "setup", &e);
        return;
    }
    if let Err(e) = h.handle(conn) {
        log_handler_error(conn.peer_addr(), "handle", &e);
    }
    if let Err(e) = h.finish(conn) {
        log_handler_error(conn.peer_addr(), "finish", &e);
    }
}

fn log_handler_error(peer: &PeerAddr, stage: &str, e: &io::Error) {
    match e.kind() {
        io::ErrorKind::TimedOut => tracing::info!(%peer, "idle timeout: closing the connection"),
        io::ErrorKind::InvalidData => tracing::warn!(%peer, "{stage}: {e}; closing the connection"),
        _ => tracing::warn!(%peer, "handler {stage} failed: {e}"),
    }
}

/// Logs why a Protocol connection ended.
pub(super) fn log_close(peer: &PeerAddr, reason: &CloseReason) {
    match reason {
        CloseReason::Done | CloseReason::Aborted => tracing::debug!(%peer, "{reason}"),
        CloseReason::IdleTimeout => tracing::info!(%peer, "idle timeout: closing the connection"),
        CloseReason::Shutdown => tracing::info!(%peer, "closed: {reason}"),
        _ => tracing::info!(%peer, "{reason}"),
    }
}

/// The text of a panic payload.
pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
