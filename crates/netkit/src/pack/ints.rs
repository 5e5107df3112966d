//! The integer readers behind [`Struct::unpack_ints_from`](super::Struct::unpack_ints_from),
//! [`Struct::for_each_ints`](super::Struct::for_each_ints) and the integer fast path of
//! `unpack`, `unpack_from` and `iter_unpack`.
//!
//! A format made only of integer codes (and `?`, `x`) compiles to an [`IntPlan`],
//! one step per item. A format of at most 16 integer values without `?` also
//! compiles to a [`FlatPlan`]: one entry per value and functions chosen at
//! [`Struct::new`](super::Struct::new) for its byte order, extension (unsigned; signed
//! within `i64`; signed next to 64-bit unsigned, in `i128`), value count (unrolled up
//! to 8) and extent. Such a read never parses or branches per field:
//!
//! - A *window* read loads each field as 8 bytes from a fixed-size window around
//!   the record, so one bounds check covers the record. Little-endian fields are
//!   loaded from their first byte and masked; big-endian ones from the 8 bytes that
//!   *end* with them (the window starts 8 bytes before the record), byte-swapped and
//!   masked, so neither byte order shifts.
//! - An *exact* read stays inside the record: each field comes from the 8 bytes of
//!   the record nearest to it (a record under 8 bytes is read as one word), shifted
//!   and masked. It serves records too near either end of the buffer for a window.
//!
//! [`FlatPlan::fold`] runs the window read over a buffer of records in a loop
//! compiled for the caller's closure, with exact reads for the records at the ends.
//! The general `Value` decoding is in `codec.rs`.

use super::codec::{self, IntRead};
use super::format::{Layout, Order};
use super::{PackError, Values};

/// How [`Struct::unpack_ints_from`](super::Struct::unpack_ints_from) reads a record
/// item by item, for integer formats without a [`FlatPlan`].
#[derive(Debug, Clone)]
pub(crate) struct IntPlan {
    steps: Box<[IntStep]>,
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
        Ok(IntPlan {
            steps,
            big: layout.order == Order::Big,
        })
    }

    /// Reads the record at `buf[start..]` into `out`; `None` if the record or
    /// `out` is too short (callers check both first).
    #[inline(never)]
    pub fn read(&self, buf: &[u8], start: usize, out: &mut [i128]) -> Option<()> {
        if self.big {
            read_steps::<true>(&self.steps, buf, start, out)
        } else {
            read_steps::<false>(&self.steps, buf, start, out)
        }
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

    /// Calls `f` with the values of each of the `buf.len() / size` records of
    /// `buf`, reusing `out` (which must hold every value); returns the number of
    /// records.
    pub fn for_each<F: FnMut(&[i128])>(
        &self,
        buf: &[u8],
        size: usize,
        out: &mut [i128],
        mut f: F,
    ) -> Option<usize> {
        let mut n = 0;
        for start in (0..buf.len() / size.max(1)).map(|i| i * size) {
            self.read(buf, start, out)?;
            f(out);
            n += 1;
        }
        Some(n)
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

/// Formats with more values than this have no [`FlatPlan`].
pub(crate) const FLAT_MAX_FIELDS: usize = 16;

/// Formats with fields beyond this offset have no [`FlatPlan`].
const FLAT_MAX_OFFSET: usize = 1 << 20;

/// Bytes a big-endian window starts before its record.
const LEAD: usize = 8;

/// The window of [`FlatPlan::fold`]: fields whose load starts below 64 bytes
/// into it, records of at most 64 bytes.
const STREAM_WINDOW: usize = 72;

/// How the fields' bits become values, as a const parameter of the readers.
type Ext = u8;
/// Every field unsigned: zero-extend.
const UNSIGNED: Ext = 0;
/// Some field signed and no unsigned 64-bit field: sign-extend in `i64`.
const SIGNED: Ext = 1;
/// Signed fields next to an unsigned 64-bit one: sign-extend in `i128`.
const WIDE: Ext = 2;

/// One value per entry, for formats of at most [`FLAT_MAX_FIELDS`] integer values
/// without `?`.
#[derive(Debug, Clone)]
pub(crate) struct FlatPlan {
    /// The first `n` entries are the values'; kept inline, so a read finds them
    /// at fixed offsets from the plan.
    fields: [FlatField; FLAT_MAX_FIELDS],
    /// The number of values.
    n: usize,
    /// The record size.
    size: usize,
    big: bool,
    ext: Ext,
    /// Whether [`FlatPlan::fold`] can use a [`STREAM_WINDOW`]-byte window.
    stream: bool,
    /// One record into a caller's `[i128]`, chosen for this plan.
    ints: IntsFn,
    /// One record as [`Values`], chosen for this plan.
    values: ValuesFn,
}

/// Reads the record at `buf[start..]`, which the caller checked is inside `buf`,
/// into `out` (`None` when `out` is too short).
type IntsFn = fn(&FlatPlan, &[u8], usize, &mut [i128]) -> Option<()>;

/// Reads the record at `buf[start..]`, which the caller checked is inside `buf`.
type ValuesFn = fn(&FlatPlan, &[u8], usize) -> Result<Values, PackError>;

/// One value of a [`FlatPlan`].
#[derive(Debug, Clone, Copy, Default)]
struct FlatField {
    /// Where a window read loads the field's 8 bytes, from the window start.
    idx: u32,
    /// Where an exact read loads the field's 8 bytes, from the record start
    /// (0 for records under 8 bytes).
    lo: u32,
    /// How far an exact read shifts its (byte-order corrected) word right.
    sh: u32,
    /// The low `8 * width` bits.
    mask: u64,
    /// The sign bit for signed codes, else 0.
    sign: u64,
}

/// What [`FlatPlan::fold`] does with each record's values.
pub(crate) trait Each<B> {
    /// Folds in a record of `N` values.
    fn values<const N: usize>(&mut self, acc: B, vals: [i128; N]) -> B;
    /// Folds in a record of any number of values.
    fn slice(&mut self, acc: B, vals: &[i128]) -> B;
}

impl FlatPlan {
    /// The flat plan for `layout`, if it has at most [`FLAT_MAX_FIELDS`] values,
    /// all integers and none `?`.
    pub fn new(layout: &Layout) -> Option<FlatPlan> {
        if layout.values > FLAT_MAX_FIELDS {
            return None;
        }
        let big = layout.order == Order::Big;
        let size = layout.size;
        let mut fields = Vec::with_capacity(layout.values);
        let (mut signed, mut wide_unsigned) = (false, false);
        for item in &layout.items {
            let r = IntRead::for_item(item, layout.order)?;
            if r.extend == codec::Extend::Bool {
                return None;
            }
            let is_signed = r.extend == codec::Extend::Signed;
            signed |= is_signed;
            wide_unsigned |= !is_signed && r.width == 8;
            let w = r.width;
            let bits = 8 * w as u32;
            for k in 0..item.count {
                let offset = item.offset + k * w;
                if offset > FLAT_MAX_OFFSET {
                    return None;
                }
                let lo = if size >= 8 { offset.min(size - 8) } else { 0 };
                let rel = (offset - lo) as u32;
                fields.push(FlatField {
                    idx: (if big { offset + w } else { offset }) as u32,
                    lo: lo as u32,
                    sh: if big { 64 - 8 * rel - bits } else { 8 * rel },
                    mask: u64::MAX >> (64 - bits),
                    sign: if is_signed { 1 << (bits - 1) } else { 0 },
                });
            }
        }
        let ext = match (signed, wide_unsigned) {
            (false, _) => UNSIGNED,
            (true, false) => SIGNED,
            (true, true) => WIDE,
        };
        let n = fields.len();
        let last = fields.iter().map(|f| f.idx as usize).max().unwrap_or(0);
        let mut inline = [FlatField::default(); FLAT_MAX_FIELDS];
        for (d, f) in inline.iter_mut().zip(&fields) {
            *d = *f;
        }
        let span = [8, 16, 32, 64].into_iter().find(|&s| last < s);
        let lead = if big { LEAD } else { 0 };
        Some(FlatPlan {
            fields: inline,
            n,
            size,
            big,
            ext,
            stream: last < STREAM_WINDOW - 8 && size + lead <= STREAM_WINDOW && size > 0,
            ints: select_ints(big, ext, span, n),
            values: select_values(big, ext, span, n),
        })
    }

    /// Reads the record at `buf[start..]` (inside `buf`) into `out`; `None` if
    /// `out` is too short.
    #[inline(always)]
    pub fn read_ints(&self, buf: &[u8], start: usize, out: &mut [i128]) -> Option<()> {
        (self.ints)(self, buf, start, out)
    }

    /// Reads the record at `buf[start..]` (inside `buf`) as [`Values`].
    #[inline(always)]
    pub fn read_values(&self, buf: &[u8], start: usize) -> Result<Values, PackError> {
        (self.values)(self, buf, start)
    }

    /// The number of values.
    #[inline(always)]
    pub fn count(&self) -> usize {
        self.n
    }

    /// Folds `each` over the values of each record of `buf` from `start` (a whole
    /// number of records of the plan's size after `start`); returns the
    /// accumulator.
    ///
    /// Records with a whole window around them are read with a loop compiled for
    /// `each` and the plan's value count; the others exactly.
    #[inline(always)]
    pub fn fold<B, E: Each<B>>(&self, buf: &[u8], start: usize, init: B, mut each: E) -> B {
        macro_rules! by_count {
            ($big:literal, $ext:expr) => {
                match self.n {
                    1 => self.fold_n::<$big, $ext, 1, B, E>(buf, start, init, &mut each),
                    2 => self.fold_n::<$big, $ext, 2, B, E>(buf, start, init, &mut each),
                    3 => self.fold_n::<$big, $ext, 3, B, E>(buf, start, init, &mut each),
                    4 => self.fold_n::<$big, $ext, 4, B, E>(buf, start, init, &mut each),
                    5 => self.fold_n::<$big, $ext, 5, B, E>(buf, start, init, &mut each),
                    6 => self.fold_n::<$big, $ext, 6, B, E>(buf, start, init, &mut each),
                    7 => self.fold_n::<$big, $ext, 7, B, E>(buf, start, init, &mut each),
                    8 => self.fold_n::<$big, $ext, 8, B, E>(buf, start, init, &mut each),
                    _ => self.fold_any(buf, start, init, &mut each),
                }
            };
        }
        match (self.stream, self.big, self.ext) {
            (true, true, UNSIGNED) => by_count!(true, UNSIGNED),
            (true, true, SIGNED) => by_count!(true, SIGNED),
            (true, false, UNSIGNED) => by_count!(false, UNSIGNED),
            (true, false, SIGNED) => by_count!(false, SIGNED),
            _ => self.fold_any(buf, start, init, &mut each),
        }
    }

    /// [`FlatPlan::fold`] for `N` values of one byte order and extension.
    #[inline(always)]
    fn fold_n<const BIG: bool, const EXT: Ext, const N: usize, B, E: Each<B>>(
        &self,
        buf: &[u8],
        mut pos: usize,
        mut acc: B,
        each: &mut E,
    ) -> B {
        // At most the window (`stream` says so): the compiler then sees that a
        // window holds the record.
        let size = self.size.min(STREAM_WINDOW);
        let Some(fields) = self.fields.first_chunk::<N>().filter(|_| size > 0) else {
            return acc;
        };
        let fields = *fields;
        let record = |pos: usize| buf.get(pos..pos.checked_add(size)?);
        // Big-endian records without the window's lead bytes before them.
        while BIG && pos < LEAD {
            let Some(rec) = record(pos) else {
                return acc;
            };
            acc = each.values(acc, read_exact::<BIG, EXT, N>(&fields, rec));
            pos += size;
        }
        // Records with a whole window: one bounds check for two records, then one.
        let lead = if BIG { LEAD } else { 0 };
        let mut rest = buf.get(pos - lead..).unwrap_or_default();
        while let Some(pair) = rest.first_chunk::<{ 2 * STREAM_WINDOW }>() {
            let (Some(a), Some(b)) = (
                pair.first_chunk::<STREAM_WINDOW>(),
                pair.get(size..)
                    .and_then(|r| r.first_chunk::<STREAM_WINDOW>()),
            ) else {
                break;
            };
            acc = each.values(acc, read_window::<BIG, EXT, STREAM_WINDOW, N>(&fields, a));
            acc = each.values(acc, read_window::<BIG, EXT, STREAM_WINDOW, N>(&fields, b));
            rest = rest.get(2 * size..).unwrap_or_default();
        }
        while let Some(win) = rest.first_chunk::<STREAM_WINDOW>() {
            acc = each.values(acc, read_window::<BIG, EXT, STREAM_WINDOW, N>(&fields, win));
            rest = rest.get(size..).unwrap_or_default();
        }
        pos = buf.len() - rest.len() + lead;
        // The last records, whose window would run past the end.
        while let Some(rec) = record(pos) {
            acc = each.values(acc, read_exact::<BIG, EXT, N>(&fields, rec));
            pos += size;
        }
        acc
    }

    /// [`FlatPlan::fold`] for any plan, one exact read per record.
    fn fold_any<B, E: Each<B>>(&self, buf: &[u8], mut pos: usize, mut acc: B, each: &mut E) -> B {
        let mut vals = [0i128; FLAT_MAX_FIELDS];
        let n = self.n.min(FLAT_MAX_FIELDS);
        let size = self.size;
        while let Some(rec) = buf
            .get(pos..pos.saturating_add(size))
            .filter(|r| r.len() == size && size > 0)
        {
            self.read_exact_any(rec, &mut vals);
            acc = each.slice(acc, vals.get(..n).unwrap_or_default());
            pos += size;
        }
        acc
    }

    /// Reads every field of the record `rec` (exactly the record) into `out`.
    fn read_exact_any(&self, rec: &[u8], out: &mut [i128; FLAT_MAX_FIELDS]) {
        let fields = self.fields();
        match (self.big, self.ext) {
            (true, UNSIGNED) => exact_slice::<true, UNSIGNED>(fields, rec, out),
            (true, SIGNED) => exact_slice::<true, SIGNED>(fields, rec, out),
            (true, _) => exact_slice::<true, WIDE>(fields, rec, out),
            (false, UNSIGNED) => exact_slice::<false, UNSIGNED>(fields, rec, out),
            (false, SIGNED) => exact_slice::<false, SIGNED>(fields, rec, out),
            (false, _) => exact_slice::<false, WIDE>(fields, rec, out),
        }
    }

    /// The entries of the values.
    #[inline(always)]
    fn fields(&self) -> &[FlatField] {
        self.fields.get(..self.n).unwrap_or_default()
    }

    /// The record at `buf[start..]`, exactly: `None` if it is not inside `buf`.
    #[inline(always)]
    fn record<'b>(&self, buf: &'b [u8], start: usize) -> Option<&'b [u8]> {
        buf.get(start..start.checked_add(self.size)?)
    }

    /// The error for a record that is not inside `buf`, which callers rule out.
    #[cold]
    fn short(&self, buf: &[u8], start: usize) -> PackError {
        PackError::UnpackSize {
            expected: self.size,
            got: buf.len().saturating_sub(start),
        }
    }
}

/// The value of a field from its bits `u` (already masked).
#[inline(always)]
fn extend<const EXT: Ext>(f: &FlatField, u: u64) -> i128 {
    match EXT {
        UNSIGNED => i128::from(u),
        SIGNED => i128::from((u ^ f.sign).wrapping_sub(f.sign) as i64),
        _ => {
            let s = i128::from(f.sign);
            (i128::from(u) ^ s) - s
        }
    }
}

/// One field from the `W`-byte window `win` (`W - 8` a power of two above every
/// field's `idx`, so the load needs no check).
#[inline(always)]
fn window_field<const BIG: bool, const EXT: Ext, const W: usize>(
    f: &FlatField,
    win: &[u8; W],
) -> i128 {
    let at = f.idx as usize & (W.max(9) - 9);
    let w = match win.get(at..).and_then(|r| r.first_chunk::<8>()) {
        Some(w) => *w,
        None => [0; 8],
    };
    let u = if BIG {
        u64::from_be_bytes(w)
    } else {
        u64::from_le_bytes(w)
    };
    extend::<EXT>(f, u & f.mask)
}

/// The `N` fields of a record from its window.
#[inline(always)]
fn read_window<const BIG: bool, const EXT: Ext, const W: usize, const N: usize>(
    fields: &[FlatField; N],
    win: &[u8; W],
) -> [i128; N] {
    fields.map(|f| window_field::<BIG, EXT, W>(&f, win))
}

/// The window of `W` bytes for the record at `buf[start..]`: from `LEAD` bytes
/// before it (big-endian) or from its start (little-endian).
#[inline(always)]
fn window<const BIG: bool, const W: usize>(buf: &[u8], start: usize) -> Option<&[u8; W]> {
    let from = if BIG { start.checked_sub(LEAD)? } else { start };
    buf.get(from..)?.first_chunk::<W>()
}

/// The word an exact read takes a field from: the 8 bytes of `rec` from `lo`
/// (at most `last`, which is `rec.len() - 8`), little-endian.
#[inline(always)]
fn exact_word(rec: &[u8], lo: u32, last: usize) -> u64 {
    // `lo` is at most `last` already; the `min` shows the compiler the load fits.
    let at = (lo as usize).min(last);
    match rec.get(at..).and_then(|r| r.first_chunk::<8>()) {
        Some(w) => u64::from_le_bytes(*w),
        None => 0,
    }
}

/// The bytes of `rec` (at most 8 are used) as a little-endian word, zero-padded.
#[inline(always)]
fn short_word(rec: &[u8]) -> u64 {
    let n = rec.len();
    // Two overlapping loads cover every length from 2 to 8.
    let (a, b, w) = if let (Some(a), Some(b)) = (rec.first_chunk::<4>(), rec.last_chunk::<4>()) {
        (
            u64::from(u32::from_le_bytes(*a)),
            u64::from(u32::from_le_bytes(*b)),
            4,
        )
    } else if let (Some(a), Some(b)) = (rec.first_chunk::<2>(), rec.last_chunk::<2>()) {
        (
            u64::from(u16::from_le_bytes(*a)),
            u64::from(u16::from_le_bytes(*b)),
            2,
        )
    } else {
        (u64::from(rec.first().copied().unwrap_or(0)), 0, n)
    };
    a | b << (8 * (n.min(8) - w.min(n)) as u32)
}

/// One field of a record, exactly, from its word (see [`exact_word`] and
/// [`short_word`]).
#[inline(always)]
fn exact_field<const BIG: bool, const EXT: Ext>(f: &FlatField, word: u64) -> i128 {
    let u = if BIG { word.swap_bytes() } else { word };
    extend::<EXT>(f, (u >> (f.sh & 63)) & f.mask)
}

/// The `N` fields of the record `rec` (exactly the record), read inside it.
#[inline(always)]
fn read_exact<const BIG: bool, const EXT: Ext, const N: usize>(
    fields: &[FlatField; N],
    rec: &[u8],
) -> [i128; N] {
    let mut out = [0; N];
    exact_slice::<BIG, EXT>(fields, rec, &mut out);
    out
}

/// [`read_exact`] for any number of fields, into `out`.
#[inline(always)]
fn exact_slice<const BIG: bool, const EXT: Ext>(
    fields: &[FlatField],
    rec: &[u8],
    out: &mut [i128],
) {
    if let Some(last) = rec.len().checked_sub(8) {
        for (f, slot) in fields.iter().zip(out.iter_mut()) {
            *slot = exact_field::<BIG, EXT>(f, exact_word(rec, f.lo, last));
        }
    } else {
        let word = short_word(rec);
        for (f, slot) in fields.iter().zip(out.iter_mut()) {
            *slot = exact_field::<BIG, EXT>(f, word);
        }
    }
}

/// [`read_window`] for any number of fields.
fn window_slice<const BIG: bool, const EXT: Ext, const W: usize>(
    fields: &[FlatField],
    win: &[u8; W],
    out: &mut [i128; FLAT_MAX_FIELDS],
) {
    for (f, slot) in fields.iter().zip(out.iter_mut()) {
        *slot = window_field::<BIG, EXT, W>(f, win);
    }
}

/// The `N` values of the record at `buf[start..]` into `out`, read exactly;
/// `None` if the record is not inside `buf`.
#[inline(never)]
fn read_n_exact<const BIG: bool, const EXT: Ext, const N: usize>(
    plan: &FlatPlan,
    buf: &[u8],
    start: usize,
    out: &mut [i128; N],
) -> Option<()> {
    let fields = plan.fields.first_chunk::<N>()?;
    exact_slice::<BIG, EXT>(fields, plan.record(buf, start)?, out);
    Some(())
}

/// Every value of the record at `buf[start..]` into `out` (by window when `buf`
/// has one around it, else exactly); `None` if the record is not inside `buf`.
#[inline(always)]
fn read_any<const BIG: bool, const EXT: Ext, const W: usize>(
    plan: &FlatPlan,
    buf: &[u8],
    start: usize,
    out: &mut [i128; FLAT_MAX_FIELDS],
) -> Option<()> {
    if W > 0 {
        if let Some(win) = window::<BIG, W>(buf, start) {
            window_slice::<BIG, EXT, W>(plan.fields(), win, out);
            return Some(());
        }
    }
    exact_slice::<BIG, EXT>(plan.fields(), plan.record(buf, start)?, out);
    Some(())
}

/// [`IntsFn`] for `N` values, unrolled: by window when `buf` has one around the
/// record, else exactly.
fn ints_n<const BIG: bool, const EXT: Ext, const W: usize, const N: usize>(
    plan: &FlatPlan,
    buf: &[u8],
    start: usize,
    out: &mut [i128],
) -> Option<()> {
    let out = out.first_chunk_mut::<N>()?;
    if W > 0 {
        if let (Some(win), Some(fields)) =
            (window::<BIG, W>(buf, start), plan.fields.first_chunk::<N>())
        {
            for (slot, f) in out.iter_mut().zip(fields) {
                *slot = window_field::<BIG, EXT, W>(f, win);
            }
            return Some(());
        }
    }
    read_n_exact::<BIG, EXT, N>(plan, buf, start, out)
}

/// [`IntsFn`] for any number of values.
fn ints_any<const BIG: bool, const EXT: Ext, const W: usize>(
    plan: &FlatPlan,
    buf: &[u8],
    start: usize,
    out: &mut [i128],
) -> Option<()> {
    let mut vals = [0i128; FLAT_MAX_FIELDS];
    read_any::<BIG, EXT, W>(plan, buf, start, &mut vals)?;
    let n = plan.n;
    out.get_mut(..n)?.copy_from_slice(vals.get(..n)?);
    Some(())
}

/// [`ValuesFn`] for `N` values, unrolled and stored inline: by window when `buf`
/// has one around the record, else exactly.
fn values_n<const BIG: bool, const EXT: Ext, const W: usize, const N: usize>(
    plan: &FlatPlan,
    buf: &[u8],
    start: usize,
) -> Result<Values, PackError> {
    if W > 0 {
        if let (Some(win), Some(fields)) =
            (window::<BIG, W>(buf, start), plan.fields.first_chunk::<N>())
        {
            return Ok(Values::ints::<N>(|k| match fields.get(k) {
                Some(f) => window_field::<BIG, EXT, W>(f, win),
                None => 0,
            }));
        }
    }
    values_n_exact::<BIG, EXT, N>(plan, buf, start)
}

/// [`values_n`] without a window.
#[inline(never)]
fn values_n_exact<const BIG: bool, const EXT: Ext, const N: usize>(
    plan: &FlatPlan,
    buf: &[u8],
    start: usize,
) -> Result<Values, PackError> {
    let (Some(fields), Some(rec)) = (plan.fields.first_chunk::<N>(), plan.record(buf, start))
    else {
        return Err(plan.short(buf, start));
    };
    let vals = read_exact::<BIG, EXT, N>(fields, rec);
    Ok(Values::ints::<N>(|k| vals.get(k).copied().unwrap_or(0)))
}

/// [`ValuesFn`] for any number of values.
fn values_any<const BIG: bool, const EXT: Ext, const W: usize>(
    plan: &FlatPlan,
    buf: &[u8],
    start: usize,
) -> Result<Values, PackError> {
    let mut vals = [0i128; FLAT_MAX_FIELDS];
    if read_any::<BIG, EXT, W>(plan, buf, start, &mut vals).is_none() {
        return Err(plan.short(buf, start));
    }
    let n = plan.n;
    Ok(vals
        .get(..n)
        .unwrap_or_default()
        .iter()
        .map(|&v| super::Value::Int(v))
        .collect())
}

/// Expands to the function for a plan of byte order `$big`, extension `$ext`,
/// window span `$span` (`None`: no window) and `$n` values, from the families
/// `$n_fn` (unrolled, `N` values) and `$any_fn` (any count).
macro_rules! select {
    ($n_fn:ident, $any_fn:ident, $big:expr, $ext:expr, $span:expr, $n:expr) => {{
        macro_rules! by_count {
            ($b:literal, $e:expr, $w:literal) => {
                match $n {
                    1 => $n_fn::<$b, $e, $w, 1>,
                    2 => $n_fn::<$b, $e, $w, 2>,
                    3 => $n_fn::<$b, $e, $w, 3>,
                    4 => $n_fn::<$b, $e, $w, 4>,
                    5 => $n_fn::<$b, $e, $w, 5>,
                    6 => $n_fn::<$b, $e, $w, 6>,
                    7 => $n_fn::<$b, $e, $w, 7>,
                    8 => $n_fn::<$b, $e, $w, 8>,
                    _ => $any_fn::<$b, $e, $w>,
                }
            };
        }
        macro_rules! by_span {
            ($b:literal, $e:expr) => {
                match $span {
                    Some(8) => by_count!($b, $e, 16),
                    Some(16) => by_count!($b, $e, 24),
                    Some(32) => by_count!($b, $e, 40),
                    Some(_) => by_count!($b, $e, 72),
                    None => by_count!($b, $e, 0),
                }
            };
        }
        match ($big, $ext) {
            (true, UNSIGNED) => by_span!(true, UNSIGNED),
            (true, SIGNED) => by_span!(true, SIGNED),
            (false, UNSIGNED) => by_span!(false, UNSIGNED),
            (false, SIGNED) => by_span!(false, SIGNED),
            // Rare: read any count, with the largest window.
            (true, _) => match $span {
                Some(_) => $any_fn::<true, WIDE, 72>,
                None => $any_fn::<true, WIDE, 0>,
            },
            (false, _) => match $span {
                Some(_) => $any_fn::<false, WIDE, 72>,
                None => $any_fn::<false, WIDE, 0>,
            },
        }
    }};
}

/// The [`IntsFn`] for a plan.
fn select_ints(big: bool, ext: Ext, span: Option<usize>, n: usize) -> IntsFn {
    select!(ints_n, ints_any, big, ext, span, n)
}

/// The [`ValuesFn`] for a plan.
fn select_values(big: bool, ext: Ext, span: Option<usize>, n: usize) -> ValuesFn {
    select!(values_n, values_any, big, ext, span, n)
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
