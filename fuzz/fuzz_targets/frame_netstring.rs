//! NetstringDecoder: a maximum from the first bytes, a stream from the rest.
//! Never panics, no frame exceeds the maximum, chunking never changes the
//! outcomes, and frames re-encode to the bytes they came from.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use netkit::frame::{Encoder, NetstringDecoder, NetstringEncoder};

#[path = "common.rs"]
mod common;
use common::Out;

fuzz_target!(|data: &[u8]| {
    let [max_hi, max_lo, rest @ ..] = data else {
        return;
    };
    if rest.len() < 4 {
        return;
    }
    let (sizes, stream) = rest.split_at(4);
    let max = usize::from(u16::from_be_bytes([*max_hi, *max_lo]));
    let whole = common::feed(&mut NetstringDecoder::new(max), &[stream], max);
    let split = common::feed(
        &mut NetstringDecoder::new(max),
        &common::chunks(stream, sizes),
        max,
    );
    assert_eq!(whole, split);
    let mut enc = NetstringEncoder::new(max);
    let mut again = BytesMut::new();
    for o in &whole {
        match o {
            Out::Frame(f) => enc.encode(f, &mut again).expect("decoded frame encodes"),
            Out::Err(_) => break,
        }
    }
    assert!(stream.starts_with(&again));
});
