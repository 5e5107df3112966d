//! `netkit connect`: netcat for netkit's addresses.
//!
//! Streams (TCP, Unix): stdin goes to the socket and the socket to stdout, on two
//! threads; at stdin's end the write side is shut down (half-close) and output is
//! read until the server closes. Datagrams (UDP, Unix datagram): each stdin line
//! is one datagram and each reply is printed on its own line; after stdin ends,
//! replies are awaited for `--wait`.

use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use netkit::net::{self, Address, Datagram, Stream};

use crate::duration::parse_duration;

/// How often the datagram receiver checks whether stdin has ended.
const DGRAM_TICK: Duration = Duration::from_millis(50);

/// Arguments of `netkit connect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to connect: HOST:PORT, udp://HOST:PORT, unix:///path, unix-dgram:///path.
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// Give up connecting after this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Datagrams: how long to wait for replies after stdin ends.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "1s")]
    pub wait: Duration,
}

/// Runs `netkit connect`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let addr =
        Address::parse(&args.addr).with_context(|| format!("invalid address `{}`", args.addr))?;
    if addr.is_stream() {
        let stream = net::connect(&addr, args.timeout)
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream_copy(stream)?;
    } else {
        let sock = Datagram::connect_to(&addr)?;
        datagram_copy(Arc::new(sock), args.wait)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies stdin to the socket (then half-closes) and the socket to stdout.
fn stream_copy(stream: Stream) -> anyhow::Result<()> {
    let writer = stream.try_clone().context("cannot clone the socket")?;
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if writer.send_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match (&stream).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e).context("reading from the socket"),
        };
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
    }
    Ok(())
}

/// Sends each stdin line as a datagram and prints each reply.
fn datagram_copy(sock: Arc<Datagram>, wait: Duration) -> anyhow::Result<()> {
    let sender = sock.clone();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let stdin = io::stdin().lock();
        for line in stdin.split(b'\n') {
            let Ok(mut line) = line else { break };
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Err(e) = sender.send(&line) {
                eprintln!("netkit: send failed: {e}");
                break;
            }
        }
        let _ = done_tx.send(());
    });
    sock.set_read_timeout(Some(DGRAM_TICK))?;
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; net::UDP_MAX + 1];
    let mut until: Option<Instant> = None;
    loop {
        if until.is_none() && done_rx.try_recv().is_ok() {
            until = Some(Instant::now() + wait);
        }
        if until.is_some_and(|t| Instant::now() >= t) {
            return Ok(());
        }
        match sock.recv(&mut buf) {
            Ok(r) => {
                let data = buf.get(..r.len).unwrap_or(&[]);
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
            // A refused earlier datagram (no server yet) is reported, not fatal.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                eprintln!("netkit: {e}");
            }
            Err(e) => return Err(e).context("receiving a datagram"),
        }
    }
}
