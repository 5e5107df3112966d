//! The seed's Twisted logger (`twisted_logger.py`: `SimpleLogger`, a
//! `LineReceiver` with `delimiter = b"\n"`) on netkit's reactor.
//!
//! Usage: `twisted_logger PORT` — listens on `127.0.0.1:PORT` (0 picks a free port),
//! prints `listening on ADDR` on stderr, then for every client prints
//! `Got connection from ('127.0.0.1', PORT)`, each line it sends, and
//! `('127.0.0.1', PORT) disconnected`, as the Python program does. SIGINT or
//! SIGTERM stops it gracefully.

use std::net::SocketAddr;
use std::process::ExitCode;

use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use netkit::protocol::{CloseReason, ConnInfo, PeerAddr};
use netkit::reactor::{Reactor, ReactorConfig};
use netkit::services::python_addr;

/// Twisted's `SimpleLogger`.
struct SimpleLogger {
    client: PeerAddr,
}

impl LineProtocol for SimpleLogger {
    fn connection_made(&mut self, _t: &mut LineTransport<'_>) {
        println!("Got connection from {}", python_addr(&self.client));
    }

    fn line_received(&mut self, line: &[u8], _t: &mut LineTransport<'_>) {
        // `line.decode(errors="replace")`
        println!("{}", String::from_utf8_lossy(line));
    }

    fn connection_lost(&mut self, _reason: &CloseReason) {
        println!("{} disconnected", python_addr(&self.client));
    }
}

fn main() -> ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: twisted_logger PORT");
        return ExitCode::from(2);
    };
    match run(port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twisted_logger: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(port: u16) -> std::io::Result<()> {
    let mut reactor = Reactor::new(ReactorConfig {
        workers: 1,
        ..Default::default()
    })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let local = reactor.listen(addr, |c: &ConnInfo| {
        LineReceiver::new(SimpleLogger {
            client: c.peer.clone(),
        })
        .with_delimiter(b"\n")
    })?;
    let handle = reactor.shutdown_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            handle.shutdown();
        }
    });
    eprintln!("listening on {local}");
    reactor.run()
}
