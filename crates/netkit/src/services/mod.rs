//! The built-in services, each a [`Protocol`] written once and run by every runner.
//!
//! One file per service: [`echo`], [`discard`], [`hello`], [`daytime`], [`chargen`],
//! [`logger`], and the UDP forms in [`udp`]. Each names the seed program it answers.
//! This module also holds the registry the CLI uses to pick a service by name
//! ([`stream_factory`], [`datagram_service`]). Out of scope: sockets, threads and
//! event loops (the runners in `server` and `reactor`), and the HTTP service.
//!
//! ```
//! use netkit::protocol::{testing::Script, ConnInfo, Factory, PeerAddr};
//! use netkit::services::{self, ServiceOptions};
//!
//! // Pick a service by name, as `netkit serve echo` does, and drive one connection.
//! let factory = services::stream_factory("echo", &ServiceOptions::default()).unwrap();
//! let conn = ConnInfo {
//!     peer: PeerAddr::Inet(([127, 0, 0, 1], 50000).into()),
//!     local: PeerAddr::Inet(([127, 0, 0, 1], 9000).into()),
//! };
//! let out = Script::new().data(b"ping\n").eof().run(factory.build(&conn));
//! assert_eq!(out.written, b"ping\n");
//!
//! // Unknown names are errors that list the known ones.
//! let Err(err) = services::stream_factory("ecco", &ServiceOptions::default()) else {
//!     panic!("`ecco` is not a service");
//! };
//! assert_eq!(err.to_string(), "unknown service `ecco` (known: echo, discard, hello, daytime, chargen)");
//! ```
//!
//! [`Protocol`]: crate::protocol::Protocol

pub mod chargen;
pub mod daytime;
pub mod discard;
pub mod echo;
pub mod hello;
pub mod logger;
pub mod udp;

use std::sync::Arc;

use crate::protocol::{Boxed, ConnInfo, DatagramService, DynFactory};

pub use chargen::{chargen_line, Chargen};
pub use daytime::{daytime_line, Daytime};
pub use discard::Discard;
pub use echo::Echo;
pub use hello::Hello;
pub use logger::{Captured, LogSink};
pub use udp::{UdpChargen, UdpDaytime, UdpDiscard, UdpEcho, UdpUpper};

/// The default longest line a line-based service accepts: 64 KiB.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

const STREAM_NAMES: &[&str] = &["echo", "discard", "hello", "daytime", "chargen"];

const DATAGRAM_NAMES: &[&str] = &["echo", "upper", "discard", "daytime", "chargen"];

/// Settings shared by the services.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The longest line a line-based service accepts; a longer one closes that
    /// connection with a warning.
    pub max_line: usize,
    /// Where `logger` prints.
    pub log: LogSink,
}

impl Default for ServiceOptions {
    /// 64 KiB lines, logging to stdout.
    fn default() -> Self {
        ServiceOptions {
            max_line: DEFAULT_MAX_LINE,
            log: LogSink::stdout(),
        }
    }
}

/// Why a service could not be chosen by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No service has that name.
    #[error("unknown service `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The service exists but has no datagram (UDP) form.
    #[error("service `{name}` has no datagram form (datagram services: {known})")]
    NoDatagram {
        /// The name asked for.
        name: String,
        /// The services that have a datagram form, comma-separated.
        known: String,
    },
}

/// The stream services' names, in the order `--help` lists them.
pub fn names() -> &'static [&'static str] {
    STREAM_NAMES
}

/// The names of the services with a datagram (UDP) form.
pub fn datagram_names() -> &'static [&'static str] {
    DATAGRAM_NAMES
}

fn factory<F: crate::protocol::Factory>(f: F) -> DynFactory {
    Arc::new(Boxed(f))
}

/// The factory for stream service `name`.
///
/// # Errors
///
/// [`ServiceError::Unknown`] when no stream service has that name.
pub fn stream_factory(name: &str, opts: &ServiceOptions) -> Result<DynFactory, ServiceError> {
    let _ = opts;
    Ok(match name {
        "echo" => factory(|_: &ConnInfo| Echo),
        "discard" => factory(|_: &ConnInfo| Discard),
        "hello" => factory(|_: &ConnInfo| Hello),
        "daytime" => factory(|_: &ConnInfo| Daytime),
        "chargen" => factory(|_: &ConnInfo| Chargen::new()),
        _ => {
            return Err(ServiceError::Unknown {
                name: name.to_owned(),
                known: STREAM_NAMES.join(", "),
            })
        }
    })
}

/// The datagram (UDP) form of service `name`.
///
/// # Errors
///
/// [`ServiceError::NoDatagram`] for a stream-only service such as `chat`;
/// [`ServiceError::Unknown`] when no service has that name.
pub fn datagram_service(
    name: &str,
    opts: &ServiceOptions,
) -> Result<Arc<dyn DatagramService>, ServiceError> {
    let _ = opts;
    Ok(match name {
        "echo" => Arc::new(UdpEcho),
        "upper" => Arc::new(UdpUpper),
        "discard" => Arc::new(UdpDiscard),
        "daytime" => Arc::new(UdpDaytime),
        "chargen" => Arc::new(UdpChargen::new()),
        _ if STREAM_NAMES.contains(&name) => {
            return Err(ServiceError::NoDatagram {
                name: name.to_owned(),
                known: DATAGRAM_NAMES.join(", "),
            })
        }
        _ => {
            return Err(ServiceError::Unknown {
                name: name.to_owned(),
                known: STREAM_NAMES.join(", "),
            })
        }
    })
}
