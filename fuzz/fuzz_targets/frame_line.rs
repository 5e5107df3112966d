//! LineDecoder: a delimiter, a maximum and an overflow policy from the first
//! bytes, a stream from the rest. Decoding never panics, no line exceeds the
//! maximum, and chunking the stream never changes the outcomes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::frame::{LineDecoder, Overflow};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let [cfg, max, dlen, rest @ ..] = data else {
        return;
    };
    let dlen = usize::from(dlen % 3) + 1;
    if rest.len() < dlen + 4 {
        return;
    }
    let (delim, rest) = rest.split_at(dlen);
    let (sizes, stream) = rest.split_at(4);
    let max = usize::from(*max);
    let make = || {
        let d = LineDecoder::new(max)
            .try_with_delimiter(delim)
            .expect("non-empty delimiter");
        if cfg & 1 == 0 {
            d.with_overflow(Overflow::Resync)
        } else {
            d.with_overflow(Overflow::Stop)
        }
    };
    let whole = common::feed(&mut make(), &[stream], max);
    let split = common::feed(&mut make(), &common::chunks(stream, sizes), max);
    assert_eq!(whole, split);
});
