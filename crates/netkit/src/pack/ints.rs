//! The allocation-free integer plan behind
//! [`Struct::unpack_ints_from`](super::Struct::unpack_ints_from).
//!
//! A format made only of integer codes (and `?`, `x`) compiles to one step per
//! item; a format of at most 16 values without `?` also to a flat list with one
//! entry per value (offset, mask or shift, sign bit), whose reads are one 8-byte
//! load and a mask (little-endian) or byte swap and shift (big-endian) per value.
//! When the record's fields all start within 8, 16, 32 or 64 bytes and the buffer
//! has that many plus 8 bytes from the record start, the loads come from a
//! fixed-size window with no bounds checks, unrolled for up to 8 values. Near the
//! end of the buffer, a field is loaded from the 8 bytes that end with it instead.
//! [`IntPlan::for_each`] runs the same reads over a buffer of records, choosing the
//! unrolled loop once. The general `Value` decoding is in `codec.rs`.

use super::codec::{self, IntRead};
use super::format::{Layout, Order};
use super::{PackError, Value};

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
        let flat = FlatPlan::new(&steps, layout.values, layout.order == Order::Big);
        Ok(IntPlan {
            steps,
            flat,
            big: layout.order == Order::Big,
        })
    }

    /// Reads the record at `buf[start..]` into `out`; `None` if the
    /// record or `out` is too short (callers check both first).
    #[inline(always)]
    pub fn read(&self, buf: &[u8], start: usize, out: &mut [i128]) -> Option<()> {
        if self.flat.is_none() {
            return self.read_by_steps(buf, start, out);
        }
        self.read_flat(buf, start, out)
    }

    /// [`IntPlan::read`] for formats without a flat plan.
    #[inline(never)]
    fn read_by_steps(&self, buf: &[u8], start: usize, out: &mut [i128]) -> Option<()> {
        if self.big {
            read_steps::<true>(&self.steps, buf, start, out)
        } else {
            read_steps::<false>(&self.steps, buf, start, out)
        }
    }

    /// Reads the record at `buf[start..]` into `out` with the flat plan; `None`
    /// if the format has none, or the record or `out` is too short (callers check
    /// both first). Nothing is stored on failure.
    #[inline(always)]
    pub fn read_flat<S: Sink + ?Sized>(&self, buf: &[u8], start: usize, out: &mut S) -> Option<()> {
        let flat = self.flat.as_ref()?;
        // With a window (or `reach` bytes) after the record start every field is
        // one plain 8-byte load; a record nearer the end of `buf` loads each
        // field from the 8 bytes that end with it instead.
        match buf
            .get(start..)
            .and_then(|rec| S::kernel(flat)(flat, rec, out))
        {
            Some(()) => Some(()),
            None => self.read_flat_near_end(flat, buf, start, out),
        }
    }

    /// [`IntPlan::read_flat`] for a record too near the end of `buf` for its
    /// kernel's window.
    #[cold]
    #[inline(never)]
    fn read_flat_near_end<S: Sink + ?Sized>(
        &self,
        flat: &FlatPlan,
        buf: &[u8],
        start: usize,
        out: &mut S,
    ) -> Option<()> {
        let mut vals = [0i128; FLAT_MAX_FIELDS];
        let vals = vals.get_mut(..flat.fields.len())?;
        if self.big {
            flat.read_near_end::<true>(buf, start, vals)?;
        } else {
            flat.read_near_end::<false>(buf, start, vals)?;
        }
        out.put_slice(vals)
    }

    /// Reads value number `index` of the record at `buf[start..]`; `None` if
    /// there is no such value or the record is not inside `buf`.
    pub fn read_one(&self, buf: &[u8], start: usize, index: usize) -> Option<i128> {
        let mut first = 0;
        for step in self.steps.iter() {
            if let Some(k) = index.checked_sub(first).filter(|&k| k < step.count) {
                let at = start
                    .checked_add(step.offset)?
                    .checked_add(k.checked_mul(step.read.width)?)?;
                // The element must lie inside the record, not just inside `buf`.
                buf.get(at..at.checked_add(step.read.width)?)?;
                return step.read.read(buf, at);
            }
            first += step.count;
        }
        None
    }

    /// Whether [`IntPlan::read`] uses the flat per-value plan (at most
    /// [`FLAT_MAX_FIELDS`] values, no `?`).
    pub fn is_flat(&self) -> bool {
        self.flat.is_some()
    }

    /// Calls `f` with the values of each of the `buf.len() / size` records of
    /// `buf`, reusing one array; returns the number of records. `out` is scratch
    /// space for formats without a flat plan and must hold every value.
    #[inline]
    pub fn for_each<F: FnMut(&[i128])>(
        &self,
        buf: &[u8],
        size: usize,
        out: &mut [i128],
        mut f: F,
    ) -> Option<usize> {
        match &self.flat {
            Some(flat) if self.big => Some(flat.each::<true, F>(buf, size, &mut f)),
            Some(flat) => Some(flat.each::<false, F>(buf, size, &mut f)),
            None => {
                let mut n = 0;
                for start in (0..buf.len() / size.max(1)).map(|i| i * size) {
                    self.read(buf, start, out)?;
                    f(out);
                    n += 1;
                }
                Some(n)
            }
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

/// One entry per value, for formats of at most [`FLAT_MAX_FIELDS`] integer values
/// (no `?`): reading a field is one 8-byte load and a mask or shift.
#[derive(Debug, Clone)]
pub(crate) struct FlatPlan {
    fields: Box<[FlatField]>,
    /// Bytes from the record start that every field's 8-byte load stays within:
    /// the largest field offset plus 8.
    reach: usize,
    /// Whether any field is signed.
    signed: bool,
    /// The smallest power of two above every field offset, if at most
    /// [`WINDOW_SPAN`]: a record with `span + 8` bytes after its start is read
    /// from a fixed-size window with no bounds checks.
    span: Option<usize>,
    /// The read specialised for this plan's byte order, signedness, window and
    /// field count, into a caller's `[i128]`.
    ints: Kernel<[i128]>,
    /// The same read, appending `Value`s.
    values: Kernel<Vec<Value>>,
}

/// A read specialised at compile time: the fields of the record at the start of
/// `rec` into `out`; `None` (with nothing stored) when `rec` is shorter than the
/// kernel's window or `reach`, or `out` is too short.
type Kernel<S> = fn(&FlatPlan, &[u8], &mut S) -> Option<()>;

/// One value of a [`FlatPlan`].
#[derive(Debug, Clone, Copy, Default)]
struct FlatField {
    /// Offset in the record.
    offset: u32,
    /// `64 - 8 * width`: big-endian loads shift the other bytes out.
    shift: u32,
    /// The low `8 * width` bits: little-endian loads mask the other bytes out.
    mask: u64,
    /// The sign bit for signed codes, else 0.
    sign: u64,
}

/// Formats with more values than this use the per-item plan only.
pub(crate) const FLAT_MAX_FIELDS: usize = 16;

/// Records whose fields start beyond this use the per-item plan only.
const FLAT_MAX_OFFSET: usize = 1 << 20;

/// The largest window span (see [`FlatPlan::span`]).
const WINDOW_SPAN: usize = 64;

impl FlatPlan {
    fn new(steps: &[IntStep], values: usize, big: bool) -> Option<FlatPlan> {
        if values > FLAT_MAX_FIELDS {
            return None;
        }
        let mut fields = Vec::with_capacity(values);
        for step in steps {
            let r = step.read;
            if r.extend == codec::Extend::Bool {
                return None;
            }
            let bits = 8 * r.width as u32;
            for k in 0..step.count {
                let offset = step.offset + k * r.width;
                if offset > FLAT_MAX_OFFSET {
                    return None;
                }
                fields.push(FlatField {
                    offset: offset as u32,
                    shift: 64 - bits,
                    mask: u64::MAX >> (64 - bits),
                    sign: if r.extend == codec::Extend::Signed {
                        1 << (bits - 1)
                    } else {
                        0
                    },
                });
            }
        }
        let last = fields.iter().map(|f| f.offset as usize).max().unwrap_or(0);
        let span = [8, 16, 32, WINDOW_SPAN].into_iter().find(|&s| last < s);
        let signed = fields.iter().any(|f| f.sign != 0);
        let n = fields.len();
        Some(FlatPlan {
            signed,
            fields: fields.into_boxed_slice(),
            reach: last + 8,
            span,
            ints: select(big, signed, span, n),
            values: select(big, signed, span, n),
        })
    }

    /// Calls `f` with the fields of each whole record of `size` bytes in `buf`;
    /// returns the number of records.
    #[inline(always)]
    fn each<const BIG: bool, F: FnMut(&[i128])>(
        &self,
        buf: &[u8],
        size: usize,
        f: &mut F,
    ) -> usize {
        if self.signed {
            self.each_as::<BIG, true, F>(buf, size, f)
        } else {
            self.each_as::<BIG, false, F>(buf, size, f)
        }
    }

    #[inline(always)]
    fn each_as<const BIG: bool, const SIGNED: bool, F: FnMut(&[i128])>(
        &self,
        buf: &[u8],
        size: usize,
        f: &mut F,
    ) -> usize {
        let mut pos = 0;
        let mut n = 0;
        if self.span.is_some() {
            // Records with a whole window after their start: fixed loads.
            macro_rules! unrolled {
                ($($k:literal)*) => {
                    match self.fields.len() {
                        $($k => {
                            if let Some(fields) = self.fields.first_chunk::<$k>() {
                                let fields = *fields;
                                let mut vals = [0i128; $k];
                                while let Some(win) =
                                    buf.get(pos..).and_then(|r| r.first_chunk::<72>())
                                {
                                    read_window::<BIG, SIGNED, 72, $k>(&fields, win, &mut vals);
                                    f(&vals);
                                    pos += size;
                                    n += 1;
                                }
                            }
                        })*
                        _ => {}
                    }
                };
            }
            unrolled!(1 2 3 4 5 6 7 8);
        }
        // Larger formats, and the last records, whose window would run past `buf`.
        let mut vals = [0i128; FLAT_MAX_FIELDS];
        let count = self.fields.len().min(FLAT_MAX_FIELDS);
        while let Some(end) = pos.checked_add(size).filter(|&e| e <= buf.len()) {
            let ok = match buf
                .get(pos..)
                .and_then(|rec| (self.ints)(self, rec, &mut vals[..]))
            {
                Some(()) => Some(()),
                None => self.read_near_end::<BIG>(buf, pos, &mut vals),
            };
            if ok.is_none() {
                break;
            }
            f(vals.get(..count).unwrap_or_default());
            pos = end;
            n += 1;
        }
        n
    }
}

/// Reads the `N` fields of the record at the start of the `W`-byte window `win`
/// (`W - 8` a power of two above every offset, so the loads need no checks).
#[inline(always)]
fn read_window<const BIG: bool, const SIGNED: bool, const W: usize, const N: usize>(
    fields: &[FlatField; N],
    win: &[u8; W],
    out: &mut [i128; N],
) {
    for (f, slot) in fields.iter().zip(out) {
        *slot = from_window::<BIG, SIGNED, W>(f, win);
    }
}

/// The kernel for a plan of `n` fields, the largest offset below `span`.
fn select<S: Sink + ?Sized>(big: bool, signed: bool, span: Option<usize>, n: usize) -> Kernel<S> {
    macro_rules! by_count {
        ($b:literal, $s:literal, $w:literal) => {
            match n {
                1 => window::<$b, $s, $w, 1, S>,
                2 => window::<$b, $s, $w, 2, S>,
                3 => window::<$b, $s, $w, 3, S>,
                4 => window::<$b, $s, $w, 4, S>,
                5 => window::<$b, $s, $w, 5, S>,
                6 => window::<$b, $s, $w, 6, S>,
                7 => window::<$b, $s, $w, 7, S>,
                8 => window::<$b, $s, $w, 8, S>,
                _ => window_any::<$b, $s, $w, S>,
            }
        };
    }
    macro_rules! by_span {
        ($b:literal, $s:literal) => {
            match span {
                Some(8) => by_count!($b, $s, 16),
                Some(16) => by_count!($b, $s, 24),
                Some(32) => by_count!($b, $s, 40),
                Some(_) => by_count!($b, $s, 72),
                None => checked::<$b, $s, S>,
            }
        };
    }
    match (big, signed) {
        (true, true) => by_span!(true, true),
        (true, false) => by_span!(true, false),
        (false, true) => by_span!(false, true),
        (false, false) => by_span!(false, false),
    }
}

/// [`Kernel`] for `N` fields below `W - 8` (a power of two), unrolled.
fn window<const BIG: bool, const SIGNED: bool, const W: usize, const N: usize, S>(
    plan: &FlatPlan,
    rec: &[u8],
    out: &mut S,
) -> Option<()>
where
    S: Sink + ?Sized,
{
    let win = rec.first_chunk::<W>()?;
    let fields = plan.fields.first_chunk::<N>()?;
    out.put::<N>(|k| match fields.get(k) {
        Some(f) => from_window::<BIG, SIGNED, W>(f, win),
        None => 0,
    })
}

/// [`Kernel`] for any number of fields below `W - 8` (a power of two).
fn window_any<const BIG: bool, const SIGNED: bool, const W: usize, S>(
    plan: &FlatPlan,
    rec: &[u8],
    out: &mut S,
) -> Option<()>
where
    S: Sink + ?Sized,
{
    let win = rec.first_chunk::<W>()?;
    let mut vals = [0i128; FLAT_MAX_FIELDS];
    for (f, slot) in plan.fields.iter().zip(&mut vals) {
        *slot = from_window::<BIG, SIGNED, W>(f, win);
    }
    out.put_slice(vals.get(..plan.fields.len())?)
}

/// [`Kernel`] for fields anywhere, with checked loads within `reach`.
fn checked<const BIG: bool, const SIGNED: bool, S: Sink + ?Sized>(
    plan: &FlatPlan,
    rec: &[u8],
    out: &mut S,
) -> Option<()> {
    let rec = rec.get(..plan.reach)?;
    let mut vals = [0i128; FLAT_MAX_FIELDS];
    for (f, slot) in plan.fields.iter().zip(&mut vals) {
        let at = f.offset as usize;
        let w = rec.get(at..at + 8)?.first_chunk::<8>()?;
        *slot = decode::<BIG, SIGNED>(f, *w);
    }
    out.put_slice(vals.get(..plan.fields.len())?)
}

/// Where a flat read stores a record's values: a caller's `[i128]`, or a
/// `Vec<Value>` they are appended to.
pub(crate) trait Sink {
    /// Stores the record's `N` values, value `k` being `val(k)`.
    fn put<const N: usize>(&mut self, val: impl Fn(usize) -> i128) -> Option<()>;
    /// Stores the record's values.
    fn put_slice(&mut self, vals: &[i128]) -> Option<()>;
    /// The plan's kernel for this kind of output.
    fn kernel(plan: &FlatPlan) -> Kernel<Self>;
}

impl Sink for [i128] {
    #[inline(always)]
    fn put<const N: usize>(&mut self, val: impl Fn(usize) -> i128) -> Option<()> {
        let out = self.first_chunk_mut::<N>()?;
        for (k, slot) in out.iter_mut().enumerate() {
            *slot = val(k);
        }
        Some(())
    }

    #[inline(always)]
    fn put_slice(&mut self, vals: &[i128]) -> Option<()> {
        self.get_mut(..vals.len())?.copy_from_slice(vals);
        Some(())
    }

    #[inline(always)]
    fn kernel(plan: &FlatPlan) -> Kernel<Self> {
        plan.ints
    }
}

impl Sink for Vec<Value> {
    #[inline(always)]
    fn put<const N: usize>(&mut self, val: impl Fn(usize) -> i128) -> Option<()> {
        self.extend((0..N).map(|k| Value::Int(val(k))));
        Some(())
    }

    #[inline(always)]
    fn put_slice(&mut self, vals: &[i128]) -> Option<()> {
        self.extend(vals.iter().map(|&v| Value::Int(v)));
        Some(())
    }

    #[inline(always)]
    fn kernel(plan: &FlatPlan) -> Kernel<Self> {
        plan.values
    }
}

/// One field of the record at the start of the `W`-byte window `win`.
#[inline(always)]
fn from_window<const BIG: bool, const SIGNED: bool, const W: usize>(
    f: &FlatField,
    win: &[u8; W],
) -> i128 {
    // Offsets are below `W - 8`, a power of two; the mask lets the compiler see it.
    let at = f.offset as usize & (W - 9);
    match win.get(at..).and_then(|r| r.first_chunk::<8>()) {
        Some(w) => decode::<BIG, SIGNED>(f, *w),
        None => 0,
    }
}

/// The value of a field from the 8 bytes starting at it.
#[inline(always)]
fn decode<const BIG: bool, const SIGNED: bool>(f: &FlatField, w: [u8; 8]) -> i128 {
    let u = if BIG {
        u64::from_be_bytes(w) >> f.shift
    } else {
        u64::from_le_bytes(w) & f.mask
    };
    if SIGNED {
        let sign = i128::from(f.sign);
        (i128::from(u) ^ sign) - sign
    } else {
        i128::from(u)
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
            let at = start.checked_add(f.offset as usize)?;
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
