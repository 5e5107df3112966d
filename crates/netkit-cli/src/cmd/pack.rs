//! `netkit pack`.

use std::process::ExitCode;

/// Arguments of `netkit pack`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netkit pack`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("netkit pack is not built yet")
}
