//! IEEE 754 binary16 (`e` format) conversion to and from `f64`, as CPython's
//! `PyFloat_Pack2` / `PyFloat_Unpack2` do it.
//!
//! Packing rounds directly from the `f64` to nearest, ties to even (never through
//! `f32`, which would round twice), keeps the sign of zeros and NaNs, writes every
//! NaN as the quiet NaN `0x7e00` with its sign, and reports finite values that round
//! past 65504 as overflow. Byte order is the caller's business.

/// Converts `x` to binary16 bits; `None` when a finite `x` is too large.
pub(crate) fn f64_to_half(x: f64) -> Option<u16> {
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    if x == 0.0 {
        return Some(sign);
    }
    if x.is_infinite() {
        return Some(sign | 0x7c00);
    }
    if x.is_nan() {
        return Some(sign | 0x7e00);
    }
    let bits = x.abs().to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // f64 subnormal: far below half the smallest half subnormal.
        return Some(sign);
    }
    // x = f * 2**e with f in [1, 2).
    let mut e = biased - 1023;
    let mut f = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if e >= 16 {
        return None;
    } else if e < -25 {
        // |x| < 2**-25: rounds to zero.
        f = 0.0;
        e = 0;
    } else if e < -14 {
        // Gradual underflow into the subnormal range; the scaling is exact.
        f *= 2f64.powi(14 + e);
        e = 0;
    } else {
        e += 15;
        f -= 1.0;
    }
    f *= 1024.0;
    // `f` is below 1024 here, so the truncation is exact.
    let mut mant = f as u16;
    let rest = f - f64::from(mant);
    if rest > 0.5 || (rest == 0.5 && mant % 2 == 1) {
        mant += 1;
        if mant == 1024 {
            mant = 0;
            e += 1;
            if e == 31 {
                return None;
            }
        }
    }
    Some(sign | ((e as u16) << 10) | mant)
}

/// Converts binary16 bits to `f64` (exact; NaNs keep only their sign).
pub(crate) fn half_to_f64(h: u16) -> f64 {
    let negative = h & 0x8000 != 0;
    let e = i32::from((h >> 10) & 0x1f);
    let m = f64::from(h & 0x3ff);
    let magnitude = match e {
        0 => m * 2f64.powi(-24),
        0x1f if m == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        _ => (1.0 + m / 1024.0) * 2f64.powi(e - 15),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_matches_cpython() {
        // (value, struct.pack('<e', value) as a little-endian u16), from python3.
        let cases: &[(f64, u16)] = &[
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (65504.0, 0x7bff),
            (65519.99, 0x7bff),
            (5.960464477539063e-08, 0x0001),
            (2.9802322387695312e-08, 0x0000),
            (2.980232536792755e-08, 0x0001),
            (4.470348358154297e-08, 0x0001),
            (6.103515625e-05, 0x0400),
            (6.1005353927612305e-05, 0x0400),
            (0.1, 0x2e66),
            (1.0 / 3.0, 0x3555),
            (1e-08, 0x0000),
            (1.00048828125, 0x3c00),
            (1.00146484375, 0x3c02),
            (1.0009765634313226, 0x3c01),
            (-1.4901161193847656e-08, 0x8000),
            (f64::INFINITY, 0x7c00),
            (f64::NEG_INFINITY, 0xfc00),
            (f64::NAN, 0x7e00),
            (-f64::NAN, 0xfe00),
            (5e-324, 0x0000),
        ];
        for (x, want) in cases {
            assert_eq!(f64_to_half(*x), Some(*want), "packing {x:?}");
        }
    }

    #[test]
    fn overflow() {
        assert_eq!(f64_to_half(65520.0), None);
        assert_eq!(f64_to_half(-1e10), None);
        assert_eq!(f64_to_half(f64::MAX), None);
    }

    #[test]
    fn every_half_round_trips() {
        for h in 0..=u16::MAX {
            let x = half_to_f64(h);
            let back = f64_to_half(x).unwrap();
            if x.is_nan() {
                assert_eq!(back & 0xfc00 | 0x0200, (h & 0xfc00) | 0x0200);
                assert_eq!(back & 0x3ff, 0x200);
            } else {
                assert_eq!(back, h, "{h:#06x} -> {x}");
            }
        }
    }

    #[test]
    fn unpack_values() {
        assert_eq!(half_to_f64(0x7bff), 65504.0);
        assert_eq!(half_to_f64(0x0001), 5.960464477539063e-08);
        assert!(half_to_f64(0x8000).is_sign_negative());
        assert!(half_to_f64(0xfe01).is_nan() && half_to_f64(0xfe01).is_sign_negative());
        assert_eq!(half_to_f64(0xfc00), f64::NEG_INFINITY);
    }
}
