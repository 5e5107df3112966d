//! [`KeepLastLine`]: a [`LineReceiver`] that hands an unterminated last line to its
//! protocol at EOF, where Twisted's `LineReceiver` drops it.
//!
//! `upper` answers, and `logger` prints, whatever the peer sent before it half-closed,
//! as their seeds (which read raw chunks) do. Everything else is the wrapped
//! [`LineReceiver`]'s behaviour, unchanged.

use bytes::Bytes;

use crate::protocol::line::{LineProtocol, LineReceiver};
use crate::protocol::{CloseReason, Protocol, TimerId, Transport};

/// A [`LineProtocol`] that wants the bytes after the last delimiter when the peer
/// half-closes.
pub trait LastLine: LineProtocol {
    /// The peer half-closed after sending `line` (non-empty) without a delimiter.
    /// Called just before [`LineProtocol::eof_received`].
    fn last_line(&mut self, line: &[u8], t: &mut dyn Transport);
}

/// Runs a [`LastLine`] protocol: a [`LineReceiver`] plus the last-line call at EOF.
///
/// ```
/// use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
/// use netkit::protocol::testing::Script;
/// use netkit::protocol::Transport;
/// use netkit::services::{KeepLastLine, LastLine};
///
/// struct Count(usize);
/// impl LineProtocol for Count {
///     fn line_received(&mut self, _: &[u8], _: &mut LineTransport<'_>) {
///         self.0 += 1;
///     }
/// }
/// impl LastLine for Count {
///     fn last_line(&mut self, line: &[u8], t: &mut dyn Transport) {
///         t.write(line);
///     }
/// }
///
/// let out = Script::new().data(b"a\r\nb\r\ntail").eof().run(KeepLastLine::new(LineReceiver::new(Count(0))));
/// assert_eq!(out.written, b"tail");
/// ```
#[derive(Debug)]
pub struct KeepLastLine<P>(LineReceiver<P>);

impl<P: LastLine> KeepLastLine<P> {
    /// Wraps a configured receiver.
    pub fn new(receiver: LineReceiver<P>) -> Self {
        KeepLastLine(receiver)
    }

    /// The receiver.
    pub fn receiver(&self) -> &LineReceiver<P> {
        &self.0
    }

    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        self.0.inner()
    }
}

impl<P: LastLine> Protocol for KeepLastLine<P> {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        self.0.connection_made(t);
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        self.0.data_received(data, t);
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        let rest = self.0.buffered_data();
        if !rest.is_empty() {
            let rest = rest.to_vec();
            self.0.inner_mut().last_line(&rest, t);
        }
        self.0.eof_received(t);
    }

    fn connection_lost(&mut self, reason: &CloseReason) {
        self.0.connection_lost(reason);
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        self.0.timer_fired(id, t);
    }

    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        self.0.message_received(msg, t);
    }

    fn is_producer(&self) -> bool {
        self.0.is_producer()
    }

    fn resume_producing(&mut self, t: &mut dyn Transport) {
        self.0.resume_producing(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::line::LineTransport;
    use crate::protocol::testing::Script;

    /// Records lines as `L:line;` and the last line as `T:line;`.
    #[derive(Debug, Default)]
    struct Record;

    impl LineProtocol for Record {
        fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
            t.write(&[b"L:", line, b";"].concat());
        }
    }

    impl LastLine for Record {
        fn last_line(&mut self, line: &[u8], t: &mut dyn Transport) {
            t.write(&[b"T:", line, b";"].concat());
        }
    }

    fn receiver(max: usize) -> KeepLastLine<Record> {
        KeepLastLine::new(LineReceiver::new(Record).with_max_length(max))
    }

    #[test]
    fn last_line_comes_once_before_the_close() {
        for size in [1, 2, 100] {
            let out = b"a\r\nb\r\ntail\r"
                .chunks(size)
                .fold(Script::new(), |s, c| s.data(c))
                .eof()
                .run(receiver(64));
            assert_eq!(out.text(), "L:a;L:b;T:tail\r;", "chunk size {size}");
            assert!(out.closed);
        }
    }

    #[test]
    fn no_last_line_when_input_ends_with_the_delimiter() {
        let out = Script::new().data(b"a\r\n").eof().run(receiver(64));
        assert_eq!(out.text(), "L:a;");
        let out = Script::new().eof().run(receiver(64));
        assert_eq!(out.text(), "");
    }

    #[test]
    fn an_over_long_line_is_not_handed_back_later() {
        let out = Script::new()
            .data(b"ok\r\n0123456789abcdef")
            .eof()
            .run(receiver(8));
        assert_eq!(out.text(), "L:ok;");
        assert!(out.closed);
    }
}
