//! `netkit relay LISTEN TARGET`: for each connection accepted on LISTEN, connect
//! to TARGET and forward both ways, like `socat TCP-LISTEN:...,fork TCP:...`.
//!
//! LISTEN is a stream address (TCP, Unix), `-` (stdin/stdout, one session), or a
//! datagram address (UDP, Unix datagram: one session per client address, see
//! `netkit::relay::dgram`).
//! TARGET is any address (TCP, TLS, Unix, UDP, Unix datagram) or `-`; LISTEN
//! speaks TLS with `--tls-cert/--tls-key` or `--tls-self-signed`. Connections are
//! relayed concurrently with bounded memory per direction, so a slow side slows
//! the other; half-close is propagated both ways by the shared EOF model
//! (`netkit::relay::eof`, `docs/eof.md`). A stream LISTEN to a stream TARGET (TLS on
//! either side or not) runs on the reactor (`netkit::relay::reactor`, a few event loops
//! for all sessions); a stdio or datagram end runs each session on its own
//! threads with a fixed 64 KiB buffer per direction (`netkit::relay::run`).
//! With TARGET `-`, connections are relayed one after another (there is one stdin).
//! A datagram TARGET never reaches end-of-file, so `--eof half` means `wait:1s`
//! for it. SIGINT/SIGTERM: the reactor path drains its sessions for up to
//! [`GRACE`] (a second signal aborts, exit 1); the others end at
//! once; both remove LISTEN's Unix socket file and exit 0.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use netkit::net::units::parse_duration;
use netkit::net::{self, Address, Datagram, ListenOptions, Listener, PeerAddr, Stream};
use netkit::reactor::{raise_nofile_limit, Reactor, ReactorConfig};
use netkit::relay::eof::EofPolicy;
use netkit::relay::{self, Endpoint, Trace, STDIO_LABELS};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use super::{bind_error, parse_address, usage};
use crate::options::{tls, PipeArgs};
use crate::signals::{self, SocketFiles};

/// How long sessions on the reactor may finish after SIGINT/SIGTERM.
pub const GRACE: Duration = Duration::from_secs(10);

/// `--eof half` with a datagram target means `wait:` this long.
const DATAGRAM_LINGER: Duration = Duration::from_secs(1);

/// Arguments of `netkit relay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to accept: HOST:PORT, unix:///path, udp://HOST:PORT,
    /// unix-dgram:///path, or - for stdin/stdout.
    #[arg(value_name = "LISTEN")]
    pub listen: String,
    /// Where to forward each connection: HOST:PORT, tls://HOST:PORT, udp://HOST:PORT,
    /// unix:///path, unix-dgram:///path, or - for stdin/stdout.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Give up connecting to TARGET after this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// A datagram LISTEN: close a client's session after this long without a
    /// datagram from it.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "60s")]
    pub idle_timeout: Duration,
    /// Relay at most N connections at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_conns: usize,
    /// Event loops for a stream LISTEN to a stream TARGET without TLS (0: one
    /// per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,
    /// End-of-file handling and traffic dumps.
    #[command(flatten)]
    pub pipe: PipeArgs,
    /// TLS client options for a tls:// TARGET.
    #[command(flatten)]
    pub tls_client: tls::ClientArgs,
    /// TLS server options for LISTEN.
    #[command(flatten)]
    pub tls_server: tls::ServerArgs,
}

/// Where relayed connections go.
#[derive(Debug, Clone)]
enum Target {
    Stdio,
    Addr(Address, Option<TlsTarget>),
}

/// A tls:// target's server name and configuration.
#[derive(Debug, Clone)]
struct TlsTarget {
    host: String,
    config: Arc<ClientConfig>,
}

/// Runs `netkit relay`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.max_conns == 0 {
        return Err(usage("--max-conns must be at least 1"));
    }
    let target = match args.target.as_str() {
        "-" => Target::Stdio,
        t => {
            let parsed = tls::parse_target(t)?;
            let tls = match parsed.tls_host {
                Some(host) => Some(TlsTarget {
                    host,
                    config: tls::client_config(&args.tls_client)?,
                }),
                None => None,
            };
            Target::Addr(parsed.addr, tls)
        }
    };
    let tls_server = tls::server_config(&args.tls_server)?;
    let dumper = args.pipe.dumper()?;
    let mut pipe_args = args.pipe.clone();
    if matches!(&target, Target::Addr(a, _) if !a.is_stream()) && pipe_args.eof == EofPolicy::Half {
        // A datagram target never ends; `half` would keep the session until a
        // reply finds the client gone.
        pipe_args.eof = EofPolicy::Wait(DATAGRAM_LINGER);
    }
    if args.listen == "-" {
        let Target::Addr(addr, tls) = &target else {
            return Err(usage("relay needs at least one side that is not -"));
        };
        let b = open_target(addr, tls.as_ref(), args.timeout)?;
        let trace = dumper.map(|dumper| Trace {
            dumper,
            conn: 1,
            labels: STDIO_LABELS,
        });
        relay::run(Endpoint::stdio(), b, pipe_args.pipe(), trace).context("relay failed")?;
        return Ok(ExitCode::SUCCESS);
    }
    let addr = parse_address(&args.listen)?;
    if !addr.is_stream() {
        let Target::Addr(target_addr, tls) = &target else {
            return Err(usage("a datagram LISTEN needs a TARGET address, not -"));
        };
        if tls_server.is_some() {
            return Err(usage("TLS options need a stream LISTEN address"));
        }
        let signals = signals::install()?;
        let sock = Datagram::bind(&addr).map_err(|e| bind_error(&addr, e))?;
        say!("listening on {}", sock.local_address());
        let _watch = signals::exit_on_signal(signals, SocketFiles::of([&addr]))?;
        let timeout = args.timeout;
        relay::dgram::serve(
            sock,
            args.idle_timeout,
            dumper,
            &crate::log::relay_log(),
            || open_target(target_addr, tls.as_ref(), timeout),
        )
        .context("relay failed")?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Target::Addr(target_addr, tls) = &target {
        if target_addr.is_stream() {
            let tls_client = match tls {
                Some(t) => {
                    let name = ServerName::try_from(t.host.clone())
                        .map_err(|e| anyhow::anyhow!("invalid TLS server name {}: {e}", t.host))?;
                    Some((t.config.clone(), name))
                }
                None => None,
            };
            // Two descriptors per session; a failure leaves the soft limit as it was.
            let _ = raise_nofile_limit();
            let targets = relay::reactor::resolve(target_addr)?;
            let opts = relay::reactor::Options {
                target: target_addr.clone(),
                targets,
                timeout: args.timeout,
                max_conns: args.max_conns,
                pipe: pipe_args.pipe(),
                dumper,
                tls_client,
                log: crate::log::relay_log(),
            };
            serve_on_reactor(&addr, args.workers, tls_server, opts)?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let signals = signals::install()?;
    let listener =
        Listener::bind(&addr, &ListenOptions::default()).map_err(|e| bind_error(&addr, e))?;
    say!("listening on {}", listener.local_address());
    let _watch = signals::exit_on_signal(signals, SocketFiles::of([&addr]))?;
    let active = Arc::new(AtomicUsize::new(0));
    let mut conn = 0u64;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                say!("netkit: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        conn += 1;
        if active.load(Ordering::SeqCst) >= args.max_conns {
            say!("netkit: connection {conn} from {peer}: over --max-conns, closed");
            continue;
        }
        let trace = dumper.clone().map(|dumper| {
            dumper.note(conn, &format!("accepted from {peer}"));
            Trace {
                dumper,
                conn,
                labels: STDIO_LABELS,
            }
        });
        let job = Job {
            conn,
            peer,
            stream,
            target: target.clone(),
            tls_server: tls_server.clone(),
            timeout: args.timeout,
            pipe: pipe_args.clone(),
            trace,
        };
        match target {
            Target::Stdio => job.run(),
            Target::Addr(..) => {
                let active = active.clone();
                active.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    job.run();
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }
}

/// On SIGINT/SIGTERM: removes the socket files and exits 0 (sessions in
/// progress end with the process).
/// Runs a stream-to-stream relay on the reactor until SIGINT/SIGTERM, then lets the
/// sessions finish for up to [`GRACE`] (a second signal aborts; see `crate::signals`).
fn serve_on_reactor(
    listen: &Address,
    workers: usize,
    tls_server: Option<Arc<ServerConfig>>,
    opts: relay::reactor::Options,
) -> anyhow::Result<()> {
    let signals = signals::install()?;
    let mut reactor = Reactor::new(ReactorConfig {
        workers,
        grace: GRACE,
        ..ReactorConfig::default()
    })
    .context("cannot start the reactor")?;
    let local = relay::reactor::listen(&mut reactor, listen, tls_server, opts)
        .map_err(|e| bind_error(listen, e))?;
    say!("listening on {local}");
    let handle = reactor.handle();
    let watch = signals::watch(
        signals,
        move || handle.shutdown(),
        SocketFiles::of([listen]),
    )?;
    let result = reactor.run().context("relay failed");
    drop(watch);
    result
}

/// One relayed connection.
struct Job {
    conn: u64,
    peer: PeerAddr,
    stream: Stream,
    target: Target,
    tls_server: Option<Arc<ServerConfig>>,
    timeout: Duration,
    pipe: PipeArgs,
    trace: Option<Trace>,
}

impl Job {
    fn run(self) {
        let (conn, peer) = (self.conn, self.peer.clone());
        if let Err(e) = self.relay() {
            say!("netkit: connection {conn} from {peer}: {e:#}");
        }
    }

    fn relay(self) -> anyhow::Result<()> {
        let (stream, bridge) = match &self.tls_server {
            Some(config) => {
                let (s, b) = tls::accept(self.stream, config)?;
                (s, Some(b))
            }
            None => (self.stream, None),
        };
        let b = match &self.target {
            Target::Stdio => Endpoint::stdio(),
            Target::Addr(addr, tls) => {
                let b = open_target(addr, tls.as_ref(), self.timeout)?;
                if let Some(t) = &self.trace {
                    t.dumper.note(self.conn, &format!("connected to {addr}"));
                }
                b
            }
        };
        let a = Endpoint::bridged(stream, bridge).context("cannot clone the socket")?;
        relay::run(a, b, self.pipe.pipe(), self.trace)?;
        Ok(())
    }
}

/// Connects to a relay target.
fn open_target(
    addr: &Address,
    tls: Option<&TlsTarget>,
    timeout: Duration,
) -> anyhow::Result<Endpoint> {
    let ep = if addr.is_stream() {
        let s = net::connect(addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
        match tls {
            Some(t) => {
                let (plain, bridge) = tls::connect(s, &t.host, &t.config)?;
                Endpoint::bridged(plain, Some(bridge))
            }
            None => Endpoint::stream(s),
        }
    } else {
        let d = Datagram::connect_to(addr).with_context(|| format!("cannot connect to {addr}"))?;
        Endpoint::datagram(d)
    };
    ep.with_context(|| format!("cannot set up {addr}"))
}
