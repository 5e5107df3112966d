//! One module per subcommand.

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
