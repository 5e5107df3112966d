//! Sans-IO frame decoders and encoders: lines, length-prefixed frames and netstrings.
//!
//! A network read returns whatever bytes happened to arrive: half a line, three lines
//! and a bit, one byte. A [`Decoder`] takes those bytes, in any chunking, from a
//! [`BytesMut`] the caller appends to, and answers with one of three outcomes:
//!
//! * `Ok(Some(frame))` — a whole frame, split off the front of the buffer without
//!   copying the rest;
//! * `Ok(None)` — need more bytes (a truncated but valid prefix is never an error);
//! * `Err(e)` — the peer broke the framing rules or a bound ([`FrameError`]).
//!
//! Every decoder keeps its place between calls, so feeding one byte at a time costs a
//! small constant factor over feeding large chunks, and every decoder has a bound
//! (maximum line or frame length) checked before the buffer grows past it.
//! An [`Encoder`] writes frames the matching decoder reads back.
//!
//! In scope: the framing formats ([`line`](mod@line), [`length`], [`netstring`]) and the
//! PROXY protocol header ([`proxy`]). Out of scope:
//! sockets and event loops (this module uses no sockets and no `mio`, only
//! `std::net`'s address types for the PROXY header; the blocking runner, the reactor and the Protocol helpers all call these decoders).
//!
//! ```
//! use bytes::BytesMut;
//! use netkit::frame::{Decoder, LineDecoder};
//!
//! let mut dec = LineDecoder::new(1024);
//! let mut buf = BytesMut::new();
//! buf.extend_from_slice(b"hel");
//! assert_eq!(dec.decode(&mut buf).unwrap(), None); // need more
//! buf.extend_from_slice(b"lo\nwor");
//! assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"hello"[..]));
//! assert_eq!(dec.decode(&mut buf).unwrap(), None);
//! assert_eq!(&buf[..], b"wor");
//! ```

pub mod length;
pub mod line;
pub mod netstring;
pub mod proxy;

pub use length::{LengthDecoder, LengthEncoder, Prefix};
pub use line::{Delimiter, LineDecoder, LineEncoder, Overflow};
pub use netstring::{NetstringDecoder, NetstringEncoder};

use bytes::BytesMut;

/// The most a decoder reserves ahead for a frame whose length it has read (within
/// the maximum); a larger frame's buffer grows as its bytes arrive.
pub(crate) const RESERVE_AHEAD: usize = 1 << 20;

/// Why a decoder or encoder refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A line (not counting its delimiter) is longer than the maximum; reported once
    /// per over-long line.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The maximum line length.
        max: usize,
    },
    /// A frame announced (or an item to encode) is longer than the maximum.
    #[error("frame of {len} bytes is longer than the maximum of {max} bytes")]
    FrameTooLong {
        /// The announced or offered length.
        len: u64,
        /// The maximum frame length.
        max: u64,
    },
    /// A netstring's length is not a decimal number: a non-digit, a leading zero,
    /// no digits, or more digits than the maximum length needs.
    #[error("bad netstring length: {0}")]
    BadNetstringLength(&'static str),
    /// A netstring's payload is not followed by `,`.
    #[error("netstring payload not followed by ','")]
    MissingComma,
    /// An item to encode as a line contains the delimiter.
    #[error("line to encode contains the delimiter")]
    DelimiterInLine,
    /// A delimiter was empty.
    #[error("line delimiter is empty")]
    EmptyDelimiter,
    /// The stream ended in the middle of a frame ([`Decoder::decode_eof`]).
    #[error("stream ended inside a frame ({remaining} bytes left over)")]
    Truncated {
        /// Bytes left in the buffer.
        remaining: usize,
    },
    /// The decoder reported an error earlier and stopped (the stream cannot be
    /// resynchronised, or the caller chose [`Overflow::Stop`]).
    #[error("decoder stopped after an earlier error")]
    Stopped,
}

/// Splits whole frames off the front of a buffer of received bytes.
pub trait Decoder {
    /// What one decoded frame is.
    type Frame;

    /// Takes the next whole frame off the front of `src`, if there is one.
    ///
    /// Returns `Ok(None)` when `src` holds only part of a frame; append more bytes and
    /// call again. The decoder remembers how far it has scanned, so calling again after
    /// appending does not rescan old bytes.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Frame>, FrameError>;

    /// Like [`decode`](Decoder::decode), once the stream has ended: bytes that can never
    /// become a whole frame are an error ([`FrameError::Truncated`]) unless the format
    /// says otherwise (an unterminated last line is a line).
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                remaining: src.len(),
            }),
        }
    }
}

/// Writes one item as a frame the matching [`Decoder`] reads back.
pub trait Encoder {
    /// Appends `item`, framed, to `dst`. On error nothing is appended.
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError>;
}

#[cfg(test)]
pub(crate) mod tests_util {
    //! Helpers to feed inputs at every split point.
    use super::{Decoder, FrameError};
    use bytes::{Bytes, BytesMut};

    /// One decode outcome, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Out {
        Frame(Vec<u8>),
        Err(FrameError),
    }

    /// Feeds `chunks` one after another, decoding everything possible after each,
    /// and stopping at the first `Stopped`. Returns outcomes and the leftover buffer.
    pub fn feed<D>(dec: &mut D, chunks: &[&[u8]]) -> (Vec<Out>, Vec<u8>)
    where
        D: Decoder<Frame = Bytes>,
    {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            for _ in 0..10_000 {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => out.push(Out::Frame(f.to_vec())),
                    Ok(None) => break,
                    Err(FrameError::Stopped) => return (out, buf.to_vec()),
                    Err(e) => out.push(Out::Err(e)),
                }
            }
        }
        (out, buf.to_vec())
    }

    /// Every way to cut `input` into two and three pieces, plus one byte at a time.
    pub fn splits(input: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut v = vec![vec![input]];
        for i in 0..=input.len() {
            v.push(vec![&input[..i], &input[i..]]);
            for j in i..=input.len() {
                v.push(vec![&input[..i], &input[i..j], &input[j..]]);
            }
        }
        v.push(input.chunks(1).collect());
        v
    }
}
