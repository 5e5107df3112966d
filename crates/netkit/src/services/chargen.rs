//! `chargen` (RFC 864): an endless stream of the standard rotating character pattern.
//!
//! Each line holds [`LINE_CHARS`] (72) of the 95 printable ASCII characters (`' '` to
//! `'~'`, taken as a ring), starts one character later than the line before, and ends
//! with `"\r\n"`; after 95 lines the pattern repeats. The stream is flow-controlled:
//! [`Chargen`] is a producer and writes [`CHUNK_LINES`] lines per
//! [`resume_producing`](Protocol::resume_producing) call, so the runner's write queue,
//! never this service, decides how much is in flight. Incoming data is discarded, and
//! the peer's EOF does not stop the stream (only the peer closing does). The UDP form
//! is [`UdpChargen`](super::UdpChargen).

use crate::protocol::{Protocol, Transport};

/// Printable characters on a line.
pub const LINE_CHARS: usize = 72;

/// Bytes per line, `"\r\n"` included.
pub const LINE_BYTES: usize = LINE_CHARS + 2;

/// Lines written per [`resume_producing`](Protocol::resume_producing) call.
pub const CHUNK_LINES: usize = 64;

/// Distinct lines before the pattern repeats: the 95 printable ASCII characters.
pub const CYCLE_LINES: usize = 95;

const CYCLE_BYTES: usize = CYCLE_LINES * LINE_BYTES;

/// The whole 95-line cycle, twice over, so that any run of up to 95 lines starting
/// anywhere in the first cycle is one contiguous slice.
static PATTERN: [u8; 2 * CYCLE_BYTES] = build_pattern();

const fn build_pattern() -> [u8; 2 * CYCLE_BYTES] {
    let mut out = [0u8; 2 * CYCLE_BYTES];
    let mut line = 0;
    while line < 2 * CYCLE_LINES {
        let base = line * LINE_BYTES;
        let mut col = 0;
        while col < LINE_CHARS {
            out[base + col] = b' ' + ((line + col) % CYCLE_LINES) as u8;
            col += 1;
        }
        out[base + LINE_CHARS] = b'\r';
        out[base + LINE_CHARS + 1] = b'\n';
        line += 1;
    }
    out
}

/// Line `n` of the pattern (0-based), `"\r\n"` included.
///
/// ```
/// let first = netkit::services::chargen_line(0);
/// assert!(first.starts_with(b" !\"#$%&"));
/// assert!(first.ends_with(b"efg\r\n"));
/// ```
pub fn chargen_line(n: usize) -> &'static [u8] {
    let start = (n % CYCLE_LINES) * LINE_BYTES;
    PATTERN.get(start..start + LINE_BYTES).unwrap_or_default()
}

/// `count` consecutive lines starting at line `first`, as one slice (`count` ≤ 95).
fn lines(first: usize, count: usize) -> &'static [u8] {
    let start = (first % CYCLE_LINES) * LINE_BYTES;
    let len = count.min(CYCLE_LINES) * LINE_BYTES;
    PATTERN.get(start..start + len).unwrap_or_default()
}

/// The character generator; one per connection, remembering where the pattern is.
///
/// ```
/// use netkit::protocol::testing::Script;
/// use netkit::services::{chargen_line, Chargen};
///
/// let out = Script::new().produce(2).run(Chargen::new());
/// assert!(out.written.starts_with(chargen_line(0)));
/// assert!(!out.closed);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chargen {
    next_line: usize,
}

impl Chargen {
    /// A generator starting at line 0.
    pub fn new() -> Self {
        Chargen { next_line: 0 }
    }

    fn write_chunk(&mut self, t: &mut dyn Transport) {
        t.write(lines(self.next_line, CHUNK_LINES));
        self.next_line = (self.next_line + CHUNK_LINES) % CYCLE_LINES;
    }
}

impl Protocol for Chargen {
    /// Starts the stream at once, whether or not the runner asks for more before
    /// its queue first drains.
    fn connection_made(&mut self, t: &mut dyn Transport) {
        self.write_chunk(t);
    }

    fn data_received(&mut self, _data: &[u8], _t: &mut dyn Transport) {}

    /// The peer only stopped sending; it may still be reading, so keep producing.
    fn eof_received(&mut self, _t: &mut dyn Transport) {}

    fn is_producer(&self) -> bool {
        true
    }

    fn resume_producing(&mut self, t: &mut dyn Transport) {
        self.write_chunk(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Script;

    const PRINTABLE: &[u8] = b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

    /// The RFC's rule written out plainly, as the reference.
    fn reference_line(n: usize) -> Vec<u8> {
        let mut l: Vec<u8> = (0..LINE_CHARS).map(|c| PRINTABLE[(n + c) % 95]).collect();
        l.extend_from_slice(b"\r\n");
        l
    }

    #[test]
    fn first_lines_are_exact() {
        assert_eq!(PRINTABLE.len(), 95);
        assert_eq!(
            chargen_line(0),
            &b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"[..]
        );
        assert_eq!(
            chargen_line(1),
            &b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n"[..]
        );
        // Line 30 wraps around the ring from '~' back to ' '.
        assert_eq!(
            chargen_line(30),
            &b">?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~ !\"#$%&\r\n"[..]
        );
        for n in 0..300 {
            assert_eq!(chargen_line(n), reference_line(n).as_slice(), "line {n}");
        }
    }

    #[test]
    fn stream_follows_the_pattern_across_chunks_and_cycles() {
        let out = Script::new().produce(10).run(Chargen::new());
        // connection_made writes one chunk, then each produce call one more.
        assert_eq!(out.produce_calls, 10);
        assert_eq!(out.writes.len(), 11);
        let want: Vec<u8> = (0..11 * CHUNK_LINES).flat_map(reference_line).collect();
        assert_eq!(out.written, want);
    }

    #[test]
    fn each_call_writes_a_bounded_chunk() {
        let out = Script::new().produce(200).run(Chargen::new());
        for w in &out.writes {
            assert_eq!(w.len(), CHUNK_LINES * LINE_BYTES);
        }
        assert_eq!(out.writes.len(), 201);
    }

    #[test]
    fn input_is_discarded_and_eof_does_not_stop_the_stream() {
        let out = Script::new()
            .data(b"please stop")
            .eof()
            .produce(1)
            .run(Chargen::new());
        assert!(!out.closed);
        assert_eq!(out.written.len(), 2 * CHUNK_LINES * LINE_BYTES);
        assert!(out.written.starts_with(chargen_line(0)));
    }
}
