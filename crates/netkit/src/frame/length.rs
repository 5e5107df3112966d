//! Length-prefixed framing: a 1, 2 or 4-byte big-endian (network order) length, then
//! that many bytes (Twisted's Int8/Int16/Int32StringReceiver wire format).
//!
//! The announced length is checked against the maximum before anything is reserved,
//! so a peer cannot make the decoder allocate by announcing a huge frame. Out of
//! scope: little-endian or variable-length (varint) prefixes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Decoder, Encoder, FrameError, RESERVE_AHEAD};

/// The size of a length prefix; all are unsigned big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// One byte (`struct` format `"!B"`), frames up to 255 bytes.
    U8,
    /// Two bytes (`"!H"`), frames up to 65 535 bytes.
    U16,
    /// Four bytes (`"!I"`), frames up to 4 294 967 295 bytes.
    U32,
}

impl Prefix {
    /// The prefix's size in bytes.
    pub const fn size(self) -> usize {
        match self {
            Prefix::U8 => 1,
            Prefix::U16 => 2,
            Prefix::U32 => 4,
        }
    }

    /// The prefix's layout as a `pack` (CPython `struct`) format string.
    pub const fn format(self) -> &'static str {
        match self {
            Prefix::U8 => "!B",
            Prefix::U16 => "!H",
            Prefix::U32 => "!I",
        }
    }

    /// The largest length the prefix can carry.
    pub const fn max_value(self) -> u64 {
        match self {
            Prefix::U8 => u8::MAX as u64,
            Prefix::U16 => u16::MAX as u64,
            Prefix::U32 => u32::MAX as u64,
        }
    }

    /// Reads a length from the front of `src`, if it holds a whole prefix.
    pub fn read(self, src: &[u8]) -> Option<u64> {
        Some(match self {
            Prefix::U8 => u64::from(*src.first()?),
            Prefix::U16 => u64::from(u16::from_be_bytes(src.get(..2)?.try_into().ok()?)),
            Prefix::U32 => u64::from(u32::from_be_bytes(src.get(..4)?.try_into().ok()?)),
        })
    }

    /// Appends `len` in this prefix's format; [`FrameError::FrameTooLong`] if it
    /// does not fit.
    pub fn write(self, len: usize, dst: &mut BytesMut) -> Result<(), FrameError> {
        let too_long = || FrameError::FrameTooLong {
            len: len as u64,
            max: self.max_value(),
        };
        match self {
            Prefix::U8 => dst.put_u8(u8::try_from(len).map_err(|_| too_long())?),
            Prefix::U16 => dst.put_u16(u16::try_from(len).map_err(|_| too_long())?),
            Prefix::U32 => dst.put_u32(u32::try_from(len).map_err(|_| too_long())?),
        }
        Ok(())
    }
}

/// The frame length a prefix can carry, capped by a maximum.
fn cap(prefix: Prefix, max_len: usize) -> u64 {
    (max_len as u64).min(prefix.max_value())
}

/// Splits length-prefixed frames off a buffer; yields each payload without its prefix.
///
/// A frame announcing more than the maximum is an error; the stream cannot be
/// resynchronised after it, so later calls return [`FrameError::Stopped`].
///
/// ```
/// use bytes::BytesMut;
/// use netkit::frame::{Decoder, LengthDecoder, Prefix};
///
/// let mut dec = LengthDecoder::new(Prefix::U16, 1024);
/// let mut buf = BytesMut::from(&b"\x00\x05hel"[..]);
/// assert_eq!(dec.decode(&mut buf).unwrap(), None);
/// buf.extend_from_slice(b"lo\x00");
/// assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"hello"[..]));
/// assert_eq!(dec.decode(&mut buf).unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct LengthDecoder {
    prefix: Prefix,
    max_len: usize,
    /// The length of the frame whose prefix has been read and consumed.
    pending: Option<usize>,
    stopped: bool,
}

impl LengthDecoder {
    /// A decoder of frames with a `prefix`-sized length of at most `max_len` bytes.
    pub fn new(prefix: Prefix, max_len: usize) -> Self {
        LengthDecoder {
            prefix,
            max_len,
            pending: None,
            stopped: false,
        }
    }

    /// The prefix size.
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The maximum frame length.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Reads the next prefix off `src`, checking it against the maximum.
    fn header(&mut self, src: &mut BytesMut) -> Result<Option<usize>, FrameError> {
        let Some(len) = self.prefix.read(src) else {
            return Ok(None);
        };
        let max = cap(self.prefix, self.max_len);
        let Ok(n) = usize::try_from(len) else {
            return Err(self.stop(src, len, max));
        };
        if len > max {
            return Err(self.stop(src, len, max));
        }
        src.advance(self.prefix.size());
        // Within the checked maximum, and at most `RESERVE_AHEAD` at once.
        src.reserve(n.saturating_sub(src.len()).min(RESERVE_AHEAD));
        Ok(Some(n))
    }

    fn stop(&mut self, src: &mut BytesMut, len: u64, max: u64) -> FrameError {
        self.stopped = true;
        src.clear();
        FrameError::FrameTooLong { len, max }
    }
}

impl Decoder for LengthDecoder {
    type Frame = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if self.stopped {
            src.clear();
            return Err(FrameError::Stopped);
        }
        let n = match self.pending {
            Some(n) => n,
            None => match self.header(src)? {
                Some(n) => n,
                None => return Ok(None),
            },
        };
        if src.len() < n {
            self.pending = Some(n);
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(src.split_to(n).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => Err(FrameError::Truncated {
                remaining: src.len() + self.pending.map_or(0, |_| self.prefix.size()),
            }),
        }
    }
}

/// Writes each item with a length prefix, refusing items over the maximum (or over
/// what the prefix can carry).
///
/// ```
/// use bytes::BytesMut;
/// use netkit::frame::{Encoder, FrameError, LengthEncoder, Prefix};
///
/// let mut enc = LengthEncoder::new(Prefix::U8, 1000);
/// let mut out = BytesMut::new();
/// enc.encode(b"hi", &mut out).unwrap();
/// assert_eq!(&out[..], b"\x02hi");
/// assert!(matches!(enc.encode(&[0; 256], &mut out), Err(FrameError::FrameTooLong { .. })));
/// ```
#[derive(Debug, Clone)]
pub struct LengthEncoder {
    prefix: Prefix,
    max_len: usize,
}

impl LengthEncoder {
    /// An encoder of frames with a `prefix`-sized length of at most `max_len` bytes.
    pub fn new(prefix: Prefix, max_len: usize) -> Self {
        LengthEncoder { prefix, max_len }
    }
}

impl Encoder for LengthEncoder {
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        let max = cap(self.prefix, self.max_len);
        if item.len() as u64 > max {
            return Err(FrameError::FrameTooLong {
                len: item.len() as u64,
                max,
            });
        }
        dst.reserve(self.prefix.size() + item.len());
        self.prefix.write(item.len(), dst)?;
        dst.extend_from_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_util::{feed, splits, Out};
    use super::*;

    fn check(dec: &LengthDecoder, input: &[u8], want: &[Out]) {
        for chunks in splits(input) {
            let mut d = dec.clone();
            let (got, _) = feed(&mut d, &chunks);
            assert_eq!(got, want, "chunks {chunks:?}");
        }
    }

    fn encode_all(prefix: Prefix, items: &[&[u8]]) -> Vec<u8> {
        let mut enc = LengthEncoder::new(prefix, 1000);
        let mut out = BytesMut::new();
        for i in items {
            enc.encode(i, &mut out).unwrap();
        }
        out.to_vec()
    }

    #[test]
    fn round_trip_every_prefix_every_split() {
        let items: [&[u8]; 4] = [b"hello", b"", b"x", b"world!!"];
        let want: Vec<Out> = items.iter().map(|i| Out::Frame(i.to_vec())).collect();
        for prefix in [Prefix::U8, Prefix::U16, Prefix::U32] {
            let mut input = encode_all(prefix, &items);
            input.extend_from_slice(&[0; 3][..prefix.size() - 1]); // a partial prefix
            check(&LengthDecoder::new(prefix, 100), &input, &want);
        }
    }

    #[test]
    fn too_long_rejected_before_payload_arrives() {
        let mut dec = LengthDecoder::new(Prefix::U32, 10);
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x03abc\xff\xff\xff\xff"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLong {
                len: u32::MAX as u64,
                max: 10
            })
        );
        assert!(buf.capacity() < 1 << 20);
        buf.extend_from_slice(b"\x00\x00\x00\x01a");
        assert_eq!(dec.decode(&mut buf), Err(FrameError::Stopped));
    }

    #[test]
    fn large_maximum_reserves_a_bounded_amount() {
        let mut dec = LengthDecoder::new(Prefix::U32, usize::MAX);
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xffabc"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= 2 * RESERVE_AHEAD);
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    #[test]
    fn overflow_at_every_split() {
        let dec = LengthDecoder::new(Prefix::U16, 4);
        let input = b"\x00\x04abcd\x00\x05abcde\x00\x01z";
        let want = vec![
            Out::Frame(b"abcd".to_vec()),
            Out::Err(FrameError::FrameTooLong { len: 5, max: 4 }),
        ];
        check(&dec, input, &want);
    }

    #[test]
    fn decode_eof_reports_truncation() {
        let mut dec = LengthDecoder::new(Prefix::U16, 100);
        let mut buf = BytesMut::from(&b"\x00\x05ab"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(
            dec.decode_eof(&mut buf),
            Err(FrameError::Truncated { remaining: 4 })
        );
        let mut dec = LengthDecoder::new(Prefix::U16, 100);
        assert_eq!(dec.decode_eof(&mut BytesMut::new()), Ok(None));
    }

    #[test]
    fn encoder_limits() {
        let mut out = BytesMut::new();
        let mut enc = LengthEncoder::new(Prefix::U16, 1 << 20);
        enc.encode(&[7; 65535], &mut out).unwrap();
        assert_eq!(&out[..2], b"\xff\xff");
        assert_eq!(
            enc.encode(&[7; 65536], &mut out),
            Err(FrameError::FrameTooLong {
                len: 65536,
                max: 65535
            })
        );
        let mut enc = LengthEncoder::new(Prefix::U32, 3);
        assert!(enc.encode(b"abcd", &mut out).is_err());
        assert_eq!(out.len(), 65537);
    }

    #[test]
    fn prefix_names_match_pack_formats() {
        assert_eq!(Prefix::U8.format(), "!B");
        assert_eq!(Prefix::U16.format(), "!H");
        assert_eq!(Prefix::U32.format(), "!I");
        assert_eq!(Prefix::U32.read(b"\x01\x02\x03\x04"), Some(0x0102_0304));
        assert_eq!(Prefix::U32.read(b"\x01\x02\x03"), None);
    }
}
