//! `netkit pack FMT VALUE...`: pack Python-literal values with a struct format and print
//! the bytes as lowercase hex. Value parsing lives in `netkit::pack::literal`; packing in
//! `netkit::pack`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use netkit::pack::{literal, Struct};

/// Arguments of `netkit pack`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "VALUEs are Python literals: 42, -1, 0xff, 0o17, 0b101, 1_000, 1.5, -0.0, \
1e3, inf, -inf, nan, True, False, b'ab\\x00'.\nExample: netkit pack '<hI' -1 0xdeadbeef  ->  ffffefbeadde"
)]
pub struct Args {
    /// A struct format string, as in Python's struct module (e.g. '<IIIHH', '!I').
    #[arg(value_name = "FMT")]
    fmt: String,
    /// Values to pack, one per format item (negative numbers need no `--`).
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    values: Vec<String>,
}

/// Runs `netkit pack`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let st = Struct::new(&args.fmt).with_context(|| format!("bad format {:?}", args.fmt))?;
    let values = args
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| literal::parse(v).map_err(|e| anyhow::anyhow!("VALUE {}: {e}", i + 1)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = st
        .pack(&values)
        .with_context(|| format!("cannot pack with {:?}", args.fmt))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", literal::hex::encode(&bytes))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
