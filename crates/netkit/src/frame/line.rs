//! Line framing: a configurable delimiter, a maximum line length, and a policy for
//! over-long lines.
//!
//! [`Delimiter`] finds a delimiter with `memchr` (one byte) or `memchr::memmem` (several
//! bytes); [`LineDecoder`] splits lines off a buffer, resuming its scan where it
//! stopped, so a delimiter split across reads is found and old bytes are never
//! rescanned; [`LineEncoder`] appends the delimiter. An over-long line is reported once
//! ([`FrameError::LineTooLong`]) and discarded as it arrives, never buffered whole; what
//! happens next is the caller's choice ([`Overflow`]).
//!
//! Twisted's LineReceiver semantics (its own overflow rule, raw mode) live in
//! `protocol::line`, which uses [`Delimiter`] from here.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::{Decoder, Encoder, FrameError};

/// A non-empty line delimiter and a fast searcher for it.
///
/// ```
/// use netkit::frame::Delimiter;
/// let crlf = Delimiter::new(b"\r\n").unwrap();
/// assert_eq!(crlf.find(b"ab\r\ncd"), Some(2));
/// assert_eq!(crlf.find(b"ab\r"), None);
/// assert!(Delimiter::new(b"").is_err());
/// ```
#[derive(Clone)]
pub struct Delimiter {
    bytes: Box<[u8]>,
    finder: memmem::Finder<'static>,
}

impl Delimiter {
    /// A delimiter of `bytes`; [`FrameError::EmptyDelimiter`] if `bytes` is empty.
    pub fn new(bytes: &[u8]) -> Result<Self, FrameError> {
        if bytes.is_empty() {
            return Err(FrameError::EmptyDelimiter);
        }
        Ok(Delimiter {
            bytes: bytes.into(),
            finder: memmem::Finder::new(bytes).into_owned(),
        })
    }

    /// `"\n"`.
    pub fn lf() -> Self {
        Delimiter {
            bytes: Box::new(*b"\n"),
            finder: memmem::Finder::new(b"\n").into_owned(),
        }
    }

    /// `"\r\n"`.
    pub fn crlf() -> Self {
        Delimiter {
            bytes: Box::new(*b"\r\n"),
            finder: memmem::Finder::new(b"\r\n").into_owned(),
        }
    }

    /// The delimiter's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The position of the first delimiter in `haystack`.
    #[inline]
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        match *self.bytes {
            [b] => memchr::memchr(b, haystack),
            _ => self.finder.find(haystack),
        }
    }

    /// Where to resume a search after `scanned` bytes held no delimiter: a delimiter
    /// may still start in the last `len - 1` of them.
    #[inline]
    pub(crate) fn resume_at(&self, scanned: usize) -> usize {
        scanned.saturating_sub(self.bytes.len() - 1)
    }
}

impl Default for Delimiter {
    fn default() -> Self {
        Delimiter::lf()
    }
}

impl fmt::Debug for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Delimiter({:?})", self.bytes.escape_ascii().to_string())
    }
}

impl PartialEq for Delimiter {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Delimiter {}

/// What a [`LineDecoder`] does after reporting an over-long line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Discard the rest of the over-long line as it arrives and carry on with the line
    /// after the next delimiter.
    #[default]
    Resync,
    /// Stop: every later call returns [`FrameError::Stopped`] (the caller closes).
    Stop,
}

/// Splits delimited lines off a buffer; yields each line without its delimiter.
///
/// The maximum length counts the line without its delimiter; a line of exactly the
/// maximum is accepted. The decoder keeps a scan index into the buffer, so between
/// calls the caller only appends to it.
///
/// ```
/// use bytes::BytesMut;
/// use netkit::frame::{Decoder, FrameError, LineDecoder};
///
/// let mut dec = LineDecoder::new(4).with_delimiter(b"\r\n");
/// let mut buf = BytesMut::from(&b"ok\r\ntoo long\r\nnext\r\n"[..]);
/// assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"ok"[..]));
/// assert_eq!(dec.decode(&mut buf), Err(FrameError::LineTooLong { max: 4 }));
/// assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"next"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct LineDecoder {
    delim: Delimiter,
    max_len: usize,
    overflow: Overflow,
    /// Bytes at the front of the buffer already scanned without finding a delimiter.
    scanned: usize,
    /// Inside an over-long line: drop bytes up to the next delimiter.
    discarding: bool,
    stopped: bool,
}

impl LineDecoder {
    /// A decoder of `"\n"`-terminated lines of at most `max_len` bytes that resyncs
    /// after an over-long line.
    pub fn new(max_len: usize) -> Self {
        LineDecoder {
            delim: Delimiter::lf(),
            max_len,
            overflow: Overflow::Resync,
            scanned: 0,
            discarding: false,
            stopped: false,
        }
    }

    /// Uses `delimiter` instead of `"\n"`.
    ///
    /// # Panics
    ///
    /// If `delimiter` is empty; use [`try_with_delimiter`](Self::try_with_delimiter)
    /// for a delimiter from user input.
    pub fn with_delimiter(self, delimiter: &[u8]) -> Self {
        match self.try_with_delimiter(delimiter) {
            Ok(d) => d,
            Err(_) => panic!("LineDecoder::with_delimiter: empty delimiter"),
        }
    }

    /// Uses `delimiter` instead of `"\n"`; [`FrameError::EmptyDelimiter`] if empty.
    pub fn try_with_delimiter(mut self, delimiter: &[u8]) -> Result<Self, FrameError> {
        self.delim = Delimiter::new(delimiter)?;
        Ok(self)
    }

    /// Sets what happens after an over-long line (default [`Overflow::Resync`]).
    pub fn with_overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The maximum line length, without the delimiter.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        self.delim.as_bytes()
    }

    /// Whether a delimiter could still start at or before `max_len` in `src`, which
    /// holds no whole delimiter in its first `limit` bytes.
    fn may_still_fit(&self, src: &[u8]) -> bool {
        if src.len() <= self.max_len {
            return true;
        }
        let d = self.delim.as_bytes();
        let first = (src.len() + 1).saturating_sub(d.len());
        (first..=self.max_len).any(|p| src.get(p..).is_some_and(|tail| d.starts_with(tail)))
    }

    /// Skips bytes of an over-long line; true once past its delimiter.
    fn discard(&mut self, src: &mut BytesMut) -> bool {
        let dlen = self.delim.as_bytes().len();
        let start = self.delim.resume_at(self.scanned).min(src.len());
        match self.delim.find(&src[start..]) {
            Some(i) => {
                src.advance(start + i + dlen);
                self.discarding = false;
                self.scanned = 0;
                true
            }
            None => {
                let keep = (dlen - 1).min(src.len());
                src.advance(src.len() - keep);
                self.scanned = src.len();
                false
            }
        }
    }

    /// Reports an over-long line whose first `scanned` bytes hold no delimiter.
    fn overflowed(&mut self, src: &mut BytesMut, scanned: usize) -> FrameError {
        match self.overflow {
            Overflow::Stop => {
                self.stopped = true;
                src.clear();
                self.scanned = 0;
            }
            Overflow::Resync => {
                let drop = self.delim.resume_at(scanned).min(src.len());
                src.advance(drop);
                self.scanned = scanned - drop;
                self.discarding = true;
                // Drop the rest of the line now, not on the next call.
                self.discard(src);
            }
        }
        FrameError::LineTooLong { max: self.max_len }
    }
}

impl Decoder for LineDecoder {
    type Frame = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if self.stopped {
            src.clear();
            return Err(FrameError::Stopped);
        }
        if self.scanned > src.len() {
            // The caller consumed from the buffer; scan it afresh.
            self.scanned = 0;
        }
        if self.discarding && !self.discard(src) {
            return Ok(None);
        }
        let dlen = self.delim.as_bytes().len();
        // A delimiter that ends the longest allowed line ends before `limit`.
        let limit = src.len().min(self.max_len.saturating_add(dlen));
        let start = self.delim.resume_at(self.scanned).min(limit);
        if let Some(i) = self.delim.find(&src[start..limit]) {
            let line = src.split_to(start + i).freeze();
            src.advance(dlen);
            self.scanned = 0;
            return Ok(Some(line));
        }
        if self.may_still_fit(src) {
            self.scanned = limit;
            return Ok(None);
        }
        Err(self.overflowed(src, limit))
    }

    /// At end of stream an unterminated last line is a line (if within the maximum).
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        if self.discarding {
            src.clear();
            self.discarding = false;
            self.scanned = 0;
            return Ok(None);
        }
        if src.is_empty() {
            return Ok(None);
        }
        if src.len() > self.max_len {
            return Err(self.overflowed(src, src.len()));
        }
        self.scanned = 0;
        Ok(Some(src.split().freeze()))
    }
}

/// Appends the delimiter to each line, refusing lines the matching [`LineDecoder`]
/// would not give back unchanged.
///
/// ```
/// use bytes::BytesMut;
/// use netkit::frame::{Encoder, FrameError, LineEncoder};
///
/// let mut enc = LineEncoder::new(8).with_delimiter(b"\r\n");
/// let mut out = BytesMut::new();
/// enc.encode(b"hello", &mut out).unwrap();
/// assert_eq!(&out[..], b"hello\r\n");
/// assert_eq!(enc.encode(b"a\r\nb", &mut out), Err(FrameError::DelimiterInLine));
/// assert_eq!(enc.encode(b"123456789", &mut out), Err(FrameError::LineTooLong { max: 8 }));
/// ```
#[derive(Debug, Clone)]
pub struct LineEncoder {
    delim: Delimiter,
    max_len: usize,
}

impl LineEncoder {
    /// An encoder of `"\n"`-terminated lines of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        LineEncoder {
            delim: Delimiter::lf(),
            max_len,
        }
    }

    /// Uses `delimiter` instead of `"\n"`.
    ///
    /// # Panics
    ///
    /// If `delimiter` is empty; use [`try_with_delimiter`](Self::try_with_delimiter)
    /// for a delimiter from user input.
    pub fn with_delimiter(self, delimiter: &[u8]) -> Self {
        match self.try_with_delimiter(delimiter) {
            Ok(e) => e,
            Err(_) => panic!("LineEncoder::with_delimiter: empty delimiter"),
        }
    }

    /// Uses `delimiter` instead of `"\n"`; [`FrameError::EmptyDelimiter`] if empty.
    pub fn try_with_delimiter(mut self, delimiter: &[u8]) -> Result<Self, FrameError> {
        self.delim = Delimiter::new(delimiter)?;
        Ok(self)
    }
}

impl Encoder for LineEncoder {
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        if item.len() > self.max_len {
            return Err(FrameError::LineTooLong { max: self.max_len });
        }
        let start = dst.len();
        dst.reserve(item.len() + self.delim.as_bytes().len());
        dst.extend_from_slice(item);
        dst.extend_from_slice(self.delim.as_bytes());
        // The first delimiter must be the one appended (a delimiter inside the item,
        // or one made of the item's tail and the delimiter's head, would split it).
        if self.delim.find(&dst[start..]) != Some(item.len()) {
            dst.truncate(start);
            return Err(FrameError::DelimiterInLine);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_util::{feed, splits, Out};
    use super::*;

    fn frames(v: &[&[u8]]) -> Vec<Out> {
        v.iter().map(|f| Out::Frame(f.to_vec())).collect()
    }

    /// Feeds `input` at every split point; every chunking must give `want`.
    fn check(dec: &LineDecoder, input: &[u8], want: &[Out]) {
        for chunks in splits(input) {
            let mut d = dec.clone();
            let (got, _) = feed(&mut d, &chunks);
            assert_eq!(got, want, "input {input:?} chunks {chunks:?}");
        }
    }

    #[test]
    fn lf_lines_any_chunking() {
        let dec = LineDecoder::new(16);
        check(
            &dec,
            b"a\nbc\n\ndef\ntail",
            &frames(&[b"a", b"bc", b"", b"def"]),
        );
    }

    #[test]
    fn crlf_split_across_chunks() {
        let dec = LineDecoder::new(16).with_delimiter(b"\r\n");
        check(
            &dec,
            b"one\r\ntwo\rx\r\n\r\n",
            &frames(&[b"one", b"two\rx", b""]),
        );
    }

    #[test]
    fn long_delimiter_overlapping_prefixes() {
        let dec = LineDecoder::new(16).with_delimiter(b"aab");
        check(&dec, b"xaaabyaabzaaaab", &frames(&[b"xa", b"y", b"zaa"]));
    }

    #[test]
    fn exact_max_accepted_and_one_more_rejected() {
        let too_long = Out::Err(FrameError::LineTooLong { max: 4 });
        let dec = LineDecoder::new(4);
        check(&dec, b"abcd\n", &frames(&[b"abcd"]));
        check(
            &dec,
            b"abcde\nok\n",
            &[too_long.clone(), Out::Frame(b"ok".to_vec())],
        );
        let dec = LineDecoder::new(4).with_delimiter(b"\r\n");
        check(&dec, b"abcd\r\nx\r\n", &frames(&[b"abcd", b"x"]));
        check(
            &dec,
            b"abcd\rx\r\nok\r\n",
            &[too_long.clone(), Out::Frame(b"ok".to_vec())],
        );
    }

    #[test]
    fn overflow_reported_once_and_resyncs() {
        let dec = LineDecoder::new(3).with_delimiter(b"\r\n");
        let input = b"ab\r\n0123456789\r\r\n\r\ncd\r\nxxxxxxxxxx";
        let e = Out::Err(FrameError::LineTooLong { max: 3 });
        let want = vec![
            Out::Frame(b"ab".to_vec()),
            e.clone(),
            Out::Frame(b"".to_vec()),
            Out::Frame(b"cd".to_vec()),
            e,
        ];
        check(&dec, input, &want);
    }

    #[test]
    fn overflow_discards_as_it_goes() {
        let mut dec = LineDecoder::new(8);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[b'x'; 100]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::LineTooLong { max: 8 })
        );
        assert!(buf.is_empty());
        for _ in 0..100 {
            buf.extend_from_slice(&[b'y'; 1000]);
            assert_eq!(dec.decode(&mut buf), Ok(None));
            assert!(buf.is_empty());
        }
        buf.extend_from_slice(b"y\nok\n");
        assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"ok"[..]));
    }

    #[test]
    fn overflow_stop() {
        let dec = LineDecoder::new(3).with_overflow(Overflow::Stop);
        let e = Out::Err(FrameError::LineTooLong { max: 3 });
        check(&dec, b"ab\nabcd\nok\n", &[Out::Frame(b"ab".to_vec()), e]);
        let mut d = dec.clone();
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert!(d.decode(&mut buf).is_err());
        buf.extend_from_slice(b"\nok\n");
        assert_eq!(d.decode(&mut buf), Err(FrameError::Stopped));
        assert!(buf.is_empty());
    }

    #[test]
    fn max_zero_accepts_only_empty_lines() {
        let dec = LineDecoder::new(0).with_delimiter(b"\r\n");
        let e = Out::Err(FrameError::LineTooLong { max: 0 });
        check(
            &dec,
            b"\r\n\r\nx\r\n\r\n",
            &[
                Out::Frame(vec![]),
                Out::Frame(vec![]),
                e,
                Out::Frame(vec![]),
            ],
        );
    }

    #[test]
    fn decode_eof_gives_unterminated_last_line() {
        let mut dec = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"a\nlast"[..]);
        assert_eq!(
            dec.decode_eof(&mut buf).unwrap().as_deref(),
            Some(&b"a"[..])
        );
        assert_eq!(
            dec.decode_eof(&mut buf).unwrap().as_deref(),
            Some(&b"last"[..])
        );
        assert_eq!(dec.decode_eof(&mut buf), Ok(None));
        let mut dec = LineDecoder::new(4).with_delimiter(b"\r\n");
        let mut buf = BytesMut::from(&b"abcd\r"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(
            dec.decode_eof(&mut buf),
            Err(FrameError::LineTooLong { max: 4 })
        );
    }

    #[test]
    fn scan_resumes_where_it_stopped() {
        // Byte-by-byte feeding of a long line must not rescan: the scan index moves on.
        let mut dec = LineDecoder::new(1 << 20).with_delimiter(b"\r\n");
        let mut buf = BytesMut::new();
        for _ in 0..10_000 {
            buf.extend_from_slice(b"x");
            assert_eq!(dec.decode(&mut buf), Ok(None));
            assert_eq!(dec.scanned, buf.len());
        }
        buf.extend_from_slice(b"\r");
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"\n");
        assert_eq!(dec.decode(&mut buf).unwrap().unwrap().len(), 10_000);
    }

    #[test]
    fn caller_clearing_buffer_does_not_panic() {
        let mut dec = LineDecoder::new(100).with_delimiter(b"\r\n");
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.clear();
        buf.extend_from_slice(b"x\r\n");
        assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn encoder_round_trips() {
        let mut enc = LineEncoder::new(10).with_delimiter(b"aba");
        let mut out = BytesMut::new();
        assert_eq!(
            enc.encode(b"xab", &mut out),
            Err(FrameError::DelimiterInLine)
        );
        assert!(out.is_empty());
        enc.encode(b"xyz", &mut out).unwrap();
        enc.encode(b"", &mut out).unwrap();
        let dec = LineDecoder::new(10).with_delimiter(b"aba");
        let input = out.to_vec();
        check(&dec, &input, &frames(&[b"xyz", b""]));
    }

    /// The same rules, written plainly over a whole input: a line within the maximum
    /// is a frame; a longer one is one error and is skipped through its delimiter; an
    /// unterminated tail is an error only if no delimiter can still end a valid line.
    fn reference(input: &[u8], delim: &[u8], max: usize) -> Vec<Out> {
        let d = Delimiter::new(delim).unwrap();
        let mut out = Vec::new();
        let mut rest = input;
        while let Some(i) = d.find(rest) {
            out.push(if i <= max {
                Out::Frame(rest[..i].to_vec())
            } else {
                Out::Err(FrameError::LineTooLong { max })
            });
            rest = &rest[i + delim.len()..];
        }
        let may_fit = (0..=max.min(rest.len())).any(|p| delim.starts_with(&rest[p..]));
        if !may_fit {
            out.push(Out::Err(FrameError::LineTooLong { max }));
        }
        out
    }

    #[test]
    fn random_inputs_match_the_plain_rules_at_every_split() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for delim in [&b"\n"[..], b"\r\n", b"aab", b"abab"] {
            for _ in 0..60 {
                let len = next(28);
                let input: Vec<u8> = (0..len).map(|_| b"ab\r\n"[next(4)]).collect();
                let max = next(7);
                let dec = LineDecoder::new(max).with_delimiter(delim);
                check(&dec, &input, &reference(&input, delim, max));
            }
        }
    }

    #[test]
    fn empty_delimiter_is_an_error() {
        assert_eq!(
            LineDecoder::new(1).try_with_delimiter(b"").err(),
            Some(FrameError::EmptyDelimiter)
        );
        assert!(LineEncoder::new(1).try_with_delimiter(b"").is_err());
    }
}
