//! Inputs found by the fuzz targets (`fuzz/`), kept as tests.
//!
//! `line_receiver`, crash-4f65f3b0: five bytes without a delimiter, maximum
//! length 1, fed one byte at a time. A LineReceiver whose protocol keeps the
//! connection after an over-long line is told once per buffer overflow, as
//! Twisted's `dataReceived` does (the buffer is handed over and cleared each
//! time it passes the maximum), so the number of calls depends on how the bytes
//! arrived; with the default policy (close) the outcome does not.

use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use netkit::protocol::testing::Script;
use netkit::protocol::Transport;

struct Lines {
    close: bool,
}

impl LineProtocol for Lines {
    fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
        assert!(line.len() <= 1);
        t.send_line(line);
    }
    fn line_length_exceeded(&mut self, _partial: &[u8], t: &mut LineTransport<'_>) {
        t.write(b"<too long>");
        if self.close {
            t.close();
        }
    }
}

fn run(close: bool, chunks: &[&[u8]]) -> (String, bool) {
    let mut s = Script::new();
    for c in chunks {
        s = s.data(c);
    }
    let out = s.run(
        LineReceiver::new(Lines { close })
            .with_delimiter(&[0xf6])
            .with_max_length(1),
    );
    (out.text(), out.closed)
}

#[test]
fn line_receiver_overflow_without_a_delimiter_whole_and_byte_by_byte() {
    let stream = [0u8; 5];
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    // Default policy: one report, then closed, however the bytes arrive.
    assert_eq!(run(true, &[&stream]), ("<too long>".to_string(), true));
    assert_eq!(run(true, &bytes), ("<too long>".to_string(), true));
    // Kept open: once per overflow of the buffer (Twisted's behaviour).
    assert_eq!(run(false, &[&stream]), ("<too long>".to_string(), false));
    assert_eq!(
        run(false, &bytes),
        ("<too long><too long>".to_string(), false)
    );
}
