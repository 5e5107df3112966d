//! `netkit zipinfo`.

use std::process::ExitCode;

/// Arguments of `netkit zipinfo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netkit zipinfo`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("netkit zipinfo is not built yet")
}
