//! `netkit serve`: run a built-in service on one or more addresses, in one of the
//! concurrency modes.
//!
//! Arguments are parsed here, validated into a `netkit::server::Server`, and the
//! server runs until SIGINT/SIGTERM. Each bound address is announced on stderr as
//! `listening on ADDR` once it is ready. The services, their descriptions and
//! what each can do (datagrams, fork mode) come from `netkit::services::SERVICES`;
//! a service, address or mode that cannot work together is a usage error (exit 2).
//! A second SIGINT/SIGTERM during the drain aborts it (exit 1).
//!
//! Socket activation: when systemd (or any supervisor following its
//! `LISTEN_FDS`/`LISTEN_PID` convention) passes listening sockets, they replace
//! the default address; an explicit `--listen` adds more.

use std::cell::RefCell;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use clap::builder::{PossibleValue, PossibleValuesParser};
use netkit::http::{AccessLog, HttpOptions, StaticFiles};
use netkit::net::units::{parse_duration, parse_size, parse_size_u64};
use netkit::net::Address;
use netkit::protocol::proxy::ProxyFactory;
use netkit::protocol::tap::TapFactory;
use netkit::protocol::tls::TlsFactory;
use netkit::protocol::{Boxed, DynFactory};
use netkit::reactor::{raise_nofile_limit, Reactor, ReactorConfig};
use netkit::relay::dump::ServiceTap;
use netkit::relay::exec::ExecFactory;
use netkit::server::{Mode, Server};
use netkit::services::{self, ServiceInfo, ServiceOptions, SERVICES};
use rustls::ServerConfig;

use super::{bind_error, parse_address, usage};
use crate::options::dump::DumpArgs;

/// The address served when no `--listen` is given.
const DEFAULT_LISTEN: &str = "127.0.0.1:9000";

/// `--max-line`'s default, formatted from the library's constant.
static MAX_LINE_DEFAULT: LazyLock<String> =
    LazyLock::new(|| size_arg(netkit::protocol::DEFAULT_MAX_LINE as u64));
/// `--grace`'s default, formatted from the library's constant.
static GRACE_DEFAULT: LazyLock<String> =
    LazyLock::new(|| duration_arg(netkit::protocol::DEFAULT_GRACE));
/// `--header-timeout`'s default, formatted from the library's constant.
static HEADER_TIMEOUT_DEFAULT: LazyLock<String> =
    LazyLock::new(|| duration_arg(netkit::protocol::DEFAULT_HEADER_TIMEOUT));
/// `--partial-ttl`'s default, formatted from the library's constant.
static PARTIAL_TTL_DEFAULT: LazyLock<String> =
    LazyLock::new(|| duration_arg(services::receive::DEFAULT_PARTIAL_TTL));
/// `--partial-max`'s default, formatted from the library's constant.
static PARTIAL_MAX_DEFAULT: LazyLock<String> =
    LazyLock::new(|| size_arg(services::receive::DEFAULT_PARTIAL_MAX));

/// A whole duration as `--grace` and friends take it: `10s`, `5m`, `24h`, `250ms`.
fn duration_arg(d: Duration) -> String {
    let s = d.as_secs();
    match () {
        _ if d.subsec_nanos() != 0 => format!("{}ms", d.as_millis()),
        _ if s != 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s != 0 && s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A byte count as `--max-line` and friends take it: `64KiB`, `1MiB`, `4GiB`, `100`.
fn size_arg(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n != 0 && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// How connections are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Event loops on epoll, one per core (`--workers`): the default.
    Reactor,
    /// A thread per connection.
    Threads,
    /// A fixed pool of worker threads (`--workers`); a connection waiting for
    /// its peer holds none.
    Pool,
    /// A process per connection.
    Fork,
    /// One worker thread, held by a connection only while there is work for it.
    Sequential,
}

/// Arguments of `netkit serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service to run (`--help` lists them).
    #[arg(default_value = "echo", value_parser = service_names())]
    pub service: String,
    /// Address to listen on (repeatable): HOST:PORT, udp://HOST:PORT,
    /// unix:///path, unix-dgram:///path. Default 127.0.0.1:9000. `[::]:PORT`
    /// takes IPv4 and IPv6 clients alike.
    #[arg(long = "listen", short = 'l', value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Make `[::]` listeners IPv6 only (IPV6_V6ONLY), so `0.0.0.0` can be
    /// bound on the same port beside them.
    #[arg(long)]
    pub ipv6_only: bool,
    /// Concurrency mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Reactor)]
    pub mode: ModeArg,
    /// Event loops in reactor mode, worker threads in pool mode (default: the
    /// number of cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Close a connection that sends nothing for this long (e.g. 30s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Serve at most N connections at once; more wait until one ends.
    #[arg(long, value_name = "N")]
    pub max_conns: Option<usize>,
    /// Longest line a line-based service accepts (e.g. 65536, 64KiB, 1MiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = MAX_LINE_DEFAULT.as_str())]
    pub max_line: usize,
    /// Longest datagram received whole on udp:// and unix-dgram:// addresses; a
    /// longer one is dropped and logged (default: the largest the socket can
    /// carry: 64KiB for UDP, more for Unix datagrams).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_datagram: Option<usize>,
    /// How long connections may finish after SIGINT/SIGTERM.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = GRACE_DEFAULT.as_str())]
    pub grace: Duration,
    /// Listen backlog (capped by the system's maximum).
    #[arg(long, value_name = "N", default_value_t = netkit::net::DEFAULT_BACKLOG)]
    pub backlog: i32,
    /// Set SO_REUSEPORT: several servers share the port, the kernel spreads
    /// connections (and a new server can start before the old one stops).
    #[arg(long)]
    pub reuseport: bool,
    /// Every stream connection starts with a PROXY protocol header (v1 or v2,
    /// from HAProxy or another balancer): the client it names is the peer
    /// services and logs see; a connection without one is closed.
    #[arg(long)]
    pub proxy_protocol: bool,
    /// The directory `http` serves and `receive` stores into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: std::path::PathBuf,
    /// `http` and `receive`: close a client that has not sent a whole request
    /// head (a file header) in this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = HEADER_TIMEOUT_DEFAULT.as_str())]
    pub header_timeout: Duration,
    /// `http`: list dotfiles in directory listings (hidden by default).
    #[arg(long)]
    pub show_hidden: bool,
    /// `receive`: replace files that already exist.
    #[arg(long)]
    pub overwrite: bool,
    /// `receive`: remove partial files of abandoned uploads untouched this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = PARTIAL_TTL_DEFAULT.as_str())]
    pub partial_ttl: Duration,
    /// `receive`: the most bytes abandoned partial uploads keep together; the
    /// oldest go first (they also make way when a new upload needs the disk).
    #[arg(long, value_name = "BYTES", value_parser = parse_size_u64, default_value = PARTIAL_MAX_DEFAULT.as_str())]
    pub partial_max: u64,
    /// Reactor I/O backend: epoll (portable default) or uring (Linux io_uring;
    /// stream addresses only).
    #[arg(long, value_parser = ["epoll", "uring"], default_value = "epoll")]
    pub backend: String,
    /// Instead of a service, run `sh -c CMD` per connection, its stdin and
    /// stdout joined to the connection (inetd style), in any mode and under
    /// every limit; stream addresses only.
    #[arg(long, short = 'e', value_name = "CMD")]
    pub exec: Option<String>,
    /// TLS on every (stream) address.
    #[command(flatten)]
    pub tls: crate::options::tls::ServerArgs,
    /// Traffic dumps of stream connections (plaintext under TLS).
    #[command(flatten)]
    pub dump: DumpArgs,
}

/// The services of the table, for clap: it checks the name and lists every
/// service with its description in `--help`.
fn service_names() -> PossibleValuesParser {
    PossibleValuesParser::new(SERVICES.iter().map(|s| {
        let mut help = s.about.to_string();
        if s.datagram {
            help.push_str("; datagrams too");
        }
        if !s.fork {
            help.push_str("; not in fork mode");
        }
        PossibleValue::new(s.name).help(help)
    }))
}

/// Runs `netkit serve`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::log::init();
    let addrs = validate(&args)?;
    let tls = crate::options::tls::server_config(&args.tls)?;
    if args.service == "receive" {
        std::fs::create_dir_all(&args.root)
            .with_context(|| format!("cannot create {}", args.root.display()))?;
    }
    let mode = match args.mode {
        ModeArg::Reactor => return run_reactor(&args, &addrs, tls),
        ModeArg::Threads => Mode::Threads,
        ModeArg::Pool => Mode::Pool,
        ModeArg::Fork => Mode::Fork,
        ModeArg::Sequential => Mode::Sequential,
    };
    let server = build(&args, &addrs, mode, tls)?;
    announce(server.local_addresses());
    server.serve_forever()?;
    Ok(ExitCode::SUCCESS)
}

/// Checks everything that can be checked before binding: the limits, the
/// service against the mode and the addresses (from the table of services), the
/// addresses' syntax. Every failure is a usage error. Returns the `--listen`
/// addresses.
fn validate(args: &Args) -> anyhow::Result<Vec<Address>> {
    check(args)?;
    let info = services::lookup(&args.service).map_err(|e| usage(e.to_string()))?;
    if args.mode == ModeArg::Fork && !info.fork && args.exec.is_none() {
        return Err(usage(format!(
            "{} cannot run in fork mode: its clients share state across connections; \
             use --mode reactor, threads or pool",
            info.name
        )));
    }
    let mut addrs = Vec::new();
    for a in &args.listen {
        let addr = parse_address(a)?;
        if !addr.is_stream() {
            if args.exec.is_some() {
                return Err(usage(format!(
                    "--exec takes stream addresses (HOST:PORT or unix:///path), not {addr}"
                )));
            }
            if !info.datagram {
                return Err(usage(no_datagrams(info, &addr)));
            }
        }
        addrs.push(addr);
    }
    Ok(addrs)
}

/// The error for a datagram address given to a stream-only service.
fn no_datagrams(info: &ServiceInfo, addr: &Address) -> String {
    let able: Vec<&str> = SERVICES
        .iter()
        .filter(|s| s.datagram)
        .map(|s| s.name)
        .collect();
    format!(
        "{} does not serve datagrams ({addr}); services that do: {}",
        info.name,
        able.join(", ")
    )
}

/// The address served when none is given and no socket was inherited.
fn default_address() -> anyhow::Result<Address> {
    parse_address(DEFAULT_LISTEN)
}

/// Runs the service on the reactor: raises the open-file limit, binds every
/// address, and serves until SIGINT/SIGTERM and the grace period end.
fn run_reactor(
    args: &Args,
    addrs: &[Address],
    tls: Option<Arc<ServerConfig>>,
) -> anyhow::Result<ExitCode> {
    // Handlers go in before the first `listening on` line, so a signal sent as
    // soon as a client sees it still stops the server gracefully.
    let signals = crate::signals::install()?;
    if let Err(e) = raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let mut reactor = Reactor::new(ReactorConfig {
        workers: args.workers.unwrap_or(0),
        idle_timeout: args.idle_timeout,
        max_conns: args.max_conns,
        grace: args.grace,
        backlog: args.backlog,
        reuse_port: args.reuseport,
        ipv6_only: args.ipv6_only,
        backend: match args.backend.as_str() {
            "uring" => netkit::reactor::Backend::Uring,
            _ => netkit::reactor::Backend::Epoll,
        },
        max_datagram: args.max_datagram,
        ..ReactorConfig::default()
    })
    .context("cannot start the reactor")?;
    let opts = service_options(args);
    let mut bound = Vec::new();
    let inherited =
        netkit::net::listen_fds(true).context("cannot use the sockets passed in LISTEN_FDS")?;
    let addrs = listen_addresses(addrs, !inherited.is_empty())?;
    // One factory for every stream listener: one chat room, one dump numbering.
    let mut shared: Option<DynFactory> = None;
    let mut factory = || -> anyhow::Result<DynFactory> {
        if let Some(f) = &shared {
            return Ok(f.clone());
        }
        let f = proxied(args, secured(&tls, stream_factory(args, &opts)?));
        shared = Some(f.clone());
        Ok(f)
    };
    for l in inherited {
        let local = l.local_address();
        let f = factory()?;
        bound.push(
            reactor
                .listen_dyn(l, f)
                .with_context(|| format!("cannot serve the inherited socket {local}"))?,
        );
    }
    for addr in &addrs {
        let local = if addr.is_stream() {
            reactor.listen_dyn(addr, factory()?)
        } else {
            reactor.listen_datagram(addr, services::datagram_service(&args.service, &opts)?)
        };
        bound.push(local.map_err(|e| bind_error(addr, e))?);
    }
    announce(bound);
    let handle = reactor.shutdown_handle();
    let watch = crate::signals::watch(
        signals,
        move || handle.shutdown(),
        crate::signals::SocketFiles::of(&addrs),
    )?;
    let result = reactor.run();
    drop(watch);
    result.context("reactor failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `listening on ADDR` for each bound address.
fn announce(bound: Vec<Address>) {
    for addr in bound {
        say!("listening on {addr}");
    }
}

/// With TLS options: each connection is a TLS session around the service, in
/// every mode (the service sees the client's address and plaintext).
fn secured(tls: &Option<Arc<ServerConfig>>, f: DynFactory) -> DynFactory {
    match tls {
        Some(config) => Arc::new(Boxed(TlsFactory::new(config.clone(), f))),
        None => f,
    }
}

/// With `--proxy-protocol` (reactor): each connection reads its PROXY header
/// (which comes before any TLS) before the service's Protocol is built.
fn proxied(args: &Args, f: DynFactory) -> DynFactory {
    if args.proxy_protocol {
        Arc::new(Boxed(ProxyFactory::new(f)))
    } else {
        f
    }
}

/// The addresses to serve: `--listen`s, or the default (none when sockets
/// were inherited).
fn listen_addresses(listen: &[Address], inherited: bool) -> anyhow::Result<Vec<Address>> {
    Ok(if !listen.is_empty() {
        listen.to_vec()
    } else if inherited {
        // Sockets passed by the supervisor replace the default address.
        Vec::new()
    } else {
        vec![default_address()?]
    })
}

/// What the services are told about the limits.
fn service_options(args: &Args) -> ServiceOptions {
    ServiceOptions {
        max_line: args.max_line,
        root: args.root.clone(),
        overwrite: args.overwrite,
        header_timeout: Some(args.header_timeout),
        partial_ttl: Some(args.partial_ttl),
        partial_max: Some(args.partial_max),
        ..ServiceOptions::default()
    }
}

/// Checks the limits every mode shares (usage errors).
fn check(args: &Args) -> anyhow::Result<()> {
    if args.workers == Some(0) {
        return Err(usage("--workers must be at least 1"));
    }
    if args.max_conns == Some(0) {
        return Err(usage("--max-conns must be at least 1"));
    }
    if args.max_line == 0 {
        return Err(usage("--max-line must be at least 1 byte"));
    }
    if args.max_datagram == Some(0) {
        return Err(usage("--max-datagram must be at least 1 byte"));
    }
    Ok(())
}

/// Builds the bound server from validated arguments.
fn build(
    args: &Args,
    listen: &[Address],
    mode: Mode,
    tls: Option<Arc<ServerConfig>>,
) -> anyhow::Result<Server> {
    let inherited =
        netkit::net::listen_fds(false).context("cannot use the sockets passed in LISTEN_FDS")?;
    let addrs = listen_addresses(listen, !inherited.is_empty())?;
    let opts = service_options(args);
    let mut b = Server::builder()
        .mode(mode)
        .idle_timeout(args.idle_timeout)
        .max_conns(args.max_conns)
        .max_line(args.max_line)
        .grace(args.grace)
        .reuse_port(args.reuseport)
        .ipv6_only(args.ipv6_only)
        .proxy_protocol(args.proxy_protocol)
        .handle_signals(true);
    if let Some(n) = args.workers {
        b = b.workers(n);
    }
    b = b.backlog(args.backlog);
    if let Some(n) = args.max_datagram {
        b = b.max_datagram(n);
    }
    let (mut streams, mut dgrams) = (!inherited.is_empty(), false);
    for l in inherited {
        b = b.listener(l);
    }
    for addr in addrs {
        if addr.is_stream() {
            streams = true;
        } else {
            dgrams = true;
        }
        b = b.listen(addr);
    }
    if streams {
        b = b.protocol_dyn(secured(&tls, stream_factory(args, &opts)?));
    }
    if dgrams {
        b = b.datagram_service(services::datagram_service(&args.service, &opts)?);
    }
    Ok(b.build()?)
}

/// The Protocol factory for a stream service, `http` or one of
/// `netkit::services`, tapped when `--dump` asks.
fn stream_factory(args: &Args, opts: &ServiceOptions) -> anyhow::Result<DynFactory> {
    let f = service_factory(args, opts)?;
    Ok(match args.dump.dumper()? {
        Some(d) => Arc::new(Boxed(TapFactory::new(Arc::new(ServiceTap(d)), f))),
        None => f,
    })
}

/// The service's own Protocol factory (or `--exec`'s program per connection).
fn service_factory(args: &Args, opts: &ServiceOptions) -> anyhow::Result<DynFactory> {
    if let Some(cmd) = &args.exec {
        let log: netkit::relay::Log = Arc::new(|line: &str| say!("{line}"));
        return Ok(Arc::new(Boxed(ExecFactory::new(cmd).with_log(log))));
    }
    if args.service == "http" {
        let http = HttpOptions {
            header_timeout: args.header_timeout,
            show_hidden: args.show_hidden,
            access_log: access_log(),
            ..HttpOptions::default()
        };
        let files = StaticFiles::new(&args.root, http)
            .with_context(|| format!("cannot serve {}", args.root.display()))?;
        return Ok(Arc::new(Boxed(files)));
    }
    Ok(services::stream_factory(&args.service, opts)?)
}

/// `serve http`'s access log: each request's line goes straight to stderr in one
/// write, as `python3 -m http.server` writes it, unless `NETKIT_LOG` silences
/// `netkit::http::access` (then the records go to `tracing`, which drops them).
fn access_log() -> AccessLog {
    if !tracing::enabled!(target: "netkit::http::access", tracing::Level::INFO) {
        return AccessLog::default();
    }
    AccessLog::to_fn(|rec| {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            rec.write_to(&mut line);
            line.push('\n');
            let _ = crate::log::Stderr.write_all(line.as_bytes());
        });
    })
}
