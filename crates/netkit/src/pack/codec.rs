//! Reading and writing compiled items: integers with range checks, floats (`e f d`),
//! `?`, `c`, `s` and `p`, with CPython's acceptance rules for each [`Value`].
//!
//! Callers pass a record slice whose length has already been checked against the
//! layout's size, so no function here can index out of bounds on valid layouts; each
//! access still goes through `get` so a bug becomes an error, not a panic. Offsets
//! and buffer-size rules live in `mod.rs`, format parsing in `format.rs`.

use super::format::{Item, Kind, Layout, Order};
use super::half::{f64_to_half, half_to_f64};
use super::{PackError, Value};

/// Writes `values` into `rec`, which starts with the record (its first
/// `layout.size` bytes). Zeroes the record first, then writes items in order, as
/// CPython does: on error the bytes written so far stay written.
///
/// A `0p` item writes its length byte `0xff` at its own offset when `rec` extends
/// that far, exactly as CPython's packer does (later items may overwrite it).
pub(crate) fn pack_record(
    layout: &Layout,
    rec: &mut [u8],
    values: &[Value],
) -> Result<(), PackError> {
    if values.len() != layout.values {
        return Err(PackError::WrongCount {
            expected: layout.values,
            got: values.len(),
        });
    }
    if let Some(head) = rec.get_mut(..layout.size) {
        head.fill(0);
    }
    let mut values = values.iter().enumerate();
    for item in &layout.items {
        for k in 0..item.values() {
            let Some((index, value)) = values.next() else {
                return Err(PackError::WrongCount {
                    expected: layout.values,
                    got: index_hint(layout),
                });
            };
            let at = item.offset + k * item.size;
            pack_one(layout, item, rec, at, index, value)?;
        }
    }
    Ok(())
}

/// Used only if the layout's value count disagrees with its items (a bug).
fn index_hint(layout: &Layout) -> usize {
    layout.items.iter().map(Item::values).sum()
}

fn slot(rec: &mut [u8], at: usize, len: usize) -> Result<&mut [u8], PackError> {
    rec.get_mut(at..at.saturating_add(len))
        .ok_or(PackError::Alloc {
            size: at.saturating_add(len),
        })
}

fn pack_one(
    layout: &Layout,
    item: &Item,
    rec: &mut [u8],
    at: usize,
    index: usize,
    value: &Value,
) -> Result<(), PackError> {
    let code = char::from(item.code);
    match item.kind {
        Kind::Signed | Kind::Unsigned | Kind::Ptr => {
            let v = value
                .as_int()
                .ok_or(PackError::NotAnInteger { index, code })?;
            let (min, max) = int_range(item.kind, item.size);
            if v < min || v > max {
                return Err(PackError::OutOfRange {
                    index,
                    code,
                    min,
                    max,
                });
            }
            write_int(slot(rec, at, item.size)?, v, layout.order);
        }
        Kind::Bool => {
            let b = slot(rec, at, 1)?;
            b.fill(u8::from(value.is_truthy()));
        }
        Kind::Char => match value {
            Value::Bytes(b) if b.len() == 1 => slot(rec, at, 1)?.copy_from_slice(b),
            _ => return Err(PackError::CharLength { index }),
        },
        Kind::Half | Kind::Float | Kind::Double => {
            let x = match value {
                Value::Bytes(_) => return Err(PackError::NotAFloat { index, code }),
                v => v.as_float().unwrap_or(0.0),
            };
            let dst = slot(rec, at, item.size)?;
            match item.kind {
                Kind::Half => {
                    let h = f64_to_half(x).ok_or(PackError::FloatTooLarge { index, code })?;
                    dst.copy_from_slice(&order_bytes(
                        h.to_le_bytes(),
                        h.to_be_bytes(),
                        layout.order,
                    ));
                }
                Kind::Float => {
                    let y = x as f32;
                    if y.is_infinite() && x.is_finite() && !layout.native {
                        return Err(PackError::FloatTooLarge { index, code });
                    }
                    dst.copy_from_slice(&order_bytes(
                        y.to_le_bytes(),
                        y.to_be_bytes(),
                        layout.order,
                    ));
                }
                _ => {
                    dst.copy_from_slice(&order_bytes(
                        x.to_le_bytes(),
                        x.to_be_bytes(),
                        layout.order,
                    ));
                }
            }
        }
        Kind::Bytes => {
            let src = value
                .as_bytes()
                .ok_or(PackError::NotBytes { index, code })?;
            let n = src.len().min(item.count);
            slot(rec, at, n)?.copy_from_slice(src.get(..n).unwrap_or_default());
        }
        Kind::Pascal => {
            let src = value
                .as_bytes()
                .ok_or(PackError::NotBytes { index, code })?;
            match item.count.checked_sub(1) {
                None => {
                    // CPython stores (unsigned char)-1 at the item's offset.
                    if let Some(b) = rec.get_mut(at) {
                        *b = 0xff;
                    }
                }
                Some(room) => {
                    let n = src.len().min(room);
                    slot(rec, at + 1, n)?.copy_from_slice(src.get(..n).unwrap_or_default());
                    slot(rec, at, 1)?.fill(n.min(255) as u8);
                }
            }
        }
    }
    Ok(())
}

fn order_bytes<const N: usize>(le: [u8; N], be: [u8; N], order: Order) -> [u8; N] {
    match order {
        Order::Little => le,
        Order::Big => be,
    }
}

/// The range an integer code accepts.
pub(crate) fn int_range(kind: Kind, size: usize) -> (i128, i128) {
    let bits = (size * 8).min(64) as u32;
    match kind {
        Kind::Signed => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
        Kind::Ptr => (-(1i128 << (bits - 1)), (1i128 << bits) - 1),
        _ => (0, (1i128 << bits) - 1),
    }
}

fn write_int(dst: &mut [u8], v: i128, order: Order) {
    let n = dst.len().min(16);
    match order {
        Order::Little => {
            let b = v.to_le_bytes();
            dst.copy_from_slice(b.get(..n).unwrap_or_default());
        }
        Order::Big => {
            let b = v.to_be_bytes();
            dst.copy_from_slice(b.get(16 - n..).unwrap_or_default());
        }
    }
}

/// Reads an integer of `src.len()` bytes, sign-extending when `signed`.
pub(crate) fn read_int(src: &[u8], signed: bool, order: Order) -> i128 {
    let mut raw: u128 = 0;
    match order {
        Order::Little => {
            for &b in src.iter().rev() {
                raw = (raw << 8) | u128::from(b);
            }
        }
        Order::Big => {
            for &b in src {
                raw = (raw << 8) | u128::from(b);
            }
        }
    }
    let bits = (src.len() * 8) as u32;
    if signed && bits > 0 && bits < 128 {
        let shift = 128 - bits;
        ((raw << shift) as i128) >> shift
    } else {
        raw as i128
    }
}

/// Unpacks the record `rec` (exactly `layout.size` bytes) into `out`.
pub(crate) fn unpack_record(
    layout: &Layout,
    rec: &[u8],
    out: &mut Vec<Value>,
) -> Result<(), PackError> {
    for item in &layout.items {
        unpack_item(layout, item, rec, out)?;
    }
    Ok(())
}

fn get(rec: &[u8], at: usize, len: usize) -> Result<&[u8], PackError> {
    rec.get(at..at.saturating_add(len))
        .ok_or(PackError::UnpackSize {
            expected: at.saturating_add(len),
            got: rec.len(),
        })
}

fn unpack_item(
    layout: &Layout,
    item: &Item,
    rec: &[u8],
    out: &mut Vec<Value>,
) -> Result<(), PackError> {
    let order = layout.order;
    match item.kind {
        Kind::Bytes => out.push(Value::Bytes(get(rec, item.offset, item.count)?.to_vec())),
        Kind::Pascal => {
            let room = item
                .count
                .checked_sub(1)
                .ok_or(PackError::ZeroPascal { pos: item.pos })?;
            let len = get(rec, item.offset, 1)?.first().copied().unwrap_or(0);
            let n = usize::from(len).min(room);
            out.push(Value::Bytes(get(rec, item.offset + 1, n)?.to_vec()));
        }
        _ => {
            let all = get(rec, item.offset, item.count.saturating_mul(item.size))?;
            for src in all.chunks_exact(item.size) {
                out.push(decode_scalar(item.kind, src, order));
            }
        }
    }
    Ok(())
}

fn decode_scalar(kind: Kind, src: &[u8], order: Order) -> Value {
    let mut a2 = [0u8; 2];
    let mut a4 = [0u8; 4];
    let mut a8 = [0u8; 8];
    match kind {
        Kind::Signed => Value::Int(read_int(src, true, order)),
        Kind::Unsigned | Kind::Ptr => Value::Int(read_int(src, false, order)),
        Kind::Bool => Value::Bool(src.iter().any(|&b| b != 0)),
        Kind::Char => Value::Bytes(src.to_vec()),
        Kind::Half => {
            a2.copy_from_slice(src.get(..2).unwrap_or(&[0, 0]));
            let h = match order {
                Order::Little => u16::from_le_bytes(a2),
                Order::Big => u16::from_be_bytes(a2),
            };
            Value::Float(half_to_f64(h))
        }
        Kind::Float => {
            a4.copy_from_slice(src.get(..4).unwrap_or(&[0; 4]));
            let f = match order {
                Order::Little => f32::from_le_bytes(a4),
                Order::Big => f32::from_be_bytes(a4),
            };
            Value::Float(f64::from(f))
        }
        Kind::Double | Kind::Bytes | Kind::Pascal => {
            a8.copy_from_slice(src.get(..8).unwrap_or(&[0; 8]));
            Value::Float(match order {
                Order::Little => f64::from_le_bytes(a8),
                Order::Big => f64::from_be_bytes(a8),
            })
        }
    }
}

/// One step of the integer fast path: how to read one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntOp {
    U8,
    I8,
    Bool,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
}

/// The integer-only reader for an item, or `None` if the item is not an integer.
pub(crate) fn int_op(item: &Item) -> Option<IntOp> {
    use IntOp::*;
    let signed = item.kind == Kind::Signed;
    Some(match (item.kind, item.size) {
        (Kind::Bool, 1) => Bool,
        (Kind::Signed | Kind::Unsigned | Kind::Ptr, 1) => [U8, I8][usize::from(signed)],
        (Kind::Signed | Kind::Unsigned | Kind::Ptr, 2) => [U16, I16][usize::from(signed)],
        (Kind::Signed | Kind::Unsigned | Kind::Ptr, 4) => [U32, I32][usize::from(signed)],
        (Kind::Signed | Kind::Unsigned | Kind::Ptr, 8) => [U64, I64][usize::from(signed)],
        _ => return None,
    })
}

/// Reads one integer with `op` at `at`; `None` if out of bounds.
#[inline(always)]
pub(crate) fn read_op(rec: &[u8], at: usize, op: IntOp, order: Order) -> Option<i128> {
    macro_rules! rd {
        ($t:ty, $n:expr) => {{
            let a: [u8; $n] = rec.get(at..at + $n)?.try_into().ok()?;
            match order {
                Order::Little => <$t>::from_le_bytes(a),
                Order::Big => <$t>::from_be_bytes(a),
            }
        }};
    }
    Some(match op {
        IntOp::U8 => i128::from(*rec.get(at)?),
        IntOp::I8 => i128::from(*rec.get(at)? as i8),
        IntOp::Bool => i128::from(*rec.get(at)? != 0),
        IntOp::U16 => i128::from(rd!(u16, 2)),
        IntOp::I16 => i128::from(rd!(i16, 2)),
        IntOp::U32 => i128::from(rd!(u32, 4)),
        IntOp::I32 => i128::from(rd!(i32, 4)),
        IntOp::U64 => i128::from(rd!(u64, 8)),
        IntOp::I64 => i128::from(rd!(i64, 8)),
    })
}
