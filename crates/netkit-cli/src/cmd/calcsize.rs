//! `netkit calcsize`.

use std::process::ExitCode;

/// Arguments of `netkit calcsize`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netkit calcsize`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("netkit calcsize is not built yet")
}
