//! How the client's connections are made and how they may end: a ureq connector
//! chain of TCP, then TLS with the one rustls configuration of
//! [`crate::protocol::trust`], then [`Strict`].
//!
//! ureq takes a reset, an abort or a TLS connection closed without
//! `close_notify` for the end of a body that has no length, so a transfer cut
//! short would pass for a whole file. [`Strict`] turns those endings into
//! errors ([`Cut`]) before ureq sees them: such a body ends well only with a
//! clean end of stream (over TLS, `close_notify`), as curl has it.
//!
//! Out of scope: proxies (SOCKS, CONNECT), client certificates.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

/// The connector chain: TCP, TLS for `https`, then [`Strict`].
/// Without a TLS configuration, `https` fails (the caller has said why).
pub(crate) fn connector(tls: Option<Arc<ClientConfig>>) -> impl Connector {
    ().chain(TcpConnector::default())
        .chain(TlsConnector { config: tls })
        .chain(StrictConnector)
}

/// A connection that ended without a clean end of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The peer reset the connection (TCP RST).
    Reset,
    /// The connection was aborted.
    Aborted,
    /// TLS: the TCP stream ended without `close_notify`.
    NoCloseNotify,
    /// The stream ended in the middle of something.
    Eof,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cut::Reset => "the server reset the connection",
            Cut::Aborted => "the connection was aborted",
            Cut::NoCloseNotify => "the server closed the connection without TLS close_notify",
            Cut::Eof => "the server closed the connection early",
        })
    }
}

impl std::error::Error for Cut {}

/// Wraps the connection in TLS when the scheme is `https`.
#[derive(Debug)]
struct TlsConnector {
    config: Option<Arc<ClientConfig>>,
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("no host to check the certificate against"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("the host is not a valid TLS server name"))?;
        let config = self
            .config
            .clone()
            .ok_or(ureq::Error::Tls("no TLS configuration (no trusted roots)"))?;
        let mut conn = ClientConnection::new(config, name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS connection over the chained transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = match self.stream.read(input) {
            Ok(n) => n,
            // rustls's word for "TCP ended without close_notify".
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(cut_error(Cut::NoCloseNotify))
            }
            Err(e) => return Err(e.into()),
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// Puts [`Strict`] around every connection.
#[derive(Debug)]
struct StrictConnector;

impl<In: Transport> Connector<In> for StrictConnector {
    type Out = Strict<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(Strict))
    }
}

/// A transport whose unclean endings are errors ([`Cut`]), never an end of stream.
#[derive(Debug)]
pub(crate) struct Strict<T>(T);

fn cut_error(cut: Cut) -> ureq::Error {
    ureq::Error::Io(io::Error::other(cut))
}

impl<T: Transport> Transport for Strict<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.0.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        match self.0.await_input(timeout) {
            Err(ureq::Error::Io(e)) => Err(match e.kind() {
                io::ErrorKind::ConnectionReset => cut_error(Cut::Reset),
                io::ErrorKind::ConnectionAborted => cut_error(Cut::Aborted),
                io::ErrorKind::UnexpectedEof => cut_error(Cut::Eof),
                _ => ureq::Error::Io(e),
            }),
            other => other,
        }
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}
