//! `echo` (RFC 862 over TCP): every byte received is sent back.
//!
//! Answers the seed's TCP echo server (seed 001, `echo_timeout_server.py`; its
//! five-second timeout is the runner's `--idle-timeout`, not the service's). Half-close
//! aware: on the peer's EOF the connection closes once everything queued is flushed,
//! so a client that shuts down its writing side and reads to EOF gets every byte back.
//! The UDP form is [`UdpEcho`](super::UdpEcho).

use crate::protocol::{Protocol, Transport};

/// Sends back whatever arrives.
///
/// ```
/// use netkit::protocol::testing::Script;
/// use netkit::services::Echo;
///
/// let out = Script::new().data(b"hel").data(b"lo").eof().run(Echo);
/// assert_eq!(out.written, b"hello");
/// assert!(out.closed);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        t.write(data);
    }

    /// Closes once the queued echo is flushed (`close` never drops queued bytes).
    fn eof_received(&mut self, t: &mut dyn Transport) {
        t.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;

    #[test]
    fn echoes_every_chunking_exactly() {
        let msg: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        for size in [1, 2, 7, 100, 4096] {
            let script = msg.chunks(size).fold(Script::new(), |s, c| s.data(c)).eof();
            let out = script.run(Echo);
            assert_eq!(out.written, msg, "chunk size {size}");
            assert!(out.closed);
            assert!(!out.aborted);
        }
    }

    #[test]
    fn one_write_per_chunk_and_nothing_else() {
        let out = Script::new().data(b"ab").data(b"").data(b"cd").run(Echo);
        assert_eq!(
            out.writes,
            vec![b"ab".to_vec(), b"".to_vec(), b"cd".to_vec()]
        );
        assert!(!out.closed, "echo stays open until EOF");
        assert!(!out.write_shut);
    }

    #[test]
    fn eof_without_data_closes_cleanly() {
        let out = Script::new().eof().run(Echo);
        assert!(out.written.is_empty());
        assert!(out.closed);
        assert!(out.eof_delivered);
    }
}
