//! The echo service on the reactor, for benchmarks: `reactor_echo [ADDR] [WORKERS]`
//! (default `127.0.0.1:9000`, 1 worker). Prints `listening on ADDR` on stderr;
//! SIGINT or SIGTERM stops it gracefully.

use std::process::ExitCode;

use netkit::net::Address;
use netkit::reactor::{raise_nofile_limit, Reactor, ReactorConfig};
use netkit::services::{stream_factory, ServiceOptions};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reactor_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = Address::parse(&args.next().unwrap_or_else(|| "127.0.0.1:9000".into()))?;
    let workers = match args.next() {
        Some(n) => n.parse()?,
        None => 1,
    };
    raise_nofile_limit()?;
    let mut reactor = Reactor::new(ReactorConfig {
        workers,
        ..Default::default()
    })?;
    let factory = stream_factory("echo", &ServiceOptions::default())?;
    let local = reactor.listen_dyn(&addr, factory)?;
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
    reactor.run()?;
    Ok(())
}
