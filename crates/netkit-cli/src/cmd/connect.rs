//! `netkit connect`.

use std::process::ExitCode;

/// Arguments of `netkit connect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netkit connect`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("netkit connect is not built yet")
}
