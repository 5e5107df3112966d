//! One module per subcommand, and the usage-error type every command shares.

use std::fmt;

pub mod bench;
pub mod calcsize;
pub mod connect;
pub mod fetch;
pub mod listen;
pub mod pack;
pub mod relay;
pub mod send;
pub mod serve;
pub mod unpack;
pub mod zipinfo;

/// A mistake in how the command was called (a malformed address or URL, an
/// unknown service, an impossible combination of options): `main` prints it and
/// exits 2, where a runtime or data error exits 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error (exit 2) with this message, for `return Err(usage(...))` or
/// `.map_err(|e| usage(...))`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Whether an error (or anything in its chain) is a [`UsageError`].
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<UsageError>().is_some())
}
