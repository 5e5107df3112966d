//! Reading and writing compiled items: integers with range checks, floats (`e f d`),
//! `?`, `c`, `s` and `p`, with CPython's acceptance rules for each [`Value`].
//!
//! Callers pass a record slice whose length has already been checked against the
//! layout's size, so no function here can index out of bounds on valid layouts; each
//! access still goes through `get` so a bug becomes an error, not a panic. Offsets
//! and buffer-size rules live in `mod.rs`, format parsing in `format.rs`.

use super::format::{Item, Kind, Layout, Order};
use super::half::{f64_to_half, half_to_f64};
use super::{PackError, Value, Values};

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
    let slots = layout
        .items
        .iter()
        .flat_map(|item| (0..item.values()).map(move |k| (item, item.offset + k * item.size)));
    for ((item, at), (index, value)) in slots.zip(values.iter().enumerate()) {
        pack_one(layout, item, rec, at, index, value)?;
    }
    Ok(())
}

/// The `len` bytes at `at`. Fails only if `rec` is shorter than the record, which
/// callers rule out before packing.
fn slot(rec: &mut [u8], at: usize, len: usize) -> Result<&mut [u8], PackError> {
    let end = at.saturating_add(len);
    let have = rec.len();
    rec.get_mut(at..end).ok_or(PackError::PackIntoTooSmall {
        required: end as u128,
        size: end,
        offset: 0,
        len: have,
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
            let (min, max) = item.range;
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

/// Writes the low `dst.len()` bytes of `v` (already range-checked) in `order`.
fn write_int(dst: &mut [u8], v: i128, order: Order) {
    macro_rules! put {
        ($t:ty) => {
            dst.copy_from_slice(&match order {
                Order::Little => (v as $t).to_le_bytes(),
                Order::Big => (v as $t).to_be_bytes(),
            })
        };
    }
    // Fixed widths compile to single stores.
    match dst.len() {
        1 => put!(u8),
        2 => put!(u16),
        4 => put!(u32),
        8 => put!(u64),
        n => {
            let n = n.min(16);
            match order {
                Order::Little => dst.copy_from_slice(v.to_le_bytes().get(..n).unwrap_or_default()),
                Order::Big => {
                    dst.copy_from_slice(v.to_be_bytes().get(16 - n..).unwrap_or_default())
                }
            }
        }
    }
}

/// Where unpacked values go: a `Vec<Value>` or a [`Values`].
pub(crate) trait Push {
    /// Appends one value.
    fn push_value(&mut self, v: Value);
}

impl Push for Vec<Value> {
    fn push_value(&mut self, v: Value) {
        self.push(v);
    }
}

impl Push for Values {
    fn push_value(&mut self, v: Value) {
        self.push(v);
    }
}

/// Unpacks the record `rec` (exactly `layout.size` bytes) into `out`.
pub(crate) fn unpack_record<O: Push>(
    layout: &Layout,
    rec: &[u8],
    out: &mut O,
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

fn unpack_item<O: Push>(
    layout: &Layout,
    item: &Item,
    rec: &[u8],
    out: &mut O,
) -> Result<(), PackError> {
    let order = layout.order;
    match item.kind {
        Kind::Bytes => out.push_value(Value::Bytes(get(rec, item.offset, item.count)?.to_vec())),
        Kind::Pascal => {
            let room = item
                .count
                .checked_sub(1)
                .ok_or(PackError::ZeroPascal { pos: item.pos })?;
            let len = get(rec, item.offset, 1)?.first().copied().unwrap_or(0);
            let n = usize::from(len).min(room);
            out.push_value(Value::Bytes(get(rec, item.offset + 1, n)?.to_vec()));
        }
        Kind::Signed | Kind::Unsigned | Kind::Ptr => {
            let read = IntRead::for_item(item, order).ok_or(PackError::UnpackSize {
                expected: layout.size,
                got: rec.len(),
            })?;
            let mut at = item.offset;
            for _ in 0..item.count {
                let v = read.read(rec, at).ok_or(PackError::UnpackSize {
                    expected: layout.size,
                    got: rec.len(),
                })?;
                out.push_value(Value::Int(v));
                at += item.size;
            }
        }
        _ => {
            let all = get(rec, item.offset, item.count.saturating_mul(item.size))?;
            for src in all.chunks_exact(item.size) {
                out.push_value(decode_scalar(item.kind, src, order));
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
        _ => {
            a8.copy_from_slice(src.get(..8).unwrap_or(&[0; 8]));
            Value::Float(match order {
                Order::Little => f64::from_le_bytes(a8),
                Order::Big => f64::from_be_bytes(a8),
            })
        }
    }
}

/// How an integer element's bits become its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extend {
    /// Zero-extend.
    Unsigned,
    /// Sign-extend.
    Signed,
    /// `?`: any nonzero byte is 1.
    Bool,
}

/// How to read one integer element, precomputed so that a read is one 8-byte load
/// and two shifts, with no data-dependent branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntRead {
    /// Element width in bytes (1, 2, 4 or 8).
    pub width: usize,
    /// `64 - 8 * width`: the bits of a `u64` word that are not the element.
    shift: u32,
    /// Zero- or sign-extension.
    pub extend: Extend,
    /// Most significant byte first.
    big: bool,
}

impl IntRead {
    /// The reader for an item, or `None` if the item does not unpack to an integer.
    pub fn for_item(item: &Item, order: Order) -> Option<IntRead> {
        let extend = match item.kind {
            Kind::Signed => Extend::Signed,
            Kind::Unsigned | Kind::Ptr => Extend::Unsigned,
            Kind::Bool => Extend::Bool,
            _ => return None,
        };
        if !matches!(item.size, 1 | 2 | 4 | 8) {
            return None;
        }
        Some(IntRead {
            width: item.size,
            shift: 64 - 8 * item.size as u32,
            extend,
            big: order == Order::Big,
        })
    }

    /// Reads the element at `buf[at..at + width]` in the reader's byte order;
    /// `None` if that is out of bounds.
    #[inline]
    pub fn read(&self, buf: &[u8], at: usize) -> Option<i128> {
        let u = if self.big {
            self.bits::<true>(buf, at)?
        } else {
            self.bits::<false>(buf, at)?
        };
        Some(self.value(u))
    }

    /// The value of the element whose bits (zero-extended) are `u`.
    #[inline(always)]
    pub fn value(&self, u: u64) -> i128 {
        match self.extend {
            Extend::Unsigned => i128::from(u),
            Extend::Signed => self.signed(u),
            Extend::Bool => i128::from(u != 0),
        }
    }

    /// Sign-extends the element bits `u`.
    #[inline(always)]
    pub fn signed(&self, u: u64) -> i128 {
        i128::from(((u << self.shift) as i64) >> self.shift)
    }

    /// The element's bits, zero-extended, with the byte order fixed at compile time.
    ///
    /// Loads the 8 bytes starting at the element when `buf` has them, else the 8
    /// bytes ending with it, else (buffers under 8 bytes) just the element; the
    /// bytes that are not the element are shifted out.
    #[inline(always)]
    pub fn bits<const BIG: bool>(&self, buf: &[u8], at: usize) -> Option<u64> {
        let s = self.shift;
        if let Some(w) = buf.get(at..).and_then(|r| r.first_chunk::<8>()) {
            return Some(if BIG {
                u64::from_be_bytes(*w) >> s
            } else {
                (u64::from_le_bytes(*w) << s) >> s
            });
        }
        let end = at.checked_add(self.width)?;
        let head = buf.get(..end)?;
        Some(match head.last_chunk::<8>() {
            Some(w) if BIG => (u64::from_be_bytes(*w) << s) >> s,
            Some(w) => u64::from_le_bytes(*w) >> s,
            None => {
                let mut w = [0u8; 8];
                let src = head.get(at..)?;
                w.get_mut(..src.len())?.copy_from_slice(src);
                if BIG {
                    u64::from_be_bytes(w) >> s
                } else {
                    u64::from_le_bytes(w)
                }
            }
        })
    }
}
