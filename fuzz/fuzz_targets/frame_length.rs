//! LengthDecoder: a prefix width and a maximum from the first bytes, a stream
//! from the rest. Never panics, no frame exceeds the maximum, chunking never
//! changes the outcomes, and frames re-encode to the bytes they came from.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use netkit::frame::{Encoder, LengthDecoder, LengthEncoder, Prefix};

#[path = "common.rs"]
mod common;
use common::Out;

fuzz_target!(|data: &[u8]| {
    let [cfg, max_hi, max_lo, rest @ ..] = data else {
        return;
    };
    if rest.len() < 4 {
        return;
    }
    let (sizes, stream) = rest.split_at(4);
    let prefix = match cfg % 3 {
        0 => Prefix::U8,
        1 => Prefix::U16,
        _ => Prefix::U32,
    };
    let max = usize::from(u16::from_be_bytes([*max_hi, *max_lo]));
    let whole = common::feed(&mut LengthDecoder::new(prefix, max), &[stream], max);
    let split = common::feed(
        &mut LengthDecoder::new(prefix, max),
        &common::chunks(stream, sizes),
        max,
    );
    assert_eq!(whole, split);
    // The frames decoded before any error re-encode to a prefix of the stream.
    let mut enc = LengthEncoder::new(prefix, max);
    let mut again = BytesMut::new();
    for o in &whole {
        match o {
            Out::Frame(f) => enc.encode(f, &mut again).expect("decoded frame encodes"),
            Out::Err(_) => break,
        }
    }
    assert!(stream.starts_with(&again));
});
