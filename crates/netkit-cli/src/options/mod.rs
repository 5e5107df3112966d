//! The options shared by the stream commands (`connect`, `listen`, `relay`, and
//! `serve`'s dumps): EOF policy and direction, traffic dumps, TLS. Each turns into
//! what `netkit::relay` takes.

pub mod dump;
pub mod tls;

use std::sync::Arc;

use netkit::relay::dump::Dumper;
use netkit::relay::eof::{EofPolicy, Pipe};

use self::dump::DumpArgs;

/// The options shared by `connect`, `listen` and `relay`.
#[derive(Debug, Clone, clap::Args)]
pub struct PipeArgs {
    /// What end-of-file does: half (half-close the other side, end when both
    /// directions end), close (end at the first EOF), wait:DUR (half-close, then
    /// give the other direction DUR).
    #[arg(long, value_name = "POLICY", default_value = "half")]
    pub eof: EofPolicy,
    /// Only send: what the peer sends is read and dropped; end when input ends.
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,
    /// Only receive: never read input; end when the peer closes.
    #[arg(long)]
    pub recv_only: bool,
    /// Traffic dumps.
    #[command(flatten)]
    pub dump: DumpArgs,
}

impl PipeArgs {
    /// The state machine these options ask for.
    pub fn pipe(&self) -> Pipe {
        let p = Pipe::new(self.eof);
        if self.send_only {
            p.send_only()
        } else if self.recv_only {
            p.recv_only()
        } else {
            p
        }
    }

    /// The dumper, if `--dump` was given.
    pub fn dumper(&self) -> anyhow::Result<Option<Arc<Dumper>>> {
        self.dump.dumper()
    }
}
