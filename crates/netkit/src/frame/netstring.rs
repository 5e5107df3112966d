//! Netstrings (D. J. Bernstein's format): `12:hello world!,` — decimal length, `:`,
//! payload, `,`.
//!
//! Following the spec, `0:,` is the empty string, the length has no leading zeros
//! (`01:a,` is refused), and anything but `,` after the payload is an error. The length
//! is checked against the maximum digit by digit, so a peer cannot send an endless or
//! huge length. A netstring stream cannot be resynchronised after an error: later calls
//! return [`FrameError::Stopped`].

use bytes::{Buf, Bytes, BytesMut};

use super::{Decoder, Encoder, FrameError, RESERVE_AHEAD};

/// Where the decoder is inside the current netstring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the length: `digits` digits read so far, making `value`.
    Length { digits: usize, value: u64 },
    /// The length and `:` are consumed; the payload and `,` follow.
    Body(usize),
    /// An error was reported.
    Stopped,
}

const START: State = State::Length {
    digits: 0,
    value: 0,
};

/// Splits netstrings off a buffer; yields each payload.
///
/// ```
/// use bytes::BytesMut;
/// use netkit::frame::{Decoder, FrameError, NetstringDecoder};
///
/// let mut dec = NetstringDecoder::new(100);
/// let mut buf = BytesMut::from(&b"12:hello world!,0:,3:ab"[..]);
/// assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"hello world!"[..]));
/// assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b""[..]));
/// assert_eq!(dec.decode(&mut buf).unwrap(), None);
/// buf.extend_from_slice(b"c;");
/// assert_eq!(dec.decode(&mut buf), Err(FrameError::MissingComma));
/// ```
#[derive(Debug, Clone)]
pub struct NetstringDecoder {
    max_len: usize,
    state: State,
}

impl NetstringDecoder {
    /// A decoder of netstrings of at most `max_len` payload bytes.
    pub fn new(max_len: usize) -> Self {
        NetstringDecoder {
            max_len,
            state: START,
        }
    }

    /// The maximum payload length.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn fail(&mut self, src: &mut BytesMut, e: FrameError) -> FrameError {
        self.state = State::Stopped;
        src.clear();
        e
    }

    /// Consumes length digits and the `:`; the payload length once the `:` is read.
    /// The header is short (bounded by the maximum's digit count), so this is the one
    /// place that looks at single bytes.
    fn header(
        &mut self,
        src: &mut BytesMut,
        mut digits: usize,
        mut value: u64,
    ) -> Result<Option<usize>, FrameError> {
        let max = self.max_len as u64;
        let mut used = 0;
        let mut colon = false;
        for &b in src.iter() {
            used += 1;
            match b {
                b':' if digits == 0 => {
                    return Err(self.fail(src, FrameError::BadNetstringLength("no digits")));
                }
                b':' => {
                    colon = true;
                    break;
                }
                b'0'..=b'9' if digits == 1 && value == 0 => {
                    return Err(self.fail(src, FrameError::BadNetstringLength("leading zero")));
                }
                b'0'..=b'9' => {
                    digits += 1;
                    value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                    if value > max {
                        let e = FrameError::FrameTooLong { len: value, max };
                        return Err(self.fail(src, e));
                    }
                }
                _ => {
                    return Err(self.fail(src, FrameError::BadNetstringLength("not a digit")));
                }
            }
        }
        src.advance(used);
        if !colon {
            self.state = State::Length { digits, value };
            return Ok(None);
        }
        // `value <= max_len`, so it fits in usize; reserving is bounded.
        let n = usize::try_from(value).unwrap_or(self.max_len);
        src.reserve(
            n.saturating_add(1)
                .saturating_sub(src.len())
                .min(RESERVE_AHEAD),
        );
        Ok(Some(n))
    }
}

impl Decoder for NetstringDecoder {
    type Frame = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let n = match self.state {
            State::Stopped => {
                src.clear();
                return Err(FrameError::Stopped);
            }
            State::Body(n) => n,
            State::Length { digits, value } => match self.header(src, digits, value)? {
                Some(n) => n,
                None => return Ok(None),
            },
        };
        match src.get(n) {
            None => {
                self.state = State::Body(n);
                Ok(None)
            }
            Some(b',') => {
                let payload = src.split_to(n).freeze();
                src.advance(1);
                self.state = START;
                Ok(Some(payload))
            }
            Some(_) => Err(self.fail(src, FrameError::MissingComma)),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && self.state == START => Ok(None),
            None => Err(FrameError::Truncated {
                remaining: src.len(),
            }),
        }
    }
}

/// Writes each item as a netstring, refusing items over the maximum.
///
/// ```
/// use bytes::BytesMut;
/// use netkit::frame::{Encoder, NetstringEncoder};
///
/// let mut out = BytesMut::new();
/// NetstringEncoder::new(100).encode(b"hello world!", &mut out).unwrap();
/// assert_eq!(&out[..], b"12:hello world!,");
/// ```
#[derive(Debug, Clone)]
pub struct NetstringEncoder {
    max_len: usize,
}

impl NetstringEncoder {
    /// An encoder of netstrings of at most `max_len` payload bytes.
    pub fn new(max_len: usize) -> Self {
        NetstringEncoder { max_len }
    }
}

impl Encoder for NetstringEncoder {
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        if item.len() > self.max_len {
            return Err(FrameError::FrameTooLong {
                len: item.len() as u64,
                max: self.max_len as u64,
            });
        }
        let len = item.len().to_string();
        dst.reserve(len.len() + item.len() + 2);
        dst.extend_from_slice(len.as_bytes());
        dst.extend_from_slice(b":");
        dst.extend_from_slice(item);
        dst.extend_from_slice(b",");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_util::{feed, splits, Out};
    use super::*;

    fn check(max: usize, input: &[u8], want: &[Out]) {
        for chunks in splits(input) {
            let mut d = NetstringDecoder::new(max);
            let (got, _) = feed(&mut d, &chunks);
            assert_eq!(got, want, "chunks {chunks:?}");
        }
    }

    fn f(b: &[u8]) -> Out {
        Out::Frame(b.to_vec())
    }

    fn bad(why: &'static str) -> Out {
        Out::Err(FrameError::BadNetstringLength(why))
    }

    #[test]
    fn valid_stream_every_split() {
        check(
            20,
            b"12:hello world!,0:,1::,3:a,b,10:0123456789,",
            &[
                f(b"hello world!"),
                f(b""),
                f(b":"),
                f(b"a,b"),
                f(b"0123456789"),
            ],
        );
    }

    #[test]
    fn errors_every_split() {
        check(20, b"1:a,01:a,", &[f(b"a"), bad("leading zero")]);
        check(20, b"00:,", &[bad("leading zero")]);
        check(20, b"2:ab,:,", &[f(b"ab"), bad("no digits")]);
        check(20, b"1x:a,", &[bad("not a digit")]);
        check(20, b"-1:a,", &[bad("not a digit")]);
        check(20, b"2:abc", &[Out::Err(FrameError::MissingComma)]);
        check(
            20,
            b"3:abc,21:",
            &[
                f(b"abc"),
                Out::Err(FrameError::FrameTooLong { len: 21, max: 20 }),
            ],
        );
        check(
            20,
            b"20:01234567890123456789,999999999999999999999999",
            &[
                f(b"01234567890123456789"),
                Out::Err(FrameError::FrameTooLong { len: 99, max: 20 }),
            ],
        );
    }

    #[test]
    fn huge_length_never_reserved() {
        let mut dec = NetstringDecoder::new(1000);
        let mut buf = BytesMut::from(&b"99999999999999999999999999999:"[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLong { .. })
        ));
        assert!(buf.capacity() < 1 << 20);
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"1:a,"[..])),
            Err(FrameError::Stopped)
        );
    }

    #[test]
    fn unbounded_maximum_does_not_overflow() {
        let mut dec = NetstringDecoder::new(usize::MAX);
        let mut buf = BytesMut::from(&b"99999999999999999999999999999:abc"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= 2 * crate::frame::RESERVE_AHEAD);
        buf.extend_from_slice(b"more");
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    #[test]
    fn decode_eof() {
        let mut dec = NetstringDecoder::new(10);
        let mut buf = BytesMut::from(&b"1:a,2:b"[..]);
        assert_eq!(
            dec.decode_eof(&mut buf).unwrap().as_deref(),
            Some(&b"a"[..])
        );
        assert!(matches!(
            dec.decode_eof(&mut buf),
            Err(FrameError::Truncated { .. })
        ));
        let mut dec = NetstringDecoder::new(100);
        let mut buf = BytesMut::from(&b"12"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
        assert!(dec.decode_eof(&mut buf).is_err());
    }

    #[test]
    fn encoder_round_trips() {
        let mut enc = NetstringEncoder::new(10);
        let mut out = BytesMut::new();
        for item in [&b"abc"[..], b"", b"0123456789"] {
            enc.encode(item, &mut out).unwrap();
        }
        assert!(enc.encode(b"01234567890", &mut out).is_err());
        check(10, &out, &[f(b"abc"), f(b""), f(b"0123456789")]);
    }
}
