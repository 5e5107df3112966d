//! netkit: Python's network-programming toolkit — `struct`, sockets, `socketserver`,
//! select/poll and Twisted's protocols, `urllib` and `http.server` — in Rust.
//!
//! The crate is built in layers, each using only the ones below it:
//!
//! | module | owns |
//! |---|---|
//! | [`pack`] | CPython-`struct`-compatible binary packing |
//! | [`net`] | addresses, listeners, connecting, streams, datagrams |
//! | [`frame`] | sans-IO decoders: lines, length-prefixed frames, netstrings |
//! | [`protocol`] | the `Protocol` / `Transport` / `Factory` model and its helpers |
//! | [`services`] | echo, upper, discard, chargen, daytime, hello, logger, chat |
//! | [`server`] | the socketserver framework: sequential, threads, pool, fork |
//! | [`reactor`] | the event loop on mio that runs Protocols |
//! | [`http`] | static file service (`http.server`) and client (`urllib`) |
//! | [`relay`] | netcat/socat sessions: the EOF state machine, stream and datagram relays, TLS bridges, dumps |
//!
//! A Protocol is written once and runs unchanged under every concurrency mode.

pub mod frame;
pub mod http;
pub mod net;
pub mod pack;
pub mod protocol;
pub mod reactor;
pub mod relay;
pub mod server;
pub mod services;
