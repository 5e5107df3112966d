//! `netkit bench`.

use std::process::ExitCode;

/// Arguments of `netkit bench`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netkit bench`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("netkit bench is not built yet")
}
