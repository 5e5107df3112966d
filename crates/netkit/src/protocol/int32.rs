//! Twisted's `Int32StringReceiver`, sans-IO: strings framed by a 4-byte big-endian
//! length (`struct` format `"!I"`), delivered whole to a [`StringProtocol`];
//! [`Int32Receiver`] turns it into a [`Protocol`].
//!
//! As in `twisted.protocols.basic.Int32StringReceiver`: the default maximum is 99999
//! bytes; a prefix announcing more calls
//! [`length_limit_exceeded`](StringProtocol::length_limit_exceeded) with the announced
//! length before any of the string is buffered, and the default closes;
//! [`send_string`](Int32Transport::send_string) refuses strings the prefix cannot
//! describe (`StringTooLongError`). Pausing works as in [`line`](mod@super::line): strings
//! already received stay buffered until reading resumes.
//!
//! Two deliberate differences: after a close or abort no later string from the same
//! read is delivered (Twisted's `IntNStringReceiver` keeps going), and after the limit
//! is exceeded the stream is out of step, so the buffer is dropped and later data is
//! ignored (Twisted keeps the buffer and reports the same prefix again on every read).
//! Out of scope: the 1 and 2-byte variants (use `frame::LengthDecoder`), sockets.
//!
//! ```
//! use netkit::protocol::int32::{Int32Receiver, Int32Transport, StringProtocol};
//! use netkit::protocol::testing::Script;
//!
//! /// Sends each string back reversed.
//! struct Reverse;
//!
//! impl StringProtocol for Reverse {
//!     fn string_received(&mut self, s: &[u8], t: &mut Int32Transport<'_>) {
//!         let r: Vec<u8> = s.iter().rev().copied().collect();
//!         t.send_string(&r).unwrap();
//!     }
//! }
//!
//! let out = Script::new()
//!     .data(b"\x00\x00\x00\x03ab")
//!     .data(b"c\x00\x00")
//!     .run(Int32Receiver::new(Reverse));
//! assert_eq!(out.written, b"\x00\x00\x00\x03cba");
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use super::forward::forward_transport;
use super::{CloseReason, Protocol, TimerId, Transport};
use crate::frame::{FrameError, Prefix};

/// The prefix: 4 bytes, big-endian.
const PREFIX: Prefix = Prefix::U32;

/// A length-prefixed-string connection's behaviour (Twisted's `Int32StringReceiver`
/// subclass). Only [`string_received`](StringProtocol::string_received) is required.
pub trait StringProtocol: Send {
    /// The connection is up (`connectionMade`).
    fn connection_made(&mut self, t: &mut Int32Transport<'_>) {
        let _ = t;
    }

    /// A whole string arrived, without its prefix (`stringReceived`).
    fn string_received(&mut self, string: &[u8], t: &mut Int32Transport<'_>);

    /// A prefix announced `length` bytes, more than the maximum
    /// (`lengthLimitExceeded`). Default: close.
    fn length_limit_exceeded(&mut self, length: u64, t: &mut Int32Transport<'_>) {
        let _ = length;
        t.close();
    }

    /// The peer half-closed; a partial string is dropped. Default: close.
    fn eof_received(&mut self, t: &mut Int32Transport<'_>) {
        t.close();
    }

    /// The connection is gone (`connectionLost`).
    fn connection_lost(&mut self, reason: &CloseReason) {
        let _ = reason;
    }

    /// A timer asked for with [`Transport::call_later`] fired.
    fn timer_fired(&mut self, id: TimerId, t: &mut Int32Transport<'_>) {
        let _ = (id, t);
    }

    /// A mailbox message arrived. Default: send it as a string.
    fn message_received(&mut self, msg: Bytes, t: &mut Int32Transport<'_>) {
        // A message too long for a 4-byte prefix cannot be framed; drop it.
        let _ = t.send_string(&msg);
    }
}

/// Receiver state an [`Int32Transport`] changes.
#[derive(Debug, Default)]
struct Control {
    paused: bool,
    closing: bool,
    /// Reused to write a prefix and its string in one call.
    scratch: Vec<u8>,
}

/// The [`Transport`] a [`StringProtocol`] sees: the connection's, plus `send_string`.
pub struct Int32Transport<'a> {
    inner: &'a mut dyn Transport,
    ctl: &'a mut Control,
}

impl fmt::Debug for Int32Transport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Int32Transport")
            .field("paused", &self.ctl.paused)
            .field("closing", &self.ctl.closing)
            .finish_non_exhaustive()
    }
}

impl Int32Transport<'_> {
    /// Writes `string` with its 4-byte length prefix, in one write (`sendString`).
    ///
    /// # Errors
    ///
    /// [`FrameError::FrameTooLong`] if `string` is 2³² bytes or longer; nothing is
    /// written.
    pub fn send_string(&mut self, string: &[u8]) -> Result<(), FrameError> {
        let len = u32::try_from(string.len()).map_err(|_| FrameError::FrameTooLong {
            len: string.len() as u64,
            max: PREFIX.max_value(),
        })?;
        let buf = &mut self.ctl.scratch;
        buf.clear();
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(string);
        self.inner.write(buf);
        if buf.capacity() > 64 * 1024 {
            *buf = Vec::new();
        }
        Ok(())
    }
}

forward_transport!(Int32Transport);

/// Runs a [`StringProtocol`] as a [`Protocol`] (Twisted's `Int32StringReceiver`).
pub struct Int32Receiver<P> {
    proto: P,
    max_length: usize,
    /// Received bytes not yet delivered: a partial string, or strings held while
    /// paused.
    buf: Vec<u8>,
    /// A prefix announced too much: everything later is ignored.
    failed: bool,
    ctl: Control,
}

impl<P: fmt::Debug> fmt::Debug for Int32Receiver<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Int32Receiver")
            .field("proto", &self.proto)
            .field("max_length", &self.max_length)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<P: StringProtocol> Int32Receiver<P> {
    /// Twisted's default `MAX_LENGTH`.
    pub const DEFAULT_MAX_LENGTH: usize = 99999;

    /// Wraps `proto` with Twisted's default maximum string length, 99999 bytes.
    pub fn new(proto: P) -> Self {
        Int32Receiver {
            proto,
            max_length: Self::DEFAULT_MAX_LENGTH,
            buf: Vec::new(),
            failed: false,
            ctl: Control::default(),
        }
    }

    /// Sets the maximum string length (`MAX_LENGTH`).
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// The maximum string length.
    pub fn max_length(&self) -> usize {
        self.max_length
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

    /// Received bytes not yet delivered.
    pub fn buffered_data(&self) -> &[u8] {
        &self.buf
    }

    /// Takes in `data` and delivers the strings it completes.
    fn receive(&mut self, data: &[u8], t: &mut dyn Transport) {
        if self.ctl.closing || self.failed {
            return;
        }
        let mut data = data;
        // The common case of a read that ends the buffered string: copy only the
        // bytes that string still lacks, then read the rest in place.
        let k = self.missing(data);
        if k > 0 {
            let (head, rest) = data.split_at(k);
            let mut b = std::mem::take(&mut self.buf);
            b.extend_from_slice(head);
            self.feed(Cow::Owned(b), t);
            if self.failed || self.ctl.closing {
                return;
            }
            data = rest;
        }
        let work = if self.buf.is_empty() {
            Cow::Borrowed(data)
        } else {
            let mut b = std::mem::take(&mut self.buf);
            b.extend_from_slice(data);
            Cow::Owned(b)
        };
        self.feed(work, t);
    }

    /// How many bytes of `data` complete the one partial string in the buffer (0 when
    /// that is not the situation, or `data` does not complete it).
    fn missing(&self, data: &[u8]) -> usize {
        if self.buf.is_empty() || self.ctl.paused {
            return 0;
        }
        let mut head = [0u8; 4];
        let have = self.buf.len().min(4);
        let Some(need_head) = data.get(..4 - have) else {
            return 0;
        };
        head[..have].copy_from_slice(&self.buf[..have]);
        head[have..].copy_from_slice(need_head);
        let len = u64::from(u32::from_be_bytes(head));
        if len > self.max_length as u64 {
            return 0;
        }
        // `len <= max_length`, so it fits in usize.
        let total = 4 + len as usize;
        match total.checked_sub(self.buf.len()) {
            Some(need) if need > 0 && need <= data.len() => need,
            _ => 0,
        }
    }

    /// Delivers from `work` and buffers what is left.
    fn feed(&mut self, work: Cow<'_, [u8]>, t: &mut dyn Transport) {
        let used = self.pass(&work, t);
        if self.failed || self.ctl.closing {
            self.buf.clear();
            return;
        }
        match work {
            Cow::Borrowed(b) => self
                .buf
                .extend_from_slice(b.get(used..).unwrap_or_default()),
            Cow::Owned(mut v) => {
                v.drain(..used.min(v.len()));
                self.buf = v;
            }
        }
    }

    /// Delivers strings from `s`; returns how many bytes were used.
    fn pass(&mut self, s: &[u8], t: &mut dyn Transport) -> usize {
        let mut pos = 0;
        while !self.ctl.paused && !self.ctl.closing {
            let rest = s.get(pos..).unwrap_or_default();
            let Some(len) = PREFIX.read(rest) else { break };
            let mut it = Int32Transport {
                inner: &mut *t,
                ctl: &mut self.ctl,
            };
            if len > self.max_length as u64 {
                self.failed = true;
                self.proto.length_limit_exceeded(len, &mut it);
                return s.len();
            }
            // `len <= max_length`, so it fits in usize.
            let end = PREFIX.size() + len as usize;
            let Some(string) = rest.get(PREFIX.size()..end) else {
                break;
            };
            pos += end;
            self.proto.string_received(string, &mut it);
        }
        pos
    }

    /// After a callback outside `data_received`: deliver what resuming made
    /// deliverable.
    fn after_callback(&mut self, t: &mut dyn Transport) {
        if !self.buf.is_empty() && !self.ctl.paused {
            self.receive(&[], t);
        }
    }
}

impl<P: StringProtocol> Protocol for Int32Receiver<P> {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        let mut it = Int32Transport {
            inner: t,
            ctl: &mut self.ctl,
        };
        self.proto.connection_made(&mut it);
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        self.receive(data, t);
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        let mut it = Int32Transport {
            inner: &mut *t,
            ctl: &mut self.ctl,
        };
        self.proto.eof_received(&mut it);
        self.after_callback(t);
    }

    fn connection_lost(&mut self, reason: &CloseReason) {
        self.proto.connection_lost(reason);
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        let mut it = Int32Transport {
            inner: &mut *t,
            ctl: &mut self.ctl,
        };
        self.proto.timer_fired(id, &mut it);
        self.after_callback(t);
    }

    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        let mut it = Int32Transport {
            inner: &mut *t,
            ctl: &mut self.ctl,
        };
        self.proto.message_received(msg, &mut it);
        self.after_callback(t);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::protocol::testing::Script;
    use crate::protocol::PeerAddr;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Str(Vec<u8>),
        Exceeded(u64),
        Timer,
    }

    type Log = Arc<Mutex<Vec<Ev>>>;

    /// Records events; `CLOSE` closes, `PAUSE` pauses until a timer resumes.
    struct Rec(Log);

    impl StringProtocol for Rec {
        fn string_received(&mut self, s: &[u8], t: &mut Int32Transport<'_>) {
            self.0.lock().unwrap().push(Ev::Str(s.to_vec()));
            match s {
                b"CLOSE" => t.close(),
                b"PAUSE" => {
                    t.pause_reading();
                    t.call_later(Duration::from_secs(1));
                }
                _ => t.send_string(s).unwrap(),
            }
        }
        fn length_limit_exceeded(&mut self, len: u64, t: &mut Int32Transport<'_>) {
            self.0.lock().unwrap().push(Ev::Exceeded(len));
            t.close();
        }
        fn timer_fired(&mut self, _: TimerId, t: &mut Int32Transport<'_>) {
            self.0.lock().unwrap().push(Ev::Timer);
            t.resume_reading();
        }
    }

    fn frame(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    fn run(chunks: &[&[u8]], max: usize) -> (Vec<Ev>, Vec<u8>) {
        let log = Log::default();
        let mut script = Script::new();
        for c in chunks {
            script = script.data(c).fire_timers();
        }
        let out = script.run(Int32Receiver::new(Rec(log.clone())).with_max_length(max));
        let v = log.lock().unwrap().clone();
        (v, out.written)
    }

    fn stream(items: &[&[u8]]) -> Vec<u8> {
        items.iter().flat_map(|i| frame(i)).collect()
    }

    #[test]
    fn strings_in_every_chunking() {
        let mut input = stream(&[b"hello", b"", b"PAUSE", b"x", b"CLOSE", b"never"]);
        input.extend_from_slice(b"\x00\x00");
        let want = vec![
            Ev::Str(b"hello".to_vec()),
            Ev::Str(vec![]),
            Ev::Str(b"PAUSE".to_vec()),
            Ev::Timer,
            Ev::Str(b"x".to_vec()),
            Ev::Str(b"CLOSE".to_vec()),
        ];
        let echoed = stream(&[b"hello", b"", b"x"]);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let (got, written) = run(&[&input[..i], &input[i..j], &input[j..]], 100);
                assert_eq!(got, want, "split at {i}, {j}");
                assert_eq!(written, echoed);
            }
        }
    }

    #[test]
    fn limit_checked_on_the_prefix() {
        let mut input = stream(&[b"abcd"]);
        input.extend_from_slice(b"\x00\x00\x00\x05abcde");
        for i in 0..=input.len() {
            let (got, _) = run(&[&input[..i], &input[i..]], 4);
            assert_eq!(got, [Ev::Str(b"abcd".to_vec()), Ev::Exceeded(5)]);
        }
        let (got, _) = run(
            &[b"\xff\xff\xff\xff"],
            Int32Receiver::<Rec>::DEFAULT_MAX_LENGTH,
        );
        assert_eq!(got, [Ev::Exceeded(u32::MAX as u64)]);
    }

    #[test]
    fn exceeded_without_close_ignores_the_rest() {
        struct Open(Log);
        impl StringProtocol for Open {
            fn string_received(&mut self, s: &[u8], _: &mut Int32Transport<'_>) {
                self.0.lock().unwrap().push(Ev::Str(s.to_vec()));
            }
            fn length_limit_exceeded(&mut self, len: u64, _: &mut Int32Transport<'_>) {
                self.0.lock().unwrap().push(Ev::Exceeded(len));
            }
        }
        let log = Log::default();
        let mut input = frame(b"toolong");
        input.extend(frame(b"ok"));
        let out = Script::new()
            .data(&input)
            .data(&frame(b"ok"))
            .run(Int32Receiver::new(Open(log.clone())).with_max_length(3));
        assert!(!out.closed);
        assert_eq!(*log.lock().unwrap(), [Ev::Exceeded(7)]);
    }

    #[test]
    fn partial_string_buffers_only_the_tail() {
        let log = Log::default();
        let mut r = Int32Receiver::new(Rec(log.clone()));
        let local = PeerAddr::Inet(([127, 0, 0, 1], 1).into());
        let mut t = crate::protocol::testing::FakeTransport::new(local.clone(), local);
        let mut input = stream(&[b"a", b"b"]);
        r.data_received(&input, &mut t);
        assert!(r.buffered_data().is_empty());
        input = frame(b"cdef");
        r.data_received(&input[..6], &mut t);
        assert_eq!(r.buffered_data(), &input[..6]);
        r.data_received(&input[6..], &mut t);
        assert!(r.buffered_data().is_empty());
        assert_eq!(log.lock().unwrap().len(), 3);
        // A read that ends a buffered string and carries more: only the new tail stays.
        let input = stream(&[b"ghij", b"k", b"lm"]);
        r.data_received(&input[..2], &mut t);
        r.data_received(&input[2..input.len() - 1], &mut t);
        assert_eq!(r.buffered_data(), &input[input.len() - 6..input.len() - 1]);
        r.data_received(&input[input.len() - 1..], &mut t);
        assert!(r.buffered_data().is_empty());
        let got = log.lock().unwrap().split_off(3);
        assert_eq!(
            got,
            [
                Ev::Str(b"ghij".to_vec()),
                Ev::Str(b"k".to_vec()),
                Ev::Str(b"lm".to_vec())
            ]
        );
    }
}
