//! `netkit serve`: run a built-in service.

use std::process::ExitCode;

/// Arguments of `netkit serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service to run.
    #[arg(default_value = "echo")]
    pub service: String,
}

/// Runs `netkit serve`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("netkit serve is not built yet")
}
