//! The allocation-free integer plan behind
//! [`Struct::unpack_ints_from`](super::Struct::unpack_ints_from).
//!
//! A format made only of integer codes (and `?`, `x`) compiles to one step per
//! item; a small record (at most 64 bytes, no `?`) also to a flat list with one
//! entry per value, read by a single loop of 8-byte loads and shifts. Records too
//! near the end of the buffer for 8-byte loads are copied to a padded stack buffer
//! first. The general `Value` decoding is in `codec.rs`.

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

    /// Reads the `size`-byte record at `buf[start..]` into `out`; `None` if the
    /// record or `out` is too short (callers check both first).
    #[inline]
    pub fn read(&self, buf: &[u8], start: usize, size: usize, out: &mut [i128]) -> Option<()> {
        let Some(flat) = &self.flat else {
            return if self.big {
                read_steps::<true>(&self.steps, buf, start, out)
            } else {
                read_steps::<false>(&self.steps, buf, start, out)
            };
        };
        let rec = buf.get(start..)?;
        let mut padded: [u8; FLAT_MAX_SIZE + 8];
        let rec = if rec.len() >= flat.reach {
            rec
        } else {
            padded = [0u8; FLAT_MAX_SIZE + 8];
            padded.get_mut(..size)?.copy_from_slice(rec.get(..size)?);
            &padded[..]
        };
        if self.big {
            flat.read::<true>(rec, out)
        } else {
            flat.read::<false>(rec, out)
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

/// One entry per value: reading the whole record is one loop without branches
/// other than bounds checks.
#[derive(Debug, Clone)]
struct FlatPlan {
    fields: Box<[FlatField]>,
    /// Bytes from the record start that 8-byte loads of every field touch.
    reach: usize,
}

/// One value of a [`FlatPlan`].
#[derive(Debug, Clone, Copy)]
struct FlatField {
    offset: usize,
    /// `64 - 8 * width`.
    shift: u32,
    /// The sign bit for signed codes, else 0.
    sign: u64,
}

/// Records longer than this use the per-item plan only.
const FLAT_MAX_SIZE: usize = 64;

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
        let reach = fields.iter().map(|f| f.offset + 8).max().unwrap_or(0);
        Some(FlatPlan {
            fields: fields.into_boxed_slice(),
            reach,
        })
    }

    /// Reads every field of the record at the start of `rec`, which must have
    /// at least `reach` bytes; `None` if it has not.
    #[inline(always)]
    fn read<const BIG: bool>(&self, rec: &[u8], out: &mut [i128]) -> Option<()> {
        for (f, slot) in self.fields.iter().zip(out) {
            let w = rec.get(f.offset..)?.first_chunk::<8>()?;
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
