//! `upper`: each line is sent back upper-cased.
//!
//! Answers seed 002's socketserver `MyTCPHandler` (`socketserver_upper.py`; its client,
//! `socketserver_client.py`, sends `data\n` and reads the answer). Lines end with
//! `"\n"`; a `"\r"` before it stays with the line, so each answer ends the way its
//! line did. Upper-casing is ASCII, byte by byte: other bytes, valid UTF-8 or not,
//! pass through unchanged. On the peer's EOF a last line without a newline is
//! answered too (the seed upper-cases whatever it got), then the connection closes.
//! A line longer than `max_line` closes the connection with a warning naming the
//! peer. The UDP form is [`UdpUpper`](super::UdpUpper).

use crate::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use crate::protocol::Transport;

use super::last_line::{KeepLastLine, LastLine};

/// Scratch capacity kept between lines; a longer line's buffer is released.
const SCRATCH_KEEP: usize = 8 * 1024;

/// The upper-casing line protocol; [`Upper::receiver`] makes a runnable one.
///
/// ```
/// use netkit::protocol::testing::Script;
/// use netkit::services::Upper;
///
/// let out = Script::new().data(b"data\nmore\r\nlast").eof().run(Upper::receiver(1024));
/// assert_eq!(out.written, b"DATA\nMORE\r\nLAST");
/// assert!(out.closed);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Upper {
    out: Vec<u8>,
}

impl Upper {
    /// A fresh protocol (use [`Upper::receiver`] to get a runnable one).
    pub fn new() -> Self {
        Upper::default()
    }

    /// `Upper` in a [`LineReceiver`] splitting on `"\n"`, refusing lines longer than
    /// `max_line` bytes, and answering an unterminated last line at EOF.
    pub fn receiver(max_line: usize) -> KeepLastLine<Upper> {
        KeepLastLine::new(
            LineReceiver::new(Upper::new())
                .with_delimiter(b"\n")
                .with_max_length(max_line),
        )
    }

    /// Writes `bytes` upper-cased, followed by `end`.
    fn answer(&mut self, bytes: &[u8], end: &[u8], t: &mut dyn Transport) {
        self.out.clear();
        self.out.extend(bytes.iter().map(u8::to_ascii_uppercase));
        self.out.extend_from_slice(end);
        t.write(&self.out);
        if self.out.capacity() > SCRATCH_KEEP {
            self.out = Vec::new();
        }
    }
}

impl LineProtocol for Upper {
    fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
        self.answer(line, b"\n", t);
    }

    fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
        tracing::warn!(
            peer = %t.peer_addr(),
            seen = partial.len(),
            "upper: line longer than the limit; closing the connection"
        );
        t.close();
    }
}

impl LastLine for Upper {
    /// The seed upper-cases whatever it got: a last line is answered as it came.
    fn last_line(&mut self, line: &[u8], t: &mut dyn Transport) {
        self.answer(line, b"", t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;

    fn run_chunked(input: &[u8], size: usize, max: usize) -> crate::protocol::testing::Outcome {
        input
            .chunks(size)
            .fold(Script::new(), |s, c| s.data(c))
            .eof()
            .run(Upper::receiver(max))
    }

    #[test]
    fn seed_client_exchange() {
        let out = Script::new()
            .data(b"hello world\n")
            .run(Upper::receiver(1024));
        assert_eq!(out.written, b"HELLO WORLD\n");
        assert!(!out.closed, "the connection stays open for more lines");
    }

    #[test]
    fn keeps_each_line_ending_in_any_chunking() {
        let input = b"one\r\ntwo\nthree\r\n\n\r\nmixed Case 123\n";
        let want = b"ONE\r\nTWO\nTHREE\r\n\n\r\nMIXED CASE 123\n";
        for size in [1, 2, 3, 5, 64] {
            let out = run_chunked(input, size, 1024);
            assert_eq!(out.written, want, "chunk size {size}");
            assert!(out.closed);
        }
    }

    #[test]
    fn one_write_per_line() {
        let out = Script::new().data(b"a\nb\nc\n").run(Upper::receiver(1024));
        assert_eq!(
            out.writes,
            vec![b"A\n".to_vec(), b"B\n".to_vec(), b"C\n".to_vec()]
        );
    }

    #[test]
    fn partial_last_line_is_answered_at_eof() {
        for size in [1, 4, 100] {
            let out = run_chunked(b"first\nno newline", size, 1024);
            assert_eq!(out.written, b"FIRST\nNO NEWLINE", "chunk size {size}");
            assert!(out.closed);
        }
        let out = run_chunked(b"trailing cr\r", 100, 1024);
        assert_eq!(out.written, b"TRAILING CR\r");
    }

    #[test]
    fn eof_with_nothing_pending_just_closes() {
        let out = Script::new().data(b"x\n").eof().run(Upper::receiver(1024));
        assert_eq!(out.written, b"X\n");
        assert!(out.closed);
        let out = Script::new().eof().run(Upper::receiver(1024));
        assert!(out.written.is_empty());
        assert!(out.closed);
    }

    #[test]
    fn only_ascii_letters_change() {
        let input = b"caf\xc3\xa9 \xff\xfe ok\n";
        let out = Script::new().data(input).run(Upper::receiver(1024));
        assert_eq!(out.written, b"CAF\xc3\xa9 \xff\xfe OK\n");
    }

    #[test]
    fn over_long_line_closes_after_earlier_answers() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat(b'a').take(100));
        input.extend_from_slice(b"\nnever\n");
        for size in [1, 7, 1000] {
            let out = input
                .chunks(size)
                .fold(Script::new(), |s, c| s.data(c))
                .run(Upper::receiver(16));
            assert_eq!(out.written, b"SHORT\n", "chunk size {size}");
            assert!(out.closed);
        }
    }

    #[test]
    fn line_at_the_limit_is_accepted() {
        let line = vec![b'q'; 16];
        let mut input = line.clone();
        input.push(b'\n');
        let out = Script::new().data(&input).run(Upper::receiver(16));
        let mut want = vec![b'Q'; 16];
        want.push(b'\n');
        assert_eq!(out.written, want);
        assert!(!out.closed);
    }
}
