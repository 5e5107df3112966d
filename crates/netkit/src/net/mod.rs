//! Sockets done safely: addresses, listeners, connecting, streams and datagrams.

mod peer;

pub use peer::PeerAddr;
