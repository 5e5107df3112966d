//! LineReceiver (Twisted's) through `protocol::testing`: a delimiter, a maximum
//! and raw-mode switches from the first bytes, data events from the rest.
//! Never panics; in line mode the lines echoed back are each within the
//! maximum; with the default policy for over-long lines (close), the same bytes
//! in different chunks give the same output. (A protocol that keeps the
//! connection after an over-long line is told once per buffer overflow, as
//! Twisted does, which depends on chunking: see tests/regressions.rs.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use netkit::protocol::testing::Script;
use netkit::protocol::Transport;

#[path = "common.rs"]
mod common;

/// Echoes each line with a delimiter; a line "raw" switches to raw mode, raw
/// data "line" switches back. Over-long lines are reported, then the connection
/// is closed (`close`) or kept.
struct Lines {
    max: usize,
    close: bool,
}

impl LineProtocol for Lines {
    fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
        assert!(
            line.len() <= self.max,
            "line of {} over {}",
            line.len(),
            self.max
        );
        if line == b"raw" {
            t.set_raw_mode();
        }
        t.send_line(line);
    }
    fn raw_data_received(&mut self, data: &[u8], t: &mut LineTransport<'_>) {
        t.write(b"<raw>");
        t.write(data);
        if data.ends_with(b"line") {
            t.set_line_mode();
        }
    }
    fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
        let _ = partial;
        t.write(b"<too long>");
        if self.close {
            t.close();
        }
    }
}

fn run(delim: &[u8], max: usize, close: bool, chunks: &[&[u8]], eof: bool) -> (Vec<u8>, bool) {
    let mut s = Script::new();
    for c in chunks {
        s = s.data(c);
    }
    if eof {
        s = s.eof();
    }
    let p = LineReceiver::new(Lines { max, close })
        .with_delimiter(delim)
        .with_max_length(max);
    let out = s.run(p);
    (out.written, out.closed)
}

fuzz_target!(|data: &[u8]| {
    let [cfg, max, rest @ ..] = data else {
        return;
    };
    let dlen = usize::from(cfg % 2) + 1;
    if rest.len() < dlen + 4 {
        return;
    }
    let (delim, rest) = rest.split_at(dlen);
    if delim.is_empty() {
        return;
    }
    let (sizes, stream) = rest.split_at(4);
    let max = usize::from(*max) + 1;
    let eof = cfg & 4 != 0;
    let close = cfg & 8 == 0;
    let chunks = common::chunks(stream, sizes);
    let split = run(delim, max, close, &chunks, eof);
    // Raw mode is chunk-sensitive by design (raw data comes as it arrives), so
    // only streams that never enter it are compared whole against chunked.
    if close && !stream.windows(3).any(|w| w == b"raw") {
        let whole = run(delim, max, close, &[stream], eof);
        assert_eq!(whole, split);
    }
});
