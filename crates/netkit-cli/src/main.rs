//! The `netkit` command-line tool: a thin layer over the `netkit` library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[macro_use]
mod log;
mod cmd;
mod options;
mod signals;

/// Python's network-programming toolkit, in Rust.
#[derive(Debug, Parser)]
#[command(name = "netkit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a built-in service (default: echo on 127.0.0.1:9000).
    Serve(cmd::serve::Args),
    /// Download a URL to a file (urlretrieve), with resume and a progress bar.
    Fetch(cmd::fetch::Args),
    /// Connect to ADDR: stdin to the socket, the socket to stdout.
    Connect(cmd::connect::Args),
    /// Accept a connection on ADDR and join it to stdin/stdout (or --exec CMD).
    Listen(cmd::listen::Args),
    /// Accept connections on LISTEN and forward each one to TARGET.
    Relay(cmd::relay::Args),
    /// Pack VALUEs with a struct FMT and print the bytes as hex.
    Pack(cmd::pack::Args),
    /// Unpack HEX bytes with a struct FMT and print the values.
    Unpack(cmd::unpack::Args),
    /// Print the size of a struct FMT.
    Calcsize(cmd::calcsize::Args),
    /// List a ZIP archive's entries from its headers.
    Zipinfo(cmd::zipinfo::Args),
    /// Load-test an echo-style server and report throughput and latency.
    Bench(cmd::bench::Args),
    /// Send files (glob patterns) to `netkit serve receive`.
    Send(cmd::send::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => cmd::serve::run(a),
        Command::Fetch(a) => cmd::fetch::run(a),
        Command::Connect(a) => cmd::connect::run(a),
        Command::Listen(a) => cmd::listen::run(a),
        Command::Relay(a) => cmd::relay::run(a),
        Command::Pack(a) => cmd::pack::run(a),
        Command::Unpack(a) => cmd::unpack::run(a),
        Command::Calcsize(a) => cmd::calcsize::run(a),
        Command::Zipinfo(a) => cmd::zipinfo::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Send(a) => cmd::send::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            say!("netkit: {e:#}");
            if cmd::is_usage(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Whether an error is a closed stdout (`netkit ... | head`), which exits 0.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
