//! `netkit connect`: netcat for netkit's addresses.
//!
//! `tls://HOST:PORT` adds TLS (see `crate::options::tls`). Streams (TCP, Unix, TLS): stdin goes to the socket and the socket to stdout, with
//! end-of-file handled by the shared EOF model (`--eof`, `--send-only`,
//! `--recv-only`; see `netkit::relay::eof` and `docs/eof.md`). Datagrams (UDP, Unix
//! datagram): each stdin line is one datagram and each reply is printed on its own
//! line; after stdin ends, replies are awaited until every datagram sent has had
//! one or `--wait` has passed. A refused datagram (nobody listens) is an error
//! (exit 1), as a refused stream connection is.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use netkit::net::units::parse_duration;
use netkit::net::{self, Datagram};
use netkit::relay::dump::Dumper;
use netkit::relay::{self, Endpoint, Trace, STDIO_LABELS};

use crate::options::{tls, PipeArgs};

/// How often the datagram receiver checks whether stdin has ended.
const DGRAM_TICK: Duration = Duration::from_millis(50);

/// Arguments of `netkit connect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to connect: HOST:PORT, tls://HOST:PORT, udp://HOST:PORT, unix:///path,
    /// unix-dgram:///path; or HOST (udp://HOST, tls://HOST) with PORT as the next
    /// argument.
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// The port, when ADDR is a bare HOST (`netkit connect 127.0.0.1 9000`).
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
    /// Give up connecting after this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Datagrams: how long to wait for replies after stdin ends (less if every
    /// datagram sent has had a reply).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "1s")]
    pub wait: Duration,
    /// End-of-file handling and traffic dumps.
    #[command(flatten)]
    pub pipe: PipeArgs,
    /// TLS client options.
    #[command(flatten)]
    pub tls: tls::ClientArgs,
}

/// Runs `netkit connect`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = tls::parse_target(&super::join_port(&args.addr, args.port.as_deref())?)?;
    let addr = target.addr;
    let tls_config = match &target.tls_host {
        Some(_) => Some(tls::client_config(&args.tls)?),
        None => None,
    };
    let dumper = args.pipe.dumper()?;
    if addr.is_stream() {
        // The library's error names the address and each failure.
        let mut stream = net::connect(&addr, args.timeout)?;
        let mut bridge = None;
        if let (Some(host), Some(config)) = (&target.tls_host, &tls_config) {
            let (plain, b) = tls::connect(stream, host, config)?;
            (stream, bridge) = (plain, Some(b));
        }
        let trace = dumper.map(|dumper| {
            dumper.note(1, &format!("connected to {addr}"));
            Trace {
                dumper,
                conn: 1,
                labels: STDIO_LABELS,
            }
        });
        let sock = Endpoint::bridged(stream, bridge).context("cannot clone the socket")?;
        relay::run(Endpoint::stdio(), sock, args.pipe.pipe(), trace)
            .context("connection failed")?;
    } else {
        let sock = Datagram::connect_to(&addr)?;
        datagram_copy(Arc::new(sock), args.wait, dumper)
            .with_context(|| format!("no answer from {addr}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends each stdin line as a datagram and prints each reply.
fn datagram_copy(
    sock: Arc<Datagram>,
    wait: Duration,
    dumper: Option<Arc<Dumper>>,
) -> anyhow::Result<()> {
    let sender = sock.clone();
    let send_error: Arc<Mutex<Option<io::Error>>> = Arc::default();
    let send_failed = send_error.clone();
    let sent = Arc::new(AtomicU64::new(0));
    let sent_count = sent.clone();
    let send_dumper = dumper.clone();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let stdin = io::stdin().lock();
        for line in stdin.split(b'\n') {
            let Ok(mut line) = line else { break };
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(d) = &send_dumper {
                d.chunk(1, ">", &line);
            }
            if let Err(e) = sender.send(&line) {
                if let Ok(mut slot) = send_failed.lock() {
                    *slot = Some(e);
                }
                break;
            }
            sent_count.fetch_add(1, Ordering::SeqCst);
        }
        let _ = done_tx.send(());
    });
    sock.set_read_timeout(Some(DGRAM_TICK))?;
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; net::max_datagram_size(sock.is_unix())];
    let mut until: Option<Instant> = None;
    let mut replies = 0u64;
    loop {
        if until.is_none() && done_rx.try_recv().is_ok() {
            if let Some(e) = send_error.lock().ok().and_then(|mut e| e.take()) {
                return Err(e.into());
            }
            until = Some(Instant::now() + wait);
        }
        if until.is_some() && replies >= sent.load(Ordering::SeqCst) {
            return Ok(());
        }
        if until.is_some_and(|t| Instant::now() >= t) {
            return Ok(());
        }
        match sock.recv(&mut buf) {
            Ok(r) => {
                replies += 1;
                if r.truncated {
                    say!("netkit: a reply longer than {} bytes was cut", r.len);
                }
                let data = buf.get(..r.len).unwrap_or(&[]);
                if let Some(d) = &dumper {
                    d.chunk(1, "<", data);
                }
                stdout.write_all(data)?;
                if !data.ends_with(b"\n") {
                    stdout.write_all(b"\n")?;
                }
                stdout.flush()?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            // An earlier datagram was refused (ICMP port unreachable): nobody
            // listens there, which is an error, as for a stream.
            Err(e) => return Err(e.into()),
        }
    }
}
