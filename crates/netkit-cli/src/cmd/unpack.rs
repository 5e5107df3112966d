//! `netkit unpack`.

use std::process::ExitCode;

/// Arguments of `netkit unpack`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netkit unpack`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("netkit unpack is not built yet")
}
