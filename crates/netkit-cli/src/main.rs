//! The `netkit` command-line tool: a thin layer over the `netkit` library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => cmd::serve::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("netkit: {e:#}");
            ExitCode::from(1)
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
