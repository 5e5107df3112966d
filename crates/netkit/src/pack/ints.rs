//! The allocation-free integer plan behind
//! [`Struct::unpack_ints_from`](super::Struct::unpack_ints_from).
//!
//! A format made only of integer codes (and `?`, `x`) compiles to one step per
//! item; a small record (at most 64 bytes, no `?`) also to a flat list with one
//! entry per value, read by a single loop of 8-byte loads and shifts from a 72-byte
//! window. Near the end of the buffer, a field is loaded from the 8 bytes that end
//! with it instead. The general `Value` decoding is in `codec.rs`.

use super::codec::{self, IntRead};
use super::format::{Layout, Order};
use super::PackError;

/// How [`Struct::unpack_ints_from`](super::Struct::unpack_ints_from) reads a record.
#[derive(Debug, Clone)]
pub(crate) struct IntPlan {
    steps: Box<[IntStep]>,
    /// The same plan with one entry per value, for small formats without `?`.
    flat: Option<FlatPlan>,
    big: bool,
}

impl IntPlan {
    /// The plan for `layout`, or [`PackError::NotIntegerFormat`] naming the first
    /// code that does not unpack to an integer.
    pub fn new(layout: &Layout) -> Result<IntPlan, PackError> {
        let steps: Box<[IntStep]> = layout
            .items
            .iter()
            .map(|item| match IntRead::for_item(item, layout.order) {
                Some(read) => Ok(IntStep {
                    read,
                    offset: item.offset,
                    count: item.count,
                }),
                None => Err(PackError::NotIntegerFormat {
                    pos: item.pos,
                    code: char::from(item.code),
                }),
            })
            .collect::<Result<_, _>>()?;
        let flat = FlatPlan::new(&steps);
        Ok(IntPlan {
            steps,
            flat,
            big: layout.order == Order::Big,
        })
    }

    /// Reads the record at `buf[start..]` into `out`; `None` if the
    /// record or `out` is too short (callers check both first).
    #[inline]
    pub fn read(&self, buf: &[u8], start: usize, out: &mut [i128]) -> Option<()> {
        let Some(flat) = &self.flat else {
            return if self.big {
                read_steps::<true>(&self.steps, buf, start, out)
            } else {
                read_steps::<false>(&self.steps, buf, start, out)
            };
        };
        // 8-byte loads at offsets below 64 stay inside a 72-byte window, which the
        // compiler can see, so that loop has no bounds checks. A record nearer the
        // end of `buf` is read with loads that end at each field instead.
        match buf.get(start..).and_then(|r| r.first_chunk::<WINDOW>()) {
            Some(window) if self.big => flat.read::<true>(window, out),
            Some(window) => flat.read::<false>(window, out),
            None if self.big => flat.read_near_end::<true>(buf, start, out),
            None => flat.read_near_end::<false>(buf, start, out),
        }
    }
}

/// One item of the integer-only plan: `count` values read with `read` from
/// `offset`, `read.width` bytes apart.
#[derive(Debug, Clone, Copy)]
struct IntStep {
    read: IntRead,
    offset: usize,
    count: usize,
}

/// One entry per value: reading the whole record is one loop of loads and shifts.
#[derive(Debug, Clone)]
struct FlatPlan {
    fields: Box<[FlatField]>,
}

/// One value of a [`FlatPlan`].
#[derive(Debug, Clone, Copy)]
struct FlatField {
    /// Offset in the record, below [`FLAT_MAX_SIZE`].
    offset: usize,
    /// `64 - 8 * width`.
    shift: u32,
    /// The sign bit for signed codes, else 0.
    sign: u64,
}

/// Records longer than this use the per-item plan only (a power of two).
const FLAT_MAX_SIZE: usize = 64;

/// The bytes a flat read may touch: every field's 8-byte load.
const WINDOW: usize = FLAT_MAX_SIZE + 8;

impl FlatPlan {
    fn new(steps: &[IntStep]) -> Option<FlatPlan> {
        let mut fields = Vec::new();
        for step in steps {
            let r = step.read;
            if r.extend == codec::Extend::Bool || step.offset + step.count * r.width > FLAT_MAX_SIZE
            {
                return None;
            }
            let bits = 8 * r.width as u32;
            for k in 0..step.count {
                fields.push(FlatField {
                    offset: step.offset + k * r.width,
                    shift: 64 - bits,
                    sign: if r.extend == codec::Extend::Signed {
                        1 << (bits - 1)
                    } else {
                        0
                    },
                });
            }
        }
        Some(FlatPlan {
            fields: fields.into_boxed_slice(),
        })
    }

    /// Reads every field of the record at the start of `window`.
    #[inline(always)]
    fn read<const BIG: bool>(&self, window: &[u8; WINDOW], out: &mut [i128]) -> Option<()> {
        for (f, slot) in self.fields.iter().zip(out) {
            // Offsets are below FLAT_MAX_SIZE; the mask lets the compiler see it.
            let at = f.offset & (FLAT_MAX_SIZE - 1);
            let w = window.get(at..)?.first_chunk::<8>()?;
            let u = if BIG {
                u64::from_be_bytes(*w) >> f.shift
            } else {
                (u64::from_le_bytes(*w) << f.shift) >> f.shift
            };
            let sign = i128::from(f.sign);
            *slot = (i128::from(u) ^ sign) - sign;
        }
        Some(())
    }
}

impl FlatPlan {
    /// Reads every field of the record at `buf[start..]`, which may end less than
    /// 8 bytes after a field: such a field is loaded from the 8 bytes that end
    /// with it (or, in a buffer under 8 bytes, copied).
    #[inline(always)]
    fn read_near_end<const BIG: bool>(
        &self,
        buf: &[u8],
        start: usize,
        out: &mut [i128],
    ) -> Option<()> {
        for (f, slot) in self.fields.iter().zip(out) {
            let s = f.shift;
            let at = start.checked_add(f.offset)?;
            let u = if let Some(w) = buf.get(at..).and_then(|r| r.first_chunk::<8>()) {
                if BIG {
                    u64::from_be_bytes(*w) >> s
                } else {
                    (u64::from_le_bytes(*w) << s) >> s
                }
            } else {
                let end = at.checked_add(8 - (s / 8) as usize)?;
                let head = buf.get(..end)?;
                match head.last_chunk::<8>() {
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
                }
            };
            let sign = i128::from(f.sign);
            *slot = (i128::from(u) ^ sign) - sign;
        }
        Some(())
    }
}

/// Runs the per-item plan on the record at `start`; `None` if a read is out of
/// bounds (not possible once the record was checked to fit).
#[inline(always)]
fn read_steps<const BIG: bool>(
    steps: &[IntStep],
    buf: &[u8],
    start: usize,
    out: &mut [i128],
) -> Option<()> {
    let mut j = 0;
    for step in steps {
        let read = &step.read;
        let width = read.width;
        let mut at = start + step.offset;
        let end = j + step.count;
        let slots = out.get_mut(j..end)?;
        j = end;
        // One loop per extension, so the inner loops have no branch on it.
        match read.extend {
            codec::Extend::Unsigned => {
                for slot in slots {
                    *slot = i128::from(read.bits::<BIG>(buf, at)?);
                    at += width;
                }
            }
            codec::Extend::Signed => {
                for slot in slots {
                    *slot = read.signed(read.bits::<BIG>(buf, at)?);
                    at += width;
                }
            }
            codec::Extend::Bool => {
                for slot in slots {
                    *slot = i128::from(read.bits::<BIG>(buf, at)? != 0);
                    at += width;
                }
            }
        }
    }
    Some(())
}
