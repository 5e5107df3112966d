//! `netkit relay LISTEN TARGET`: for each connection accepted on LISTEN, connect
//! to TARGET and forward both ways, like `socat TCP-LISTEN:...,fork TCP:...`.
//!
//! LISTEN is a stream address (TCP, Unix), `-` (stdin/stdout, one session), or a
//! datagram address (UDP, Unix datagram: one session per client address, see
//! `pipe::dgram`).
//! TARGET is any address (TCP, TLS, Unix, UDP, Unix datagram) or `-`; LISTEN
//! speaks TLS with `--tls-cert/--tls-key` or `--tls-self-signed`. Connections are
//! relayed concurrently with bounded memory per direction, so a slow side slows
//! the other; half-close is propagated both ways by the shared EOF model
//! (`pipe::eof`, `docs/eof.md`). A stream LISTEN to a stream TARGET (TLS on
//! either side or not) runs on the reactor (`pipe::reactor`, a few event loops
//! for all sessions); a stdio or datagram end runs each session on its own
//! threads with a fixed 64 KiB buffer per direction (`pipe::run`).
//! With TARGET `-`, connections are relayed one after another (there is one stdin).
//! A datagram TARGET never reaches end-of-file, so `--eof half` means `wait:1s`
//! for it.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use netkit::net::{self, Address, Datagram, ListenOptions, Listener, PeerAddr, Stream};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use crate::duration::parse_duration;
use crate::pipe::eof::EofPolicy;
use crate::pipe::{self, tls, Endpoint, PipeArgs, Trace, STDIO_LABELS};

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
        bail!("--max-conns must be at least 1");
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
            bail!("relay needs at least one side that is not -");
        };
        let b = open_target(addr, tls.as_ref(), args.timeout)?;
        let trace = dumper.map(|dumper| Trace {
            dumper,
            conn: 1,
            labels: STDIO_LABELS,
        });
        pipe::run(Endpoint::stdio(), b, pipe_args.pipe(), trace).context("relay failed")?;
        return Ok(ExitCode::SUCCESS);
    }
    let addr = Address::parse(&args.listen)
        .with_context(|| format!("invalid address `{}`", args.listen))?;
    if !addr.is_stream() {
        let Target::Addr(target_addr, tls) = &target else {
            bail!("a datagram LISTEN needs a TARGET address, not -");
        };
        if tls_server.is_some() {
            bail!("TLS options need a stream LISTEN address");
        }
        let sock = Datagram::bind(&addr).with_context(|| format!("cannot listen on {addr}"))?;
        eprintln!("listening on {}", sock.local_address());
        let timeout = args.timeout;
        pipe::dgram::serve(sock, args.idle_timeout, dumper, || {
            open_target(target_addr, tls.as_ref(), timeout)
        })
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
            pipe::reactor::serve(pipe::reactor::Options {
                listen: addr,
                target: target_addr.clone(),
                timeout: args.timeout,
                max_conns: args.max_conns,
                workers: args.workers,
                pipe: pipe_args.pipe(),
                dumper,
                tls_server,
                tls_client,
            })?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let listener = Listener::bind(&addr, &ListenOptions::default())
        .with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!("listening on {}", listener.local_address());
    let active = Arc::new(AtomicUsize::new(0));
    let mut conn = 0u64;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                eprintln!("netkit: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        conn += 1;
        if active.load(Ordering::SeqCst) >= args.max_conns {
            eprintln!("netkit: connection {conn} from {peer}: over --max-conns, closed");
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
            eprintln!("netkit: connection {conn} from {peer}: {e:#}");
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
        pipe::run(a, b, self.pipe.pipe(), self.trace)?;
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
