//! `hello`: greets each client with `Thank you for connecting` and closes.
//!
//! Answers seed 003's "A small server" (`small_server.py`), which sends the greeting
//! without a line ending and closes. Logging each connection is the runner's job.

use crate::protocol::{Protocol, Transport};

/// The greeting, byte for byte as the seed sends it (no line ending).
pub const GREETING: &[u8] = b"Thank you for connecting";

/// Sends [`GREETING`] and closes; anything the client sends is ignored.
///
/// ```
/// use netkit::protocol::testing::Script;
/// use netkit::services::Hello;
///
/// let out = Script::new().run(Hello);
/// assert_eq!(out.text(), "Thank you for connecting");
/// assert!(out.closed);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hello;

impl Protocol for Hello {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        t.write(GREETING);
        t.close();
    }

    fn data_received(&mut self, _data: &[u8], _t: &mut dyn Transport) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;

    #[test]
    fn greets_once_and_closes_before_reading() {
        let out = Script::new().data(b"hi there").eof().run(Hello);
        assert_eq!(out.writes, vec![GREETING.to_vec()]);
        assert!(out.closed);
        assert!(
            !out.aborted,
            "a close flushes the greeting; an abort would drop it"
        );
        assert!(!out.eof_delivered, "no event follows the close");
    }
}
