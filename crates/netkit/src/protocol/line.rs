//! Twisted's `LineReceiver`, sans-IO: a [`LineProtocol`] gets whole lines, and can
//! switch to raw mode and back, while [`LineReceiver`] turns it into a [`Protocol`].
//!
//! The behaviour follows `twisted.protocols.basic.LineReceiver` (and is checked against
//! it by a differential test):
//!
//! * defaults: delimiter `b"\r\n"`, `MAX_LENGTH` 16384 ([`LineReceiver::new`]);
//! * a line is delivered without its delimiter; a line of exactly the maximum length
//!   is accepted; a delimiter split across reads is found;
//! * an over-long line calls [`line_length_exceeded`](LineProtocol::line_length_exceeded)
//!   with everything buffered from the start of that line (Twisted's argument: the
//!   line, its delimiter and what follows when the delimiter has arrived; otherwise the
//!   whole buffer once it reaches `max_length + delimiter length` bytes), the buffer is
//!   dropped and nothing more from that read is delivered. The default closes;
//! * once the protocol closes or aborts, no later line is delivered (Twisted checks
//!   `transport.disconnecting` after each line);
//! * an unterminated last line is never delivered;
//! * [`set_raw_mode`](LineTransport::set_raw_mode) sends the rest of the current read,
//!   and later reads, to [`raw_data_received`](LineProtocol::raw_data_received);
//!   [`set_line_mode`](LineTransport::set_line_mode) switches back, and
//!   [`set_line_mode_with`](LineTransport::set_line_mode_with) is Twisted's
//!   `setLineMode(extra)`. Mode switches run in a loop, never by recursion;
//! * [`pause_reading`](Transport::pause_reading) inside a callback stops delivery: the
//!   lines already received stay buffered (Twisted's `paused` flag) and are delivered
//!   when reading resumes: right after the callback that called
//!   [`resume_reading`](Transport::resume_reading) (as Twisted's `resumeProducing`
//!   does), or with the next read.
//!
//! Where Twisted would still deliver after a close (a raw-mode callback that closes and
//! hands back lines with `setLineMode(extra)`), this module does not: after a close or
//! abort the protocol only gets [`connection_lost`](LineProtocol::connection_lost).
//!
//! A read that holds whole lines while nothing is buffered is scanned in place; only
//! an unterminated tail is copied. The scan resumes where it stopped, so a line that
//! arrives one byte at a time is not rescanned. Out of scope: the generic line codec
//! (`frame::LineDecoder`), sockets.
//!
//! ```
//! use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
//! use netkit::protocol::testing::Script;
//!
//! /// Answers each line in upper case.
//! struct Upper;
//!
//! impl LineProtocol for Upper {
//!     fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
//!         t.send_line(&line.to_ascii_uppercase());
//!     }
//! }
//!
//! let out = Script::new().data(b"hel").data(b"lo\r\nworld\r").data(b"\nrest").run(LineReceiver::new(Upper));
//! assert_eq!(out.text(), "HELLO\r\nWORLD\r\n");
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use super::forward::forward_transport;
use super::{CloseReason, Protocol, TimerId, Transport};
use crate::frame::{Delimiter, FrameError};

/// A line-oriented connection's behaviour (Twisted's `LineReceiver` subclass).
///
/// Only [`line_received`](LineProtocol::line_received) is required.
pub trait LineProtocol: Send {
    /// The connection is up (`connectionMade`).
    fn connection_made(&mut self, t: &mut LineTransport<'_>) {
        let _ = t;
    }

    /// A whole line arrived, without its delimiter (`lineReceived`).
    fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>);

    /// Bytes arrived in raw mode (`rawDataReceived`). Default: ignore them.
    fn raw_data_received(&mut self, data: &[u8], t: &mut LineTransport<'_>) {
        let _ = (data, t);
    }

    /// A line passed the maximum length (`lineLengthExceeded`); `partial` is the
    /// buffered data from the start of that line. Default: close.
    fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
        let _ = partial;
        t.close();
    }

    /// The peer half-closed; an unterminated last line is dropped. Default: close.
    fn eof_received(&mut self, t: &mut LineTransport<'_>) {
        t.close();
    }

    /// The connection is gone (`connectionLost`).
    fn connection_lost(&mut self, reason: &CloseReason) {
        let _ = reason;
    }

    /// A timer asked for with [`Transport::call_later`] fired.
    fn timer_fired(&mut self, id: TimerId, t: &mut LineTransport<'_>) {
        let _ = (id, t);
    }

    /// A mailbox message arrived. Default: write it to the peer.
    fn message_received(&mut self, msg: Bytes, t: &mut LineTransport<'_>) {
        t.write(&msg);
    }
}

/// Receiver state a [`LineTransport`] changes.
#[derive(Debug, Default)]
struct Control {
    raw: bool,
    paused: bool,
    closing: bool,
    /// Bytes handed back with `set_line_mode_with`, parsed after the current callback.
    extra: Vec<u8>,
    /// Reused to write a line and its delimiter in one call.
    scratch: Vec<u8>,
}

/// The [`Transport`] a [`LineProtocol`] sees: the connection's, plus line helpers.
pub struct LineTransport<'a> {
    inner: &'a mut dyn Transport,
    delimiter: &'a [u8],
    ctl: &'a mut Control,
}

impl fmt::Debug for LineTransport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineTransport")
            .field("delimiter", &self.delimiter.escape_ascii().to_string())
            .field("raw", &self.ctl.raw)
            .field("paused", &self.ctl.paused)
            .field("closing", &self.ctl.closing)
            .finish_non_exhaustive()
    }
}

impl LineTransport<'_> {
    /// Writes `line` followed by the delimiter, in one write (`sendLine`).
    pub fn send_line(&mut self, line: &[u8]) {
        let buf = &mut self.ctl.scratch;
        buf.clear();
        buf.extend_from_slice(line);
        buf.extend_from_slice(self.delimiter);
        self.inner.write(buf);
        if buf.capacity() > 64 * 1024 {
            *buf = Vec::new();
        }
    }

    /// Sends the rest of the current read, and later reads, to
    /// [`raw_data_received`](LineProtocol::raw_data_received) (`setRawMode`).
    pub fn set_raw_mode(&mut self) {
        self.ctl.raw = true;
    }

    /// Splits later data into lines again (`setLineMode()`).
    pub fn set_line_mode(&mut self) {
        self.ctl.raw = false;
    }

    /// Splits later data into lines again, starting with `extra`: bytes a raw-mode
    /// callback received but did not use (`setLineMode(extra)`). `extra` is parsed
    /// after the current callback returns, after anything still buffered.
    pub fn set_line_mode_with(&mut self, extra: &[u8]) {
        self.ctl.raw = false;
        self.ctl.extra.extend_from_slice(extra);
    }

    /// Whether data goes to [`line_received`](LineProtocol::line_received) (true) or
    /// to [`raw_data_received`](LineProtocol::raw_data_received) (false).
    pub fn is_line_mode(&self) -> bool {
        !self.ctl.raw
    }

    /// The line delimiter.
    pub fn delimiter(&self) -> &[u8] {
        self.delimiter
    }
}

forward_transport!(LineTransport);

/// How a pass over received bytes ended.
struct Pass {
    /// Bytes handled from the front.
    used: usize,
    /// Bytes after `used` already scanned without finding a delimiter.
    scanned: usize,
    /// An over-long line was reported: drop what is left.
    overflowed: bool,
}

/// Runs a [`LineProtocol`] as a [`Protocol`] (Twisted's `LineReceiver`).
pub struct LineReceiver<P> {
    proto: P,
    delim: Delimiter,
    max_length: usize,
    /// Received bytes not yet delivered: an unterminated line, or lines held while
    /// paused.
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already scanned without finding a delimiter.
    scanned: usize,
    ctl: Control,
}

impl<P: fmt::Debug> fmt::Debug for LineReceiver<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineReceiver")
            .field("proto", &self.proto)
            .field("delimiter", &self.delim)
            .field("max_length", &self.max_length)
            .field("buffered", &self.buf.len())
            .field("raw", &self.ctl.raw)
            .finish_non_exhaustive()
    }
}

impl<P: LineProtocol> LineReceiver<P> {
    /// Twisted's default `MAX_LENGTH`.
    pub const DEFAULT_MAX_LENGTH: usize = 16384;

    /// Wraps `proto` with Twisted's defaults: delimiter `b"\r\n"`, maximum line length
    /// 16384 bytes (not counting the delimiter).
    pub fn new(proto: P) -> Self {
        LineReceiver {
            proto,
            delim: Delimiter::crlf(),
            max_length: Self::DEFAULT_MAX_LENGTH,
            buf: Vec::new(),
            scanned: 0,
            ctl: Control::default(),
        }
    }

    /// Uses `delimiter` instead of `b"\r\n"`.
    ///
    /// # Panics
    ///
    /// If `delimiter` is empty; use [`try_with_delimiter`](Self::try_with_delimiter)
    /// for a delimiter from user input.
    pub fn with_delimiter(self, delimiter: &[u8]) -> Self {
        match self.try_with_delimiter(delimiter) {
            Ok(r) => r,
            Err(_) => panic!("LineReceiver::with_delimiter: empty delimiter"),
        }
    }

    /// Uses `delimiter` instead of `b"\r\n"`; [`FrameError::EmptyDelimiter`] if empty.
    pub fn try_with_delimiter(mut self, delimiter: &[u8]) -> Result<Self, FrameError> {
        self.delim = Delimiter::new(delimiter)?;
        Ok(self)
    }

    /// Sets the maximum line length, not counting the delimiter (`MAX_LENGTH`).
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        &self.proto
    }

    /// The wrapped protocol, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.proto
    }

    /// Unwraps the protocol.
    pub fn into_inner(self) -> P {
        self.proto
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        self.delim.as_bytes()
    }

    /// The maximum line length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Received bytes not yet delivered (an unterminated line, or lines held while
    /// paused).
    pub fn buffered_data(&self) -> &[u8] {
        &self.buf
    }

    /// Takes in `data` and delivers what it completes.
    fn receive(&mut self, data: &[u8], t: &mut dyn Transport) {
        if self.ctl.closing {
            return;
        }
        if let Some(end) = self.complete_line(data, t) {
            if self.ctl.closing {
                return;
            }
            let rest = data.get(end..).unwrap_or_default();
            let work = if self.ctl.extra.is_empty() {
                Cow::Borrowed(rest)
            } else {
                // Bytes handed back in that callback come after the rest of this read.
                let mut next = rest.to_vec();
                next.append(&mut self.ctl.extra);
                Cow::Owned(next)
            };
            self.drive(work, 0, t);
            return;
        }
        if self.buf.is_empty() && self.ctl.extra.is_empty() {
            self.drive(Cow::Borrowed(data), 0, t);
            return;
        }
        let mut b = std::mem::take(&mut self.buf);
        b.append(&mut self.ctl.extra);
        b.extend_from_slice(data);
        let scanned = self.scanned;
        self.drive(Cow::Owned(b), scanned, t);
    }

    /// The common case of a read that ends the buffered, unterminated line: copies
    /// only up to the end of that line's delimiter into the buffer and delivers the
    /// line, so the rest of the read can be scanned in place. Returns how much of
    /// `data` it used, or `None` (nothing done) when the case does not apply.
    fn complete_line(&mut self, data: &[u8], t: &mut dyn Transport) -> Option<usize> {
        let whole_buffer_scanned = self.scanned == self.buf.len();
        let ctl = &self.ctl;
        if self.buf.is_empty() || !whole_buffer_scanned || ctl.raw || ctl.paused {
            return None;
        }
        if !ctl.extra.is_empty() {
            return None;
        }
        let d = self.delim.as_bytes();
        let dlen = d.len();
        // A delimiter that starts in the buffer and ends in `data` comes first.
        let straddle = (1..dlen).rev().find(|&k| {
            self.buf.ends_with(d.get(..k).unwrap_or_default())
                && data.starts_with(d.get(k..).unwrap_or_default())
        });
        let end = match straddle {
            Some(k) => dlen - k,
            None => {
                let window = self
                    .max_length
                    .saturating_add(dlen)
                    .saturating_sub(self.buf.len())
                    .min(data.len());
                self.delim.find(data.get(..window).unwrap_or_default())? + dlen
            }
        };
        let line_len = (self.buf.len() + end).checked_sub(dlen)?;
        if line_len > self.max_length {
            // Too long: Twisted's report needs the whole read; the general path does it.
            return None;
        }
        self.buf.extend_from_slice(data.get(..end)?);
        let Self {
            proto,
            delim,
            ctl,
            buf,
            ..
        } = self;
        let mut lt = LineTransport {
            inner: t,
            delimiter: delim.as_bytes(),
            ctl,
        };
        proto.line_received(buf.get(..line_len).unwrap_or_default(), &mut lt);
        buf.clear();
        self.scanned = 0;
        Some(end)
    }

    /// Delivers from `work` (the buffer's bytes followed by new ones, or new bytes
    /// alone), then buffers what is left. `scanned`: bytes at the front of `work`
    /// known to hold no delimiter.
    fn drive(&mut self, mut work: Cow<'_, [u8]>, mut scanned: usize, t: &mut dyn Transport) {
        loop {
            let pass = self.pass(&work, scanned, t);
            let rest = work.get(pass.used..).unwrap_or_default();
            if pass.overflowed || self.ctl.closing {
                self.buf.clear();
                self.scanned = 0;
                if !self.ctl.closing {
                    // Twisted keeps bytes handed back during the callback, unparsed.
                    self.buf = std::mem::take(&mut self.ctl.extra);
                }
                self.ctl.extra.clear();
                return;
            }
            if self.ctl.extra.is_empty() {
                self.keep(work, pass.used, pass.scanned);
                return;
            }
            // `set_line_mode_with(extra)`: parse the rest, then the extra bytes.
            let mut next = Vec::with_capacity(rest.len() + self.ctl.extra.len());
            next.extend_from_slice(rest);
            next.append(&mut self.ctl.extra);
            scanned = if rest.is_empty() { 0 } else { pass.scanned };
            work = Cow::Owned(next);
        }
    }

    /// Buffers what is left of `work` after `used` bytes.
    fn keep(&mut self, work: Cow<'_, [u8]>, used: usize, scanned: usize) {
        match work {
            Cow::Borrowed(b) => {
                self.buf.clear();
                self.buf
                    .extend_from_slice(b.get(used..).unwrap_or_default());
            }
            Cow::Owned(mut v) => {
                v.drain(..used.min(v.len()));
                self.buf = v;
            }
        }
        self.scanned = if self.buf.is_empty() { 0 } else { scanned };
    }

    /// Delivers lines (or raw data) from `s` until it runs out, the protocol pauses,
    /// closes, or hands back extra bytes. `scanned`: bytes at the front of `s` known to
    /// hold no delimiter.
    fn pass(&mut self, s: &[u8], mut scanned: usize, t: &mut dyn Transport) -> Pass {
        let Self {
            proto,
            delim,
            max_length,
            ctl,
            ..
        } = self;
        let dlen = delim.as_bytes().len();
        let mut pos = 0;
        while pos < s.len() && !ctl.paused && !ctl.closing && ctl.extra.is_empty() {
            let rest = s.get(pos..).unwrap_or_default();
            let mut lt = LineTransport {
                inner: &mut *t,
                delimiter: delim.as_bytes(),
                ctl: &mut *ctl,
            };
            if lt.ctl.raw {
                pos = s.len();
                scanned = 0;
                proto.raw_data_received(rest, &mut lt);
                continue;
            }
            // A line within the maximum ends (delimiter included) inside `window`.
            let window = rest.len().min(max_length.saturating_add(dlen));
            let start = delim.resume_at(scanned).min(window);
            match delim.find(rest.get(start..window).unwrap_or_default()) {
                Some(i) => {
                    let line = rest.get(..start + i).unwrap_or_default();
                    pos += start + i + dlen;
                    scanned = 0;
                    proto.line_received(line, &mut lt);
                }
                None if rest.len() >= max_length.saturating_add(dlen) => {
                    // Too long, with or without a delimiter further on: Twisted hands
                    // over everything from the start of the line.
                    proto.line_length_exceeded(rest, &mut lt);
                    return Pass {
                        used: s.len(),
                        scanned: 0,
                        overflowed: true,
                    };
                }
                None => {
                    return Pass {
                        used: pos,
                        scanned: rest.len(),
                        overflowed: false,
                    };
                }
            }
        }
        Pass {
            used: pos,
            scanned: if ctl.raw { 0 } else { scanned },
            overflowed: false,
        }
    }

    /// After a callback outside `data_received`: deliver what resuming (or
    /// `set_line_mode_with`) made deliverable.
    fn after_callback(&mut self, t: &mut dyn Transport) {
        let pending = !self.buf.is_empty() || !self.ctl.extra.is_empty();
        if pending && !self.ctl.paused && !self.ctl.closing {
            self.receive(&[], t);
        }
    }

    fn transport<'a>(
        delim: &'a Delimiter,
        ctl: &'a mut Control,
        t: &'a mut dyn Transport,
    ) -> LineTransport<'a> {
        LineTransport {
            inner: t,
            delimiter: delim.as_bytes(),
            ctl,
        }
    }
}

impl<P: LineProtocol> Protocol for LineReceiver<P> {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        let mut lt = Self::transport(&self.delim, &mut self.ctl, t);
        self.proto.connection_made(&mut lt);
        self.after_callback(t);
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        self.receive(data, t);
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        let mut lt = Self::transport(&self.delim, &mut self.ctl, t);
        self.proto.eof_received(&mut lt);
        self.after_callback(t);
    }

    fn connection_lost(&mut self, reason: &CloseReason) {
        self.proto.connection_lost(reason);
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        let mut lt = Self::transport(&self.delim, &mut self.ctl, t);
        self.proto.timer_fired(id, &mut lt);
        self.after_callback(t);
    }

    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        let mut lt = Self::transport(&self.delim, &mut self.ctl, t);
        self.proto.message_received(msg, &mut lt);
        self.after_callback(t);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::protocol::testing::{FakeTransport, Script};
    use crate::protocol::PeerAddr;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Line(Vec<u8>),
        Raw(Vec<u8>),
        Exceeded(Vec<u8>),
        Timer,
    }

    type Log = Arc<Mutex<Vec<Ev>>>;

    /// Records events. `CLOSE` closes, `PAUSE` pauses and sets a timer that resumes,
    /// `RAW n` reads `n` raw bytes then hands the rest back with `set_line_mode_with`.
    #[derive(Default)]
    struct Rec {
        log: Log,
        raw_left: usize,
        keep_open: bool,
    }

    impl LineProtocol for Rec {
        fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
            self.log.lock().unwrap().push(Ev::Line(line.to_vec()));
            match line {
                b"CLOSE" => t.close(),
                b"PAUSE" => {
                    t.pause_reading();
                    t.call_later(Duration::from_secs(1));
                }
                _ => {
                    if let Some(n) = line.strip_prefix(b"RAW ") {
                        self.raw_left = std::str::from_utf8(n).unwrap().parse().unwrap();
                        t.set_raw_mode();
                    }
                }
            }
        }
        fn raw_data_received(&mut self, data: &[u8], t: &mut LineTransport<'_>) {
            let n = self.raw_left.min(data.len());
            self.log.lock().unwrap().push(Ev::Raw(data[..n].to_vec()));
            self.raw_left -= n;
            if self.raw_left == 0 {
                t.set_line_mode_with(&data[n..]);
            }
        }
        fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
            self.log
                .lock()
                .unwrap()
                .push(Ev::Exceeded(partial.to_vec()));
            if !self.keep_open {
                t.close();
            }
        }
        fn timer_fired(&mut self, _: TimerId, t: &mut LineTransport<'_>) {
            self.log.lock().unwrap().push(Ev::Timer);
            t.resume_reading();
        }
    }

    fn run(chunks: &[&[u8]], max: usize, keep_open: bool) -> Vec<Ev> {
        let log = Log::default();
        let rec = Rec {
            log: log.clone(),
            keep_open,
            ..Rec::default()
        };
        let mut script = Script::new();
        for c in chunks {
            script = script.data(c).fire_timers();
        }
        script
            .eof()
            .run(LineReceiver::new(rec).with_max_length(max));
        let v = log.lock().unwrap().clone();
        v
    }

    fn line(b: &[u8]) -> Ev {
        Ev::Line(b.to_vec())
    }

    /// Joins consecutive raw chunks: how raw data is cut depends on the reads.
    fn merge_raw(evs: Vec<Ev>) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for e in evs {
            match (out.last_mut(), e) {
                (Some(Ev::Raw(a)), Ev::Raw(b)) => a.extend_from_slice(&b),
                (_, e) => out.push(e),
            }
        }
        out
    }

    /// Every chunking of `input` must give the same events as one chunk.
    fn same_for_every_split(input: &[u8], max: usize, keep_open: bool) -> Vec<Ev> {
        let whole = merge_raw(run(&[input], max, keep_open));
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got = run(&[&input[..i], &input[i..j], &input[j..]], max, keep_open);
                assert_eq!(merge_raw(got), whole, "split at {i}, {j}");
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            merge_raw(run(&bytes, max, keep_open)),
            whole,
            "byte by byte"
        );
        whole
    }

    #[test]
    fn lines_in_any_chunking_and_no_unterminated_last_line() {
        let got = same_for_every_split(b"one\r\ntwo\r\n\r\nthree\rx\r\nlast", 100, false);
        assert_eq!(
            got,
            [line(b"one"), line(b"two"), line(b""), line(b"three\rx")]
        );
    }

    #[test]
    fn exact_max_accepted_one_more_exceeded_with_the_rest() {
        let got = run(&[b"abcd\r\nabcde\r\nnext\r\n"], 4, false);
        assert_eq!(
            got,
            [line(b"abcd"), Ev::Exceeded(b"abcde\r\nnext\r\n".to_vec())]
        );
    }

    #[test]
    fn exceeded_without_delimiter_at_max_plus_delimiter_length() {
        // 4 + len("\r\n") buffered bytes with no delimiter: exceeded, whole buffer.
        assert_eq!(run(&[b"abcde"], 4, false), []);
        assert_eq!(
            run(&[b"abc", b"def"], 4, false),
            [Ev::Exceeded(b"abcdef".to_vec())]
        );
    }

    #[test]
    fn exceeded_without_close_starts_afresh_like_twisted() {
        let got = run(&[b"abcdef", b"gh\r\nok\r\n"], 4, true);
        assert_eq!(
            got,
            [Ev::Exceeded(b"abcdef".to_vec()), line(b"gh"), line(b"ok")]
        );
    }

    #[test]
    fn close_in_line_received_stops_later_lines() {
        let got = same_for_every_split(b"a\r\nCLOSE\r\nb\r\nc\r\n", 100, false);
        assert_eq!(got, [line(b"a"), line(b"CLOSE")]);
    }

    #[test]
    fn raw_mode_mid_chunk_and_back() {
        let got = run(&[b"a\r\nRAW 5\r\nhel", b"lob\r\nc\r\n"], 100, false);
        assert_eq!(
            got,
            [
                line(b"a"),
                line(b"RAW 5"),
                Ev::Raw(b"hel".to_vec()),
                Ev::Raw(b"lo".to_vec()),
                line(b"b"),
                line(b"c")
            ]
        );
        let got = run(&[b"RAW 3\r\nxyzRAW 1\r\n!\r\n\r\n"], 100, false);
        assert_eq!(
            got,
            [
                line(b"RAW 3"),
                Ev::Raw(b"xyz".to_vec()),
                line(b"RAW 1"),
                Ev::Raw(b"!".to_vec()),
                line(b""),
                line(b"")
            ]
        );
    }

    #[test]
    fn raw_mode_lines_are_chunking_independent() {
        let got = same_for_every_split(b"RAW 4\r\nab\r\nRAW 1\r\n\n\r\nz\r\n", 100, false);
        assert_eq!(
            got,
            [
                line(b"RAW 4"),
                Ev::Raw(b"ab\r\n".to_vec()),
                line(b"RAW 1"),
                Ev::Raw(b"\n".to_vec()),
                line(b""),
                line(b"z")
            ]
        );
    }

    #[test]
    fn pause_holds_lines_until_resume() {
        let got = run(&[b"a\r\nPAUSE\r\nb\r\nc\r\n"], 100, false);
        assert_eq!(
            got,
            [
                line(b"a"),
                line(b"PAUSE"),
                Ev::Timer,
                line(b"b"),
                line(b"c")
            ]
        );
    }

    #[test]
    fn whole_lines_are_not_buffered_only_the_tail() {
        let log = Log::default();
        let mut r = LineReceiver::new(Rec {
            log: log.clone(),
            ..Rec::default()
        });
        let local = PeerAddr::Inet(([127, 0, 0, 1], 1).into());
        let mut t = FakeTransport::new(local.clone(), local);
        r.data_received(b"a\r\nb\r\n", &mut t);
        assert!(r.buffered_data().is_empty());
        r.data_received(b"c\r\nta", &mut t);
        assert_eq!(r.buffered_data(), b"ta");
        r.data_received(b"il\r", &mut t);
        assert_eq!(r.buffered_data(), b"tail\r");
        r.data_received(b"\n", &mut t);
        assert!(r.buffered_data().is_empty());
        assert_eq!(log.lock().unwrap().len(), 4);
        // A read that ends a buffered line and carries more: only the new tail stays.
        r.data_received(b"par", &mut t);
        r.data_received(b"t\r\nx\r\ny\r\nz", &mut t);
        assert_eq!(r.buffered_data(), b"z");
        r.data_received(b"z\r", &mut t);
        r.data_received(b"\nq", &mut t);
        assert_eq!(r.buffered_data(), b"q");
        let lines: Vec<Ev> = log.lock().unwrap().split_off(4);
        assert_eq!(lines, [line(b"part"), line(b"x"), line(b"y"), line(b"zz")]);
    }

    #[test]
    fn a_line_arriving_byte_by_byte_is_scanned_once() {
        let mut r = LineReceiver::new(Rec::default()).with_delimiter(b"<END>");
        let local = PeerAddr::Inet(([127, 0, 0, 1], 1).into());
        let mut t = FakeTransport::new(local.clone(), local);
        for i in 1..=10_000 {
            r.data_received(b"x", &mut t);
            assert_eq!(r.scanned, i);
            assert_eq!(r.buf.len(), i);
        }
        for b in b"<END" {
            r.data_received(&[*b], &mut t);
        }
        r.data_received(b">", &mut t);
        assert!(r.buffered_data().is_empty());
        assert_eq!(
            *r.inner().log.lock().unwrap(),
            [Ev::Line(vec![b'x'; 10_000])]
        );
    }

    #[test]
    fn send_line_and_custom_delimiter() {
        struct Echo;
        impl LineProtocol for Echo {
            fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
                assert_eq!(t.delimiter(), b"\n");
                t.send_line(line);
            }
        }
        let out = Script::new()
            .data(b"x\ny")
            .data(b"\n\r\n")
            .run(LineReceiver::new(Echo).with_delimiter(b"\n"));
        assert_eq!(out.writes, [&b"x\n"[..], b"y\n", b"\r\n"]);
        assert!(LineReceiver::new(Echo).try_with_delimiter(b"").is_err());
    }
}
