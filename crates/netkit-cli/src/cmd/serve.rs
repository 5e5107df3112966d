//! `netkit serve`: run a built-in service on one or more addresses, in one of the
//! concurrency modes.
//!
//! Arguments are parsed here, validated into a `netkit::server::Server`, and the
//! server runs until SIGINT/SIGTERM. Each bound address is announced on stderr as
//! `listening on ADDR` once it is ready.
//!
//! Socket activation: when systemd (or any supervisor following its
//! `LISTEN_FDS`/`LISTEN_PID` convention) passes listening sockets, they replace
//! the default address; an explicit `--listen` adds more.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use netkit::http::{AccessLog, HttpOptions, StaticFiles};
use netkit::net::Address;
use netkit::protocol::proxy::ProxyFactory;
use netkit::protocol::tap::TapFactory;
use netkit::protocol::tls::TlsFactory;
use netkit::protocol::{Boxed, DynFactory};
use netkit::reactor::{raise_nofile_limit, Reactor, ReactorConfig};
use netkit::server::{Mode, Server};
use netkit::services::{self, ServiceOptions};
use rustls::ServerConfig;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::duration::{parse_duration, parse_size, parse_size_u64};
use crate::pipe::dump::{DumpArgs, ServiceTap};

/// The address served when no `--listen` is given.
const DEFAULT_LISTEN: &str = "127.0.0.1:9000";

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
    /// The service to run: echo, upper, hello, logger, chat, discard, daytime,
    /// chargen, http.
    #[arg(default_value = "echo")]
    pub service: String,
    /// Address to listen on (repeatable): HOST:PORT, udp://HOST:PORT,
    /// unix:///path, unix-dgram:///path. Default 127.0.0.1:9000.
    #[arg(long = "listen", short = 'l', value_name = "ADDR")]
    pub listen: Vec<String>,
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
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "64KiB")]
    pub max_line: usize,
    /// Longest datagram received whole on udp:// and unix-dgram:// addresses; a
    /// longer one is dropped and logged (default: the largest the socket can
    /// carry: 64KiB for UDP, more for Unix datagrams).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_datagram: Option<usize>,
    /// How long connections may finish after SIGINT/SIGTERM.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub grace: Duration,
    /// Listen backlog (default 1024, capped by the system's maximum).
    #[arg(long, value_name = "N")]
    pub backlog: Option<i32>,
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
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub header_timeout: Duration,
    /// `http`: list dotfiles in directory listings (hidden by default).
    #[arg(long)]
    pub show_hidden: bool,
    /// `receive`: replace files that already exist.
    #[arg(long)]
    pub overwrite: bool,
    /// `receive`: remove partial files of abandoned uploads untouched this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "24h")]
    pub partial_ttl: Duration,
    /// `receive`: the most bytes abandoned partial uploads keep together; the
    /// oldest go first (they also make way when a new upload needs the disk).
    #[arg(long, value_name = "BYTES", value_parser = parse_size_u64, default_value = "4GiB")]
    pub partial_max: u64,
    /// Reactor I/O backend: epoll (portable default) or uring (Linux io_uring;
    /// stream addresses only).
    #[arg(long, value_parser = ["epoll", "uring"], default_value = "epoll")]
    pub backend: String,
    /// Instead of a service, run `sh -c CMD` per connection with the socket as
    /// its stdin and stdout (inetd style); stream addresses only.
    #[arg(long, short = 'e', value_name = "CMD")]
    pub exec: Option<String>,
    /// TLS on every (stream) address.
    #[command(flatten)]
    pub tls: crate::pipe::tls::ServerArgs,
    /// Traffic dumps of stream connections (plaintext under TLS).
    #[command(flatten)]
    pub dump: DumpArgs,
}

/// Runs `netkit serve`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let tls = crate::pipe::tls::server_config(&args.tls)?;
    if let Some(cmd) = &args.exec {
        let listen = if args.listen.is_empty() {
            vec![DEFAULT_LISTEN.to_string()]
        } else {
            args.listen.clone()
        };
        return crate::cmd::listen::serve_exec(&listen, cmd, tls.as_ref());
    }
    let mode = match args.mode {
        ModeArg::Reactor => return run_reactor(&args, tls),
        ModeArg::Threads => Mode::Threads,
        ModeArg::Pool => Mode::Pool,
        ModeArg::Fork => Mode::Fork,
        ModeArg::Sequential => Mode::Sequential,
    };
    let server = build(&args, mode, tls)?;
    announce(server.local_addresses());
    server.serve_forever().context("server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the service on the reactor: raises the open-file limit, binds every
/// address, and serves until SIGINT/SIGTERM and the grace period end.
fn run_reactor(args: &Args, tls: Option<Arc<ServerConfig>>) -> anyhow::Result<ExitCode> {
    check(args)?;
    // Handlers go in before the first `listening on` line, so a signal sent as
    // soon as a client sees it still stops the server gracefully.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    if let Err(e) = raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let mut reactor = Reactor::new(ReactorConfig {
        workers: args.workers.unwrap_or(0),
        idle_timeout: args.idle_timeout,
        max_conns: args.max_conns,
        grace: args.grace,
        backlog: args.backlog.unwrap_or(netkit::net::DEFAULT_BACKLOG),
        reuse_port: args.reuseport,
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
    let addrs = listen_addresses(args, !inherited.is_empty());
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
    for a in addrs {
        let addr = Address::parse(&a).with_context(|| format!("invalid address `{a}`"))?;
        let local = if addr.is_stream() {
            reactor.listen_dyn(&addr, factory()?)
        } else {
            reactor.listen_datagram(&addr, services::datagram_service(&args.service, &opts)?)
        };
        bound.push(local.with_context(|| format!("cannot listen on {addr}"))?);
    }
    announce(bound);
    let handle = reactor.shutdown_handle();
    let signals_handle = signals.handle();
    let watcher = std::thread::Builder::new()
        .name("netkit-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!("signal {sig}: stopping gracefully");
                handle.shutdown();
            }
        })
        .context("cannot start the signal thread")?;
    let result = reactor.run();
    signals_handle.close();
    let _ = watcher.join();
    result.context("reactor failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `listening on ADDR` for each bound address.
fn announce(bound: Vec<Address>) {
    for addr in bound {
        eprintln!("listening on {addr}");
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
fn listen_addresses(args: &Args, inherited: bool) -> Vec<String> {
    if !args.listen.is_empty() {
        args.listen.clone()
    } else if inherited {
        // Sockets passed by the supervisor replace the default address.
        Vec::new()
    } else {
        vec![DEFAULT_LISTEN.to_string()]
    }
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

/// Checks the limits every mode shares.
fn check(args: &Args) -> anyhow::Result<()> {
    if args.workers == Some(0) {
        bail!("--workers must be at least 1");
    }
    if args.max_conns == Some(0) {
        bail!("--max-conns must be at least 1");
    }
    if args.max_line == 0 {
        bail!("--max-line must be at least 1 byte");
    }
    if args.max_datagram == Some(0) {
        bail!("--max-datagram must be at least 1 byte");
    }
    Ok(())
}

/// Validates the arguments into a bound server.
fn build(args: &Args, mode: Mode, tls: Option<Arc<ServerConfig>>) -> anyhow::Result<Server> {
    check(args)?;
    let inherited =
        netkit::net::listen_fds(false).context("cannot use the sockets passed in LISTEN_FDS")?;
    let addrs = listen_addresses(args, !inherited.is_empty());
    let opts = service_options(args);
    let mut b = Server::builder()
        .mode(mode)
        .idle_timeout(args.idle_timeout)
        .max_conns(args.max_conns)
        .max_line(args.max_line)
        .grace(args.grace)
        .reuse_port(args.reuseport)
        .proxy_protocol(args.proxy_protocol)
        .handle_signals(true);
    if let Some(n) = args.workers {
        b = b.workers(n);
    }
    if let Some(n) = args.backlog {
        b = b.backlog(n);
    }
    if let Some(n) = args.max_datagram {
        b = b.max_datagram(n);
    }
    let (mut streams, mut dgrams) = (!inherited.is_empty(), false);
    for l in inherited {
        b = b.listener(l);
    }
    for a in &addrs {
        let addr = Address::parse(a).with_context(|| format!("invalid address `{a}`"))?;
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

/// The service's own Protocol factory.
fn service_factory(args: &Args, opts: &ServiceOptions) -> anyhow::Result<DynFactory> {
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
            let _ = std::io::stderr().write_all(line.as_bytes());
        });
    })
}

/// Logs to stderr; the level comes from `NETKIT_LOG` or `RUST_LOG` (default info).
fn init_logging() {
    let filter = std::env::var("NETKIT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
