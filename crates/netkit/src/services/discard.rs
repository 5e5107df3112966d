//! `discard` (RFC 863): everything received is thrown away; nothing is ever sent.
//!
//! On the peer's EOF the connection closes. The UDP form is
//! [`UdpDiscard`](super::UdpDiscard), which never answers.

use crate::protocol::{Protocol, Transport};

/// Reads and drops everything.
///
/// ```
/// use netkit::protocol::testing::Script;
/// use netkit::services::Discard;
///
/// let out = Script::new().data(b"into the void").eof().run(Discard);
/// assert!(out.written.is_empty());
/// assert!(out.closed);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discard;

impl Protocol for Discard {
    fn data_received(&mut self, _data: &[u8], _t: &mut dyn Transport) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;

    #[test]
    fn writes_nothing_and_closes_on_eof() {
        let big = vec![b'x'; 100_000];
        let out = Script::new().data(&big).data(b"more").eof().run(Discard);
        assert!(out.written.is_empty());
        assert!(out.writes.is_empty());
        assert!(out.closed);
    }

    #[test]
    fn stays_open_while_data_flows() {
        let out = Script::new().data(b"a").data(b"b").run(Discard);
        assert!(!out.closed);
        assert!(!out.paused);
    }
}
