//! The bytes a connection sends, and so expects back.
//!
//! Each connection sends one endless pseudo-random byte stream seeded by its id;
//! message `seq` is the stream's bytes `[seq * size, (seq + 1) * size)`. Message
//! contents therefore depend on (connection id, message seq): an echo that comes back
//! from another connection, out of order, stale or replayed differs from what is
//! expected, and a plain `==` on slices (memcmp) finds it.
//!
//! The stream repeats with a period of a few thousand bytes (a prime that does not
//! divide the message size), so one preallocated buffer of `period + window` bytes
//! serves every message: any run of up to `window` bytes starting anywhere in the
//! stream is one contiguous slice. The only thing this cannot catch is an echo
//! displaced by an exact multiple of the period (thousands of messages), which no
//! plausible server bug produces. Nothing here allocates after construction.

/// Candidate periods: primes, so two messages of the same connection coincide only
/// when they are a multiple of the period apart; the first one that does not divide
/// the message size is used (their product exceeds the largest allowed size).
const PERIODS: [usize; 3] = [4093, 4091, 4099];

/// One connection's send (and expected echo) byte stream.
#[derive(Debug)]
pub struct Pattern {
    /// The period's bytes followed by the first `window` bytes again.
    buf: Box<[u8]>,
    /// Length of the repeating unit.
    period: usize,
    /// The longest slice [`Pattern::at`] returns.
    window: usize,
}

impl Pattern {
    /// The longest period, for memory estimates.
    pub const MAX_PERIOD: usize = 4099;

    /// Builds the stream of connection `id` for messages of `size` bytes, able to hand
    /// out slices of up to `window` bytes.
    pub fn new(id: u64, size: u64, window: usize) -> Pattern {
        let period = PERIODS
            .iter()
            .copied()
            .find(|&p| size % p as u64 != 0)
            .unwrap_or(PERIODS[0]);
        let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x6E65_746B_6974_2062;
        let mut buf = vec![0u8; period + window];
        for chunk in buf[..period].chunks_mut(8) {
            let word = splitmix64(&mut state).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        let (head, tail) = buf.split_at_mut(period);
        for (i, b) in tail.iter_mut().enumerate() {
            *b = head[i % period];
        }
        Pattern {
            buf: buf.into_boxed_slice(),
            period,
            window,
        }
    }

    /// The stream's bytes from position `pos`, `len` of them, at most the window.
    #[inline]
    pub fn at(&self, pos: u64, len: usize) -> &[u8] {
        let start = (pos % self.period as u64) as usize;
        let len = len.min(self.window);
        &self.buf[start..start + len]
    }
}

/// One step of splitmix64, a small, well-mixed generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream byte at `pos`, computed from scratch.
    fn byte(p: &Pattern, pos: u64) -> u8 {
        p.buf[(pos % p.period as u64) as usize]
    }

    #[test]
    fn slices_are_the_stream() {
        let p = Pattern::new(7, 64, 256);
        for pos in [0u64, 1, 4000, 4092, 4093, 10_000, u64::MAX - 300] {
            let s = p.at(pos, 256);
            assert_eq!(s.len(), 256);
            for (i, &b) in s.iter().enumerate() {
                assert_eq!(b, byte(&p, pos + i as u64));
            }
        }
        assert_eq!(p.at(5, 10_000).len(), 256, "capped at the window");
    }

    #[test]
    fn messages_differ_by_seq_and_connection() {
        let size = 64u64;
        let a = Pattern::new(1, size, size as usize);
        let b = Pattern::new(2, size, size as usize);
        for seq in 0..5000u64 {
            let m = a.at(seq * size, size as usize);
            assert_ne!(
                m,
                a.at((seq + 1) * size, size as usize),
                "seq {seq} vs next"
            );
            assert_ne!(
                m,
                b.at(seq * size, size as usize),
                "seq {seq} across connections"
            );
        }
    }

    #[test]
    fn period_never_divides_the_size() {
        for size in [4093u64, 4093 * 4091, 1, 1 << 30] {
            let p = Pattern::new(0, size, 16);
            assert_ne!(size % p.period as u64, 0, "size {size}");
        }
        assert_eq!(PERIODS.iter().max(), Some(&Pattern::MAX_PERIOD));
    }
}
