//! The built-in services, each a [`Protocol`] written once and run by every runner.
//!
//! One file per service: [`echo`], [`upper`], [`hello`], [`logger`], [`chat`],
//! [`discard`], [`daytime`], [`chargen`], [`receive`] (files in the [`transfer`] wire
//! format), and the UDP forms in [`udp`]; the line-based
//! ones (`upper`, `logger`, `chat`) run in the `protocol::line` LineReceiver, split on
//! `"\n"` and bounded by [`ServiceOptions::max_line`]. Each names the seed program it answers.
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
//! assert_eq!(err.to_string(), "unknown service `ecco` (known: echo, upper, hello, logger, chat, discard, daytime, chargen, http, receive)");
//! ```
//!
//! [`Protocol`]: crate::protocol::Protocol

pub mod chargen;
pub mod chat;
pub mod daytime;
pub mod discard;
pub mod echo;
pub mod hello;
pub mod last_line;
pub mod logger;
pub mod receive;
pub mod transfer;
pub mod udp;
pub mod upper;

use std::path::PathBuf;
use std::sync::Arc;

use crate::protocol::{
    Boxed, ConnInfo, DatagramService, DynFactory, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_LINE,
};

pub use chargen::{chargen_line, Chargen};
pub use chat::{Chat, ChatFactory};
pub use daytime::{daytime_line, Daytime};
pub use discard::Discard;
pub use echo::Echo;
pub use hello::Hello;
pub use last_line::{KeepLastLine, LastLine};
pub use logger::{python_addr, Captured, LogSink, Logger};
pub use receive::{Receive, ReceiveConfig, ReceiveError, ReceiveFactory};
pub use udp::{UdpChargen, UdpDaytime, UdpDiscard, UdpEcho, UdpUpper};
pub use upper::Upper;

/// One built-in service as `netkit serve` offers it: the one table that the
/// command's `--help`, its errors, the mode checks and the README are made from.
///
/// ```
/// use netkit::services::{self, SERVICES};
///
/// let chat = services::lookup("chat")?;
/// assert!(chat.stream && !chat.datagram && !chat.fork);
/// assert!(SERVICES.iter().any(|s| s.name == "http"));
/// # Ok::<(), netkit::services::ServiceError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The name `netkit serve NAME` takes.
    pub name: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// Whether it serves stream connections (TCP, Unix stream).
    pub stream: bool,
    /// Whether it answers datagrams (UDP, Unix datagram).
    pub datagram: bool,
    /// Whether it can run in fork mode (false when its connections share state).
    pub fork: bool,
}

/// Every built-in service, in the order `--help` lists them. `http` is built
/// by `netkit::http` (a layer above this one); every other stream service by
/// [`stream_factory`], every datagram one by [`datagram_service`].
pub const SERVICES: &[ServiceInfo] = &[
    service("echo", "each byte back (RFC 862)", true, true, true),
    service("upper", "each line back upper-cased", true, true, true),
    service(
        "hello",
        "\"Thank you for connecting\", then close",
        true,
        false,
        true,
    ),
    service(
        "logger",
        "prints each client's lines and its comings and goings",
        true,
        false,
        true,
    ),
    service(
        "chat",
        "each line to every other client, prefixed with the sender",
        true,
        false,
        false,
    ),
    service(
        "discard",
        "reads and drops everything (RFC 863)",
        true,
        true,
        true,
    ),
    service(
        "daytime",
        "the date and time, then close (RFC 867)",
        true,
        true,
        true,
    ),
    service(
        "chargen",
        "a stream of characters, flow-controlled (RFC 864)",
        true,
        true,
        true,
    ),
    service(
        "http",
        "static files from --root (GET, HEAD, ranges)",
        true,
        false,
        true,
    ),
    service(
        "receive",
        "stores files sent by `netkit send` under --root",
        true,
        false,
        true,
    ),
];

/// The service built outside this module (by `netkit::http`).
const HTTP: &str = "http";

const fn service(
    name: &'static str,
    about: &'static str,
    stream: bool,
    datagram: bool,
    fork: bool,
) -> ServiceInfo {
    ServiceInfo {
        name,
        about,
        stream,
        datagram,
        fork,
    }
}

/// The entry of [`SERVICES`] named `name`.
///
/// # Errors
///
/// [`ServiceError::Unknown`], listing every service of the table.
pub fn lookup(name: &str) -> Result<&'static ServiceInfo, ServiceError> {
    SERVICES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| unknown(name))
}

/// [`ServiceError::Unknown`] for `name`, listing every service of the table.
fn unknown(name: &str) -> ServiceError {
    ServiceError::Unknown {
        name: name.to_owned(),
        known: join(|_| true),
    }
}

/// The names of the services of [`SERVICES`] that pass `keep`, comma-separated.
fn join(keep: impl Fn(&ServiceInfo) -> bool) -> String {
    let names: Vec<&str> = SERVICES
        .iter()
        .filter(|s| keep(s))
        .map(|s| s.name)
        .collect();
    names.join(", ")
}

/// Settings shared by the services.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The longest line a line-based service accepts; a longer one closes that
    /// connection with a warning.
    pub max_line: usize,
    /// Where `logger` prints.
    pub log: LogSink,
    /// Where `receive` stores files (default: the current directory).
    pub root: PathBuf,
    /// Whether `receive` replaces existing files.
    pub overwrite: bool,
    /// How long `receive` waits for a whole header ([`DEFAULT_HEADER_TIMEOUT`]).
    pub header_timeout: Option<std::time::Duration>,
    /// How long `receive` keeps an abandoned partial upload ([`receive::DEFAULT_PARTIAL_TTL`]).
    pub partial_ttl: Option<std::time::Duration>,
    /// The most bytes `receive`'s abandoned partial uploads keep together
    /// ([`receive::DEFAULT_PARTIAL_MAX`]).
    pub partial_max: Option<u64>,
}

impl Default for ServiceOptions {
    /// 64 KiB lines, logging to stdout.
    fn default() -> Self {
        ServiceOptions {
            max_line: DEFAULT_MAX_LINE,
            log: LogSink::stdout(),
            root: PathBuf::from("."),
            overwrite: false,
            header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
            partial_ttl: Some(receive::DEFAULT_PARTIAL_TTL),
            partial_max: Some(receive::DEFAULT_PARTIAL_MAX),
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
    #[error("{name} does not serve datagrams (services that do: {known})")]
    NoDatagram {
        /// The name asked for.
        name: String,
        /// The services that have a datagram form, comma-separated.
        known: String,
    },
    /// The service is in [`SERVICES`] but built by another module (`http`).
    #[error("service `{name}` is built by the HTTP layer, not by this registry")]
    Elsewhere {
        /// The name asked for.
        name: String,
    },
    /// The `receive` service's root is unusable.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
}

/// The names of the stream services [`stream_factory`] builds (every stream
/// service of [`SERVICES`] but `http`), in table order.
pub fn names() -> Vec<&'static str> {
    SERVICES
        .iter()
        .filter(|s| s.stream && s.name != HTTP)
        .map(|s| s.name)
        .collect()
}

/// The names of the services with a datagram (UDP) form, in table order.
pub fn datagram_names() -> Vec<&'static str> {
    SERVICES
        .iter()
        .filter(|s| s.datagram)
        .map(|s| s.name)
        .collect()
}

fn factory<F: crate::protocol::Factory>(f: F) -> DynFactory {
    Arc::new(Boxed(f))
}

/// The factory for stream service `name`.
///
/// # Errors
///
/// [`ServiceError::Unknown`] when no service has that name;
/// [`ServiceError::Elsewhere`] for `http`.
pub fn stream_factory(name: &str, opts: &ServiceOptions) -> Result<DynFactory, ServiceError> {
    if lookup(name)?.name == HTTP {
        return Err(ServiceError::Elsewhere {
            name: name.to_owned(),
        });
    }
    let max_line = opts.max_line;
    Ok(match name {
        "echo" => factory(|_: &ConnInfo| Echo),
        "upper" => factory(move |_: &ConnInfo| Upper::receiver(max_line)),
        "logger" => {
            let sink = opts.log.clone();
            factory(move |_: &ConnInfo| Logger::receiver(sink.clone(), max_line))
        }
        "chat" => factory(ChatFactory::new(max_line)),
        "discard" => factory(|_: &ConnInfo| Discard),
        "hello" => factory(|_: &ConnInfo| Hello),
        "daytime" => factory(|_: &ConnInfo| Daytime),
        "chargen" => factory(|_: &ConnInfo| Chargen::new()),
        "receive" => factory(ReceiveFactory::new(ReceiveConfig {
            overwrite: opts.overwrite,
            header_timeout: opts.header_timeout,
            partial_ttl: opts.partial_ttl,
            partial_max: opts.partial_max,
            ..ReceiveConfig::new(&opts.root)
        })?),
        _ => return Err(unknown(name)),
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
    if !lookup(name)?.datagram {
        return Err(ServiceError::NoDatagram {
            name: name.to_owned(),
            known: join(|s| s.datagram),
        });
    }
    Ok(match name {
        "echo" => Arc::new(UdpEcho),
        "upper" => Arc::new(UdpUpper),
        "discard" => Arc::new(UdpDiscard),
        "daytime" => Arc::new(UdpDaytime),
        "chargen" => Arc::new(UdpChargen::new()),
        _ => return Err(unknown(name)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;
    use crate::protocol::{Factory, PeerAddr};

    fn conn() -> ConnInfo {
        ConnInfo {
            peer: PeerAddr::Inet(([127, 0, 0, 1], 50000).into()),
            local: PeerAddr::Inet(([127, 0, 0, 1], 9000).into()),
        }
    }

    fn opts(max_line: usize) -> (ServiceOptions, Captured) {
        let (log, captured) = LogSink::capture();
        let o = ServiceOptions {
            max_line,
            log,
            ..ServiceOptions::default()
        };
        (o, captured)
    }

    #[test]
    fn every_listed_name_builds_and_only_chat_shares_state() {
        let (o, _) = opts(DEFAULT_MAX_LINE);
        for name in names() {
            let f = stream_factory(name, &o).unwrap();
            assert_eq!(f.shares_state(), name == "chat", "{name}");
            let _ = Script::new().eof().run(f.build(&conn()));
        }
        for name in datagram_names() {
            assert!(datagram_service(name, &o).is_ok(), "{name}");
        }
    }

    #[test]
    fn registry_services_answer_as_their_types_do() {
        let (o, captured) = opts(8);
        let run = |name: &str, input: &[u8]| {
            let f = stream_factory(name, &o).unwrap();
            Script::new().data(input).eof().run(f.build(&conn()))
        };
        assert_eq!(run("echo", b"abc").written, b"abc");
        assert_eq!(run("upper", b"abc\nxyz").written, b"ABC\nXYZ");
        assert_eq!(run("hello", b"").text(), "Thank you for connecting");
        assert!(run("discard", b"abc").written.is_empty());
        assert!(run("daytime", b"").text().ends_with("-UTC\r\n"));
        assert!(run("chargen", b"").written.starts_with(chargen_line(0)));
        assert!(run("chat", b"alone\n").written.is_empty());
        assert!(run("logger", b"hi\n").written.is_empty());
        assert!(captured.text().contains("\nhi\n"));
    }

    #[test]
    fn max_line_reaches_the_line_services() {
        let (o, captured) = opts(8);
        for name in ["upper", "logger", "chat"] {
            let f = stream_factory(name, &o).unwrap();
            let out = Script::new()
                .data(b"123456789\nafter\n")
                .run(f.build(&conn()));
            assert!(out.closed, "{name} closes on an over-long line");
            assert!(out.written.is_empty(), "{name}");
        }
        assert!(!captured.text().contains("after"));
    }

    #[test]
    fn errors_name_the_choices() {
        let o = ServiceOptions::default();
        let Err(e) = stream_factory("nope", &o) else {
            panic!("`nope` is not a service")
        };
        assert_eq!(
            e,
            ServiceError::Unknown {
                name: "nope".into(),
                known: SERVICES
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let Err(e) = datagram_service("chat", &o) else {
            panic!("chat has no datagram form")
        };
        assert_eq!(
            e.to_string(),
            "chat does not serve datagrams (services that do: echo, upper, discard, daytime, chargen)"
        );
        let Err(e) = datagram_service("http", &o) else {
            panic!("http has no datagram form")
        };
        assert!(
            e.to_string().starts_with("http does not serve datagrams"),
            "{e}"
        );
        assert!(matches!(
            stream_factory("http", &o),
            Err(ServiceError::Elsewhere { .. })
        ));
        let Err(e) = datagram_service("nope", &o) else {
            panic!("`nope` is not a service")
        };
        assert!(matches!(e, ServiceError::Unknown { .. }));
    }
}
