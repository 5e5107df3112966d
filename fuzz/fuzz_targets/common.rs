//! Shared by the frame fuzz targets: feed a decoder the same bytes whole and in
//! fuzzer-chosen chunks, collecting every outcome, so the targets can check that
//! chunking never changes what is decoded and that no decoder panics.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use netkit::frame::{Decoder, FrameError};

/// One decode outcome, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Frame(Vec<u8>),
    Err(FrameError),
}

/// Cuts `data` into chunks whose sizes come from `sizes` (cycled; 0 means 1).
pub fn chunks<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(64)
            .max(1) as usize;
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}

/// Feeds `chunks` one after another, decoding all it can after each, then
/// `decode_eof`; stops at `Stopped`. Every frame is checked against `max`.
pub fn feed<D: Decoder<Frame = Bytes>>(dec: &mut D, chunks: &[&[u8]], max: usize) -> Vec<Out> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(f.len() <= max, "frame of {} over max {max}", f.len());
                    out.push(Out::Frame(f.to_vec()));
                }
                Ok(None) => break,
                Err(FrameError::Stopped) => return out,
                Err(e) => out.push(Out::Err(e)),
            }
            assert!(out.len() <= 4 * 65536, "decoder does not advance");
        }
    }
    for _ in 0..65536 {
        match dec.decode_eof(&mut buf) {
            Ok(Some(f)) => out.push(Out::Frame(f.to_vec())),
            Ok(None) => break,
            Err(FrameError::Stopped) => break,
            Err(e) => {
                out.push(Out::Err(e));
                break;
            }
        }
    }
    out
}
