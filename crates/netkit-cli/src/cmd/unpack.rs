//! `netkit unpack FMT HEX`: unpack hex bytes with a struct format and print the values
//! as a Python tuple (or, with `--json`, a JSON array). Output formatting lives in
//! `netkit::pack::literal`; unpacking in `netkit::pack`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use netkit::pack::{literal, Struct};

/// Arguments of `netkit unpack`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "HEX is case-insensitive; whitespace is ignored, so `0a 00 00 00` and \
'0A000000' are the same bytes.\n\
--json prints an array: ints and floats as numbers, True/False as true/false, bytes as \
hex strings, and nan, inf, -inf as the strings \"nan\", \"inf\", \"-inf\" (JSON has no such numbers).\n\
Example: netkit unpack '!I' 00000014  ->  (20,)"
)]
pub struct Args {
    /// A struct format string, as in Python's struct module (e.g. '<IIIHH', '!I').
    #[arg(value_name = "FMT")]
    fmt: String,
    /// The bytes, as hex digits; several arguments are joined.
    #[arg(value_name = "HEX", required = true)]
    hex: Vec<String>,
    /// Print a JSON array instead of a Python tuple.
    #[arg(long)]
    json: bool,
}

/// Runs `netkit unpack`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let st = Struct::new(&args.fmt).with_context(|| format!("bad format {:?}", args.fmt))?;
    let bytes =
        literal::hex::decode(&args.hex.join(" ")).map_err(|e| anyhow::anyhow!("bad HEX: {e}"))?;
    let values = st
        .unpack(&bytes)
        .with_context(|| format!("cannot unpack {} bytes with {:?}", bytes.len(), args.fmt))?;
    let line = if args.json {
        literal::json(&values)
    } else {
        literal::tuple(&values)
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
