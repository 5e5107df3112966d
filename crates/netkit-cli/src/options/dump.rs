//! The `--dump` options, shared by `connect`, `listen`, `relay` and `serve`; the
//! dumps themselves are `netkit::relay::dump`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use netkit::relay::dump::Dumper;

/// The `--dump` options, shared by `connect`, `listen`, `relay` and `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct DumpArgs {
    /// Show every chunk on stderr (or --dump-file): hex or text.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub dump: Option<DumpFormat>,
    /// Write the --dump output to this file instead of stderr.
    #[arg(long, value_name = "FILE", requires = "dump")]
    pub dump_file: Option<PathBuf>,
}

impl DumpArgs {
    /// The dumper, if `--dump` was given.
    pub fn dumper(&self) -> anyhow::Result<Option<Arc<Dumper>>> {
        match self.dump {
            None => Ok(None),
            Some(f) => {
                let d = Dumper::open(f.into(), self.dump_file.as_deref()).with_context(|| {
                    format!(
                        "cannot open dump file {}",
                        self.dump_file.as_deref().unwrap_or("-".as_ref()).display()
                    )
                })?;
                Ok(Some(Arc::new(d)))
            }
        }
    }
}

/// How chunks are shown (`netkit::relay::dump::DumpFormat`, as a clap value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// Offset, 16 hex bytes, ASCII column (like `hexdump -C`).
    Hex,
    /// The bytes as text, non-printables escaped (`\r`, `\n`, `\xNN`).
    Text,
}

impl From<DumpFormat> for netkit::relay::dump::DumpFormat {
    fn from(f: DumpFormat) -> Self {
        match f {
            DumpFormat::Hex => Self::Hex,
            DumpFormat::Text => Self::Text,
        }
    }
}
