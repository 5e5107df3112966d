//! `netkit listen`: accept a connection and join it to stdin/stdout, like
//! `ncat -l`; or, with `--exec CMD`, run a program per connection with the socket
//! as its stdin and stdout.
//!
//! `--keep-open` serves connection after connection, one after another: each one
//! gets stdin from where the previous one stopped and its output goes to stdout
//! (no broadcast). With `--exec`, `--keep-open` runs the children concurrently.
//! `--tls-cert/--tls-key` or `--tls-self-signed` put TLS in front of each
//! connection (`netkit::relay::tls`), for the pipe and for `--exec` alike.
//! End-of-file follows the shared EOF model (`netkit::relay::eof`, `docs/eof.md`).
//! SIGINT/SIGTERM end it with exit status 0 after removing its Unix socket file
//! (`crate::signals`).

use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use netkit::net::{Address, ListenOptions, Listener, Stream};
use netkit::relay::tls::Bridge;
use netkit::relay::{self, exec, Endpoint, Trace, STDIO_LABELS};
use rustls::ServerConfig;

use super::{bind_error, join_port, parse_address, usage};
use crate::options::{tls, PipeArgs};
use crate::signals::{self, SocketFiles};

/// How long an `--exec` connection's TLS bridge may take to deliver the rest
/// after the child exits.
const BRIDGE_LINGER: Duration = Duration::from_secs(10);

/// How long to pause after a failed accept (e.g. out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Arguments of `netkit listen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen: HOST:PORT, unix:///path (port 0 picks a free port);
    /// or HOST with PORT as the next argument.
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// The port, when ADDR is a bare HOST (`netkit listen 127.0.0.1 9000`).
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
    /// Make a `[::]` listener IPv6 only (by default it takes IPv4 clients too).
    #[arg(long)]
    pub ipv6_only: bool,
    /// Accept more connections after the first ends (one after another; with
    /// --exec, concurrently).
    #[arg(long, short = 'k')]
    pub keep_open: bool,
    /// Run `sh -c CMD` per connection with the socket as its stdin and stdout,
    /// and NETKIT_PEER_ADDR / NETKIT_PEER_PORT set.
    #[arg(long, short = 'e', value_name = "CMD")]
    pub exec: Option<String>,
    /// End-of-file handling and traffic dumps.
    #[command(flatten)]
    pub pipe: PipeArgs,
    /// TLS server options.
    #[command(flatten)]
    pub tls: tls::ServerArgs,
}

/// Runs `netkit listen`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let addr = parse_address(&join_port(&args.addr, args.port.as_deref())?)?;
    if !addr.is_stream() {
        return Err(usage(format!(
            "listen takes a stream address (HOST:PORT or unix:///path), not {addr}"
        )));
    }
    let tls = tls::server_config(&args.tls)?;
    let signals = signals::install()?;
    let listener = bind(&addr, args.ipv6_only)?;
    say!("listening on {}", listener.local_address());
    let _watch = signals::exit_on_signal(signals, SocketFiles::of([&addr]))?;
    match &args.exec {
        Some(cmd) => exec_loop(&listener, cmd, args.keep_open, tls.as_ref()),
        None => pipe_loop(&listener, &args, tls.as_ref()),
    }
}

/// Binds a listener, naming the address once in an error.
fn bind(addr: &Address, ipv6_only: bool) -> anyhow::Result<Listener> {
    let opts = ListenOptions {
        ipv6_only,
        ..ListenOptions::default()
    };
    Listener::bind(addr, &opts).map_err(|e| bind_error(addr, e))
}

/// Joins each accepted connection to stdin/stdout, one after another.
fn pipe_loop(
    listener: &Listener,
    args: &Args,
    tls: Option<&Arc<ServerConfig>>,
) -> anyhow::Result<ExitCode> {
    let dumper = args.pipe.dumper()?;
    let mut conn = 0u64;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if args.keep_open => {
                say!("netkit: accept failed: {e}");
                thread::sleep(ACCEPT_RETRY);
                continue;
            }
            Err(e) => return Err(e).context("accept failed"),
        };
        conn += 1;
        let (stream, bridge) = match secure(stream, tls) {
            Ok(s) => s,
            Err(e) if args.keep_open => {
                say!("netkit: connection {conn} from {peer}: {e:#}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let trace = dumper.clone().map(|dumper| {
            dumper.note(conn, &format!("accepted from {peer}"));
            Trace {
                dumper,
                conn,
                labels: STDIO_LABELS,
            }
        });
        let sock = Endpoint::bridged(stream, bridge).context("cannot clone the socket")?;
        let result = relay::run(Endpoint::stdio(), sock, args.pipe.pipe(), trace);
        if !args.keep_open {
            result.context("connection failed")?;
            return Ok(ExitCode::SUCCESS);
        }
        if let Err(e) = result {
            say!("netkit: connection {conn} from {peer}: {e}");
        }
    }
}

/// The accepted stream, behind a TLS server handshake when `tls` is set.
fn secure(
    stream: Stream,
    tls: Option<&Arc<ServerConfig>>,
) -> anyhow::Result<(Stream, Option<Bridge>)> {
    match tls {
        Some(config) => Ok(tls::accept(stream, config).map(|(s, b)| (s, Some(b)))?),
        None => Ok((stream, None)),
    }
}

/// Runs `cmd` per accepted connection; without `keep_open`, for one connection,
/// waiting for the child to exit.
fn exec_loop(
    listener: &Listener,
    cmd: &str,
    keep_open: bool,
    tls: Option<&Arc<ServerConfig>>,
) -> anyhow::Result<ExitCode> {
    let mut conn = 0u64;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if keep_open => {
                say!("netkit: accept failed: {e}");
                thread::sleep(ACCEPT_RETRY);
                continue;
            }
            Err(e) => return Err(e).context("accept failed"),
        };
        conn += 1;
        let (stream, bridge) = match secure(stream, tls) {
            Ok(s) => s,
            Err(e) if keep_open => {
                say!("netkit: connection {conn} from {peer}: {e:#}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let child = match exec::spawn(cmd, stream, &peer) {
            Ok(c) => c,
            Err(e) if keep_open => {
                say!("netkit: connection {conn} from {peer}: cannot run `{cmd}`: {e}");
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot run `{cmd}`")),
        };
        let pid = child.id();
        say!("connection {conn} from {peer}: started pid {pid}");
        let reaper = exec::reap(child, move |status| {
            match status {
                Ok(s) => say!(
                    "connection {conn} from {peer}: pid {pid} ended with {}",
                    exec::describe(s)
                ),
                Err(e) => say!("netkit: connection {conn}: waiting for pid {pid}: {e}"),
            }
            if let Some(b) = bridge {
                b.wait(BRIDGE_LINGER);
            }
        });
        if !keep_open {
            let _ = reaper.join();
            return Ok(ExitCode::SUCCESS);
        }
    }
}
