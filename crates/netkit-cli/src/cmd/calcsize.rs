//! `netkit calcsize FMT`: print the size in bytes of a struct format (via `netkit::pack`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `netkit calcsize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A struct format string, as in Python's struct module (e.g. '<IIIHH', '@bi').
    #[arg(value_name = "FMT")]
    fmt: String,
}

/// Runs `netkit calcsize`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let size =
        netkit::pack::calcsize(&args.fmt).with_context(|| format!("bad format {:?}", args.fmt))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{size}")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
