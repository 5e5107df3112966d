//! One module per subcommand.

pub mod bench;
pub mod calcsize;
pub mod connect;
pub mod fetch;
pub mod pack;
pub mod serve;
pub mod unpack;
pub mod zipinfo;
