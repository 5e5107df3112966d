//! CPython-compatible `struct`: pack and unpack binary records described by format
//! strings, byte for byte as CPython 3.11's `struct` module does.
//!
//! A format is compiled once into a [`Struct`] (a flat list of items with precomputed
//! offsets); packing and unpacking then never parse. The module-level [`pack`],
//! [`unpack`] and [`calcsize`] keep each thread's 8 most recently used formats
//! compiled, as CPython's `_struct` module caches its formats.
//!
//! Everything in Python's `struct` is here: the prefixes `@ = < > !` (none means `@`:
//! native sizes and alignment, without trailing padding), the codes
//! `x c b B ? h H i I l L q Q n N e f d s p P`, repeat counts, whitespace between
//! items, range checks, the `e` half-float format with correct rounding, negative
//! offsets for [`Struct::pack_into`] and [`Struct::unpack_from`], and
//! [`Struct::iter_unpack`]. Every case where CPython raises `struct.error` (or
//! `OverflowError`) is a [`PackError`] here; no input makes this module panic, and
//! repeat counts beyond `isize::MAX` bytes are rejected before anything is allocated.
//!
//! Unpacking returns [`Values`], which holds up to [`Values::INLINE`] values without
//! a heap allocation and dereferences to `[Value]`, as Python returns a tuple.
//!
//! Fast paths, fastest first (`bench/pack.sh` measures each against CPython and
//! hand-written `from_le_bytes` / `from_be_bytes` code). For a format of up to 16
//! integer values without `?`, [`Struct::new`] picks reads specialised for its byte
//! order, signedness, value count and extent: one 8-byte load, a byte swap
//! (big-endian) and a mask per value, with one bounds check per record.
//!
//! - [`Struct::for_each_ints`], and internal iteration over [`Struct::iter_unpack`]
//!   (`for_each`, `fold`, `sum` and the adapters built on them): a buffer of
//!   integer records in one loop compiled for the caller's closure, with no
//!   allocation; the way to stream records. A `for` loop over `iter_unpack` also
//!   allocates nothing for up to 8 values, but moves each record's [`Values`] out
//!   of `next`, several times slower.
//! - [`Struct::unpack_ints_from`] (and [`Record::ints_into`] from
//!   [`Struct::iter_records`]): one integer record into a caller's `[i128]`, with no
//!   allocation.
//! - [`Struct::unpack_from`] and [`Struct::unpack`] use the same reads for such
//!   formats, writing [`Values`] (inline up to 8 values); [`Struct::unpack_into`]
//!   reuses a `Vec<Value>`'s capacity across calls instead.
//!
//! [`literal`] parses Python literals (`42`, `0xff`, `1.5`, `True`, `b'ab\x00'`) into
//! [`Value`]s, the inverse of `Value`'s `repr`, and prints values as a tuple or JSON.
//!
//! Out of scope: Python objects other than [`Value`]'s four kinds (`bytearray`,
//! objects with `__index__`), and `str` formats with non-ASCII characters (rejected
//! as bad characters, as CPython rejects them).
//!
//! ```
//! use netkit::pack::{self, Struct, Value};
//!
//! // Network byte order, as in `struct.pack("!I", 20)`.
//! let b = pack::pack("!I", &[Value::from(20u32)])?;
//! assert_eq!(b, [0, 0, 0, 20]);
//! assert_eq!(pack::unpack("!I", &b)?, [Value::Int(20)]);
//!
//! // A ZIP local file header, read as the seed does: skip 14 bytes, then
//! // crc32, compressed size, uncompressed size, name length, extra length.
//! let mut header = b"PK\x03\x04".to_vec();
//! header.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
//! header.extend_from_slice(&0xdeadbeef_u32.to_le_bytes());
//! header.extend_from_slice(&100_u32.to_le_bytes());
//! header.extend_from_slice(&300_u32.to_le_bytes());
//! header.extend_from_slice(&5_u16.to_le_bytes());
//! header.extend_from_slice(&0_u16.to_le_bytes());
//! let local = Struct::new("<IIIHH")?;
//! let fields = local.unpack_from(&header, 14)?;
//! assert_eq!(fields[0], Value::Int(0xdeadbeef));
//! assert_eq!(fields[3].as_int(), Some(5));
//!
//! // The allocation-free path for integer-only formats.
//! let mut ints = [0i128; 5];
//! assert_eq!(local.unpack_ints_from(&header, 14, &mut ints)?, 5);
//! assert_eq!(ints, [0xdeadbeef, 100, 300, 5, 0]);
//! # Ok::<(), netkit::pack::PackError>(())
//! ```

mod codec;
mod error;
mod format;
mod half;
mod ints;
pub mod literal;
mod records;
mod value;

#[cfg(test)]
mod tests;
mod values;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

pub use error::PackError;
pub use records::{Record, Records};
pub use value::Value;
pub use values::{IntoIter, Values};

use format::Layout;
use ints::{Each, FlatPlan, IntPlan, FLAT_MAX_FIELDS};

/// A compiled format string, like Python's `struct.Struct`.
///
/// ```
/// use netkit::pack::{Struct, Value};
/// let s = Struct::new("<hH")?;
/// assert_eq!(s.size(), 4);
/// let bytes = s.pack(&[Value::from(-2i32), Value::from(65535u32)])?;
/// assert_eq!(bytes, [0xfe, 0xff, 0xff, 0xff]);
/// assert_eq!(s.unpack(&bytes)?, [Value::Int(-2), Value::Int(65535)]);
/// # Ok::<(), netkit::pack::PackError>(())
/// ```
#[derive(Clone)]
pub struct Struct {
    format: String,
    layout: Layout,
    /// The plan for [`Struct::unpack_ints_from`], or the first non-integer code.
    ints: Result<IntPlan, PackError>,
    /// The per-value plan for integer formats of at most 16 values without `?`.
    flat: Option<FlatPlan>,
    /// Position of the first `0p` item, which CPython cannot unpack.
    zero_pascal: Option<usize>,
}

impl fmt::Debug for Struct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Struct")
            .field("format", &self.format)
            .field("size", &self.layout.size)
            .field("values", &self.layout.values)
            .finish()
    }
}

impl Struct {
    /// Compiles `fmt`, as `struct.Struct(fmt)`.
    ///
    /// # Errors
    ///
    /// A bad character, a native-only code (`n N P`) after a standard prefix, a
    /// trailing repeat count, a NUL, or a total size beyond `isize::MAX`.
    pub fn new(fmt: &str) -> Result<Struct, PackError> {
        let layout = format::compile(fmt)?;
        let ints = IntPlan::new(&layout);
        let flat = FlatPlan::new(&layout);
        let zero_pascal = layout
            .items
            .iter()
            .find(|i| i.kind == format::Kind::Pascal && i.count == 0)
            .map(|i| i.pos);
        Ok(Struct {
            format: fmt.to_string(),
            layout,
            ints,
            flat,
            zero_pascal,
        })
    }

    /// The record size in bytes, as `struct.calcsize`.
    pub fn size(&self) -> usize {
        self.layout.size
    }

    /// The format string this struct was compiled from.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// The number of values [`Struct::pack`] takes and [`Struct::unpack`] returns.
    pub fn count(&self) -> usize {
        self.layout.values
    }

    /// Packs `values` into a new buffer of [`Struct::size`] bytes.
    ///
    /// # Errors
    ///
    /// The wrong number of values, a value of the wrong kind for its code, an
    /// integer out of range, a float too large for `e` (or standard `f`), or a
    /// record too large to allocate.
    pub fn pack(&self, values: &[Value]) -> Result<Vec<u8>, PackError> {
        self.check_count(values)?;
        let size = self.layout.size;
        let mut out = Vec::new();
        out.try_reserve_exact(size)
            .map_err(|_| PackError::Alloc { size })?;
        out.resize(size, 0);
        codec::pack_record(&self.layout, &mut out, values)?;
        Ok(out)
    }

    /// Packs `values` into `buf` at `offset`; a negative offset counts from the end
    /// of `buf`, as in CPython's `pack_into`.
    ///
    /// On a value error the bytes before the bad value are already written (and the
    /// rest of the record zeroed), as in CPython.
    ///
    /// # Errors
    ///
    /// As [`Struct::pack`], plus [`PackError::NoSpace`],
    /// [`PackError::OffsetOutOfRange`] and [`PackError::PackIntoTooSmall`] when the
    /// record does not fit.
    pub fn pack_into(
        &self,
        buf: &mut [u8],
        offset: isize,
        values: &[Value],
    ) -> Result<(), PackError> {
        self.check_count(values)?;
        let len = buf.len();
        let off = self.resolve_offset(len, offset, Access::Pack)?;
        let rec = buf
            .get_mut(off..)
            .ok_or(PackError::OffsetOutOfRange { offset, len })?;
        codec::pack_record(&self.layout, rec, values)
    }

    /// Unpacks `buf`, which must be exactly [`Struct::size`] bytes long, as
    /// `struct.unpack`. Up to [`Values::INLINE`] values come back without a heap
    /// allocation (but for the bytes of `c s p` values).
    ///
    /// # Errors
    ///
    /// [`PackError::UnpackSize`] when the length differs; [`PackError::ZeroPascal`]
    /// for a format with a `0p` item.
    #[inline]
    pub fn unpack(&self, buf: &[u8]) -> Result<Values, PackError> {
        if buf.len() != self.layout.size {
            return Err(self.short(buf.len()));
        }
        self.values_at(buf, 0)
    }

    /// Unpacks the record at `offset` in `buf` (negative counts from the end); the
    /// buffer may extend past the record, as in CPython's `unpack_from`. Up to
    /// [`Values::INLINE`] values come back without a heap allocation (but for the
    /// bytes of `c s p` values).
    ///
    /// # Errors
    ///
    /// [`PackError::NotEnoughData`], [`PackError::OffsetOutOfRange`] or
    /// [`PackError::UnpackFromTooSmall`] when the record is not inside `buf`; [`PackError::ZeroPascal`] for `0p`.
    #[inline]
    pub fn unpack_from(&self, buf: &[u8], offset: isize) -> Result<Values, PackError> {
        let start = self.record_start(buf.len(), offset)?;
        self.values_at(buf, start)
    }

    /// Like [`Struct::unpack_from`], but clears `out` and appends the values to it,
    /// reusing its capacity: once `out` is large enough, a format without `c s p`
    /// codes allocates nothing.
    ///
    /// # Errors
    ///
    /// As [`Struct::unpack_from`]. On error `out` is left empty or partly filled.
    pub fn unpack_into(
        &self,
        buf: &[u8],
        offset: isize,
        out: &mut Vec<Value>,
    ) -> Result<(), PackError> {
        let start = self.record_start(buf.len(), offset)?;
        out.clear();
        if let Some(flat) = &self.flat {
            let mut vals = [0i128; FLAT_MAX_FIELDS];
            flat.read_ints(buf, start, &mut vals)
                .ok_or_else(|| self.short(buf.len()))?;
            out.extend(vals.iter().take(flat.count()).map(|&v| Value::Int(v)));
            return Ok(());
        }
        self.decode_into(buf, start, out)
    }

    /// Unpacks an integer-only record at `offset` (negative counts from the end) into
    /// `out` without allocating, returning the number of values written.
    ///
    /// The format may contain only `b B h H i I l L q Q n N P ?` and `x`; `?` gives 0
    /// or 1. This is the fast path for fixed headers such as ZIP's `<IIIHH`.
    ///
    /// # Errors
    ///
    /// [`PackError::NotIntegerFormat`] for any other code,
    /// [`PackError::OutputTooSmall`] when `out` is shorter than [`Struct::count`],
    /// and the offset errors of [`Struct::unpack_from`].
    ///
    /// ```
    /// use netkit::pack::Struct;
    /// let s = Struct::new(">Hb")?;
    /// let mut out = [0i128; 2];
    /// s.unpack_ints_from(&[0xff, 0xfe, 0xff, 9], 1, &mut out)?;
    /// assert_eq!(out, [0xfeff, 9]);
    /// # Ok::<(), netkit::pack::PackError>(())
    /// ```
    #[inline]
    pub fn unpack_ints_from(
        &self,
        buf: &[u8],
        offset: isize,
        out: &mut [i128],
    ) -> Result<usize, PackError> {
        self.check_ints_output(out.len())?;
        let start = self.record_start(buf.len(), offset)?;
        self.ints_at(buf, start, out)
    }

    /// Reads the integer record at `buf[start..]` (inside `buf`) into `out`, which
    /// [`Struct::check_ints_output`] accepted.
    #[inline]
    fn ints_at(&self, buf: &[u8], start: usize, out: &mut [i128]) -> Result<usize, PackError> {
        let ok = match (&self.flat, &self.ints) {
            (Some(flat), _) => flat.read_ints(buf, start, out),
            (None, Ok(plan)) => plan.read(buf, start, out),
            (None, Err(e)) => return Err(e.clone()),
        };
        ok.ok_or_else(|| self.short(buf.len()))?;
        Ok(self.layout.values)
    }

    /// [`PackError::NotIntegerFormat`] for a format with other codes, and
    /// [`PackError::OutputTooSmall`] for an output of `len` values that cannot hold
    /// a record.
    #[inline]
    fn check_ints_output(&self, len: usize) -> Result<(), PackError> {
        if self.flat.is_none() {
            if let Err(e) = &self.ints {
                return Err(e.clone());
            }
        }
        let needed = self.layout.values;
        if len < needed {
            return Err(PackError::OutputTooSmall { needed, got: len });
        }
        Ok(())
    }

    /// Iterates over consecutive records in `buf`, as `struct.iter_unpack`; each
    /// record is a [`Values`], with no heap allocation for up to
    /// [`Values::INLINE`] values (but for the bytes of `c s p` values).
    ///
    /// Internal iteration (`for_each`, `fold`, `sum`, `map(..).sum()` and the
    /// other adapters built on `fold`) over an integer format of up to 8 values
    /// runs a loop compiled for the caller's closure, as fast as
    /// [`Struct::for_each_ints`]; a `for` loop calls `next` per record.
    ///
    /// # Errors
    ///
    /// [`PackError::IterZeroSize`] for a struct of size 0,
    /// [`PackError::IterNotMultiple`] when `buf.len()` is not a multiple of the size,
    /// and [`PackError::ZeroPascal`] for a `0p` format over a non-empty buffer.
    ///
    /// ```
    /// use netkit::pack::{Struct, Value};
    /// let s = Struct::new("<h")?;
    /// let all: Vec<_> = s.iter_unpack(&[1, 0, 2, 0])?.collect();
    /// assert_eq!(all, [[Value::Int(1)], [Value::Int(2)]]);
    /// let sum: i128 = s
    ///     .iter_unpack(&[1, 0, 2, 0, 0xff, 0xff])?
    ///     .map(|rec| rec[0].as_int().unwrap_or(0))
    ///     .sum();
    /// assert_eq!(sum, 2);
    /// # Ok::<(), netkit::pack::PackError>(())
    /// ```
    pub fn iter_unpack<'a>(&'a self, buf: &'a [u8]) -> Result<IterUnpack<'a>, PackError> {
        let size = self.layout.size;
        if size == 0 {
            return Err(PackError::IterZeroSize);
        }
        if buf.len() % size != 0 {
            return Err(PackError::IterNotMultiple {
                size,
                len: buf.len(),
            });
        }
        if let (Some(pos), false) = (self.zero_pascal, buf.is_empty()) {
            return Err(PackError::ZeroPascal { pos });
        }
        Ok(IterUnpack {
            st: self,
            buf,
            pos: 0,
        })
    }

    /// Iterates over consecutive records in `buf` without decoding them: each
    /// [`Record`] is a borrowed window that decodes on request, so iterating
    /// allocates nothing. With [`Record::ints_into`] this is the allocation-free
    /// `iter_unpack` for integer formats.
    ///
    /// # Errors
    ///
    /// As [`Struct::iter_unpack`].
    ///
    /// ```
    /// use netkit::pack::Struct;
    /// let s = Struct::new("!HH")?;
    /// let mut out = [0i128; 2];
    /// let mut sum = 0;
    /// for rec in s.iter_records(&[0, 1, 0, 2, 0, 3, 0, 4])? {
    ///     rec.ints_into(&mut out)?;
    ///     sum += out[0] * out[1];
    /// }
    /// assert_eq!(sum, 1 * 2 + 3 * 4);
    /// # Ok::<(), netkit::pack::PackError>(())
    /// ```
    pub fn iter_records<'a>(&'a self, buf: &'a [u8]) -> Result<Records<'a>, PackError> {
        self.iter_unpack(buf)?;
        Ok(Records::new(self, buf))
    }

    /// Calls `f` with the integer values of each consecutive record in `buf`, in
    /// order, and returns the number of records: `iter_unpack` for integer
    /// formats with no allocation per record. This is the fastest way through a
    /// buffer of records: for formats of up to 8 values without `?`, one loop
    /// compiled for `f` reads each record with one bounds check and a load, byte
    /// swap (big-endian) and mask per value.
    ///
    /// # Errors
    ///
    /// As [`Struct::iter_unpack`], and [`PackError::NotIntegerFormat`] as
    /// [`Struct::unpack_ints_from`]; `f` is not called when the arguments are bad.
    ///
    /// ```
    /// use netkit::pack::Struct;
    /// let s = Struct::new("<hB")?;
    /// let mut seen = Vec::new();
    /// let n = s.for_each_ints(&[0xff, 0xff, 7, 2, 0, 8], |f| seen.push((f[0], f[1])))?;
    /// assert_eq!((n, seen), (2, vec![(-1, 7), (2, 8)]));
    /// # Ok::<(), netkit::pack::PackError>(())
    /// ```
    pub fn for_each_ints<F: FnMut(&[i128])>(&self, buf: &[u8], f: F) -> Result<usize, PackError> {
        let plan = self.ints.as_ref().map_err(Clone::clone)?;
        self.iter_unpack(buf)?;
        let size = self.layout.size;
        if let Some(flat) = &self.flat {
            flat.fold(buf, 0, (), EachInts(f));
            return Ok(buf.len() / size);
        }
        // Scratch for formats without a flat plan; such a record is at least one
        // byte per value, so this is never larger than `buf`.
        let mut scratch = if buf.is_empty() {
            Vec::new()
        } else {
            vec![0i128; self.layout.values]
        };
        plan.for_each(buf, size, &mut scratch, f)
            .ok_or_else(|| self.short(buf.len()))
    }

    fn check_count(&self, values: &[Value]) -> Result<(), PackError> {
        if values.len() == self.layout.values {
            Ok(())
        } else {
            Err(PackError::WrongCount {
                expected: self.layout.values,
                got: values.len(),
            })
        }
    }

    /// Start of the record for `unpack_from` at `offset` in a buffer of `len` bytes.
    #[inline]
    fn record_start(&self, len: usize, offset: isize) -> Result<usize, PackError> {
        let size = self.layout.size;
        if let Ok(off) = usize::try_from(offset) {
            if off <= len && len - off >= size {
                return Ok(off);
            }
        }
        self.record_start_slow(len, offset)
    }

    /// [`Struct::record_start`] for negative offsets and records that do not fit.
    #[cold]
    fn record_start_slow(&self, len: usize, offset: isize) -> Result<usize, PackError> {
        self.resolve_offset(len, offset, Access::Unpack)
    }

    /// Where a record starts in a buffer of `len` bytes at `offset` (negative:
    /// from the end), as `pack_into` and `unpack_from` resolve it, with
    /// CPython's error for each call when it does not fit.
    fn resolve_offset(
        &self,
        len: usize,
        offset: isize,
        access: Access,
    ) -> Result<usize, PackError> {
        let size = self.layout.size;
        let mut off = offset as i128;
        if off < 0 {
            if off + size as i128 > 0 {
                return Err(match access {
                    Access::Pack => PackError::NoSpace { size, offset },
                    Access::Unpack => PackError::NotEnoughData { size, offset },
                });
            }
            if off + (len as i128) < 0 {
                return Err(PackError::OffsetOutOfRange { offset, len });
            }
            off += len as i128;
        }
        if (len as i128) - off < size as i128 {
            let required = (size as u128).saturating_add(off.max(0) as u128);
            let offset = off as isize;
            return Err(match access {
                Access::Pack => PackError::PackIntoTooSmall {
                    required,
                    size,
                    offset,
                    len,
                },
                Access::Unpack => PackError::UnpackFromTooSmall {
                    required,
                    size,
                    offset,
                    len,
                },
            });
        }
        Ok(off as usize)
    }

    #[cold]
    fn short(&self, got: usize) -> PackError {
        PackError::UnpackSize {
            expected: self.layout.size,
            got,
        }
    }

    /// The number of values to reserve for a record in `len` bytes: every value
    /// but an empty `s` or `p` takes at least one byte, so this is never more than
    /// the data can fill.
    #[inline]
    fn capacity(&self, len: usize) -> usize {
        self.layout
            .values
            .min(len.saturating_add(self.layout.items.len()))
    }

    /// Unpacks the record at `buf[start..]`, which is inside `buf`.
    #[inline]
    fn values_at(&self, buf: &[u8], start: usize) -> Result<Values, PackError> {
        match &self.flat {
            Some(flat) => flat.read_values(buf, start),
            None => self.values_general(buf, start),
        }
    }

    /// [`Struct::values_at`] for formats without a flat plan.
    #[inline(never)]
    fn values_general(&self, buf: &[u8], start: usize) -> Result<Values, PackError> {
        let rec = self.record_at(buf, start)?;
        let mut out = Values::with_capacity(self.capacity(rec.len()));
        codec::unpack_record(&self.layout, rec, &mut out)?;
        Ok(out)
    }

    /// Appends the values of the record at `buf[start..]` to `out`.
    fn decode_into(&self, buf: &[u8], start: usize, out: &mut Vec<Value>) -> Result<(), PackError> {
        let rec = self.record_at(buf, start)?;
        out.reserve(self.capacity(rec.len()));
        codec::unpack_record(&self.layout, rec, out)
    }

    /// The record at `buf[start..]`, or the error for a `0p` format (which
    /// CPython cannot unpack) or a record not inside `buf`.
    fn record_at<'b>(&self, buf: &'b [u8], start: usize) -> Result<&'b [u8], PackError> {
        if let Some(pos) = self.zero_pascal {
            return Err(PackError::ZeroPascal { pos });
        }
        let rest = buf.get(start..).unwrap_or_default();
        rest.get(..self.layout.size)
            .ok_or_else(|| self.short(rest.len()))
    }
}

/// [`Struct::for_each_ints`]'s callback, for [`FlatPlan::fold`].
struct EachInts<F>(F);

impl<F: FnMut(&[i128])> Each<()> for EachInts<F> {
    #[inline(always)]
    fn values<const N: usize>(&mut self, (): (), vals: [i128; N]) {
        (self.0)(&vals)
    }

    #[inline(always)]
    fn slice(&mut self, (): (), vals: &[i128]) {
        (self.0)(vals)
    }
}

/// [`IterUnpack::fold`]'s callback, for [`FlatPlan::fold`].
struct EachValues<G>(G);

impl<B, G: FnMut(B, Values) -> B> Each<B> for EachValues<G> {
    #[inline(always)]
    fn values<const N: usize>(&mut self, acc: B, vals: [i128; N]) -> B {
        (self.0)(
            acc,
            Values::ints::<N>(|k| vals.get(k).copied().unwrap_or(0)),
        )
    }

    #[inline(always)]
    fn slice(&mut self, acc: B, vals: &[i128]) -> B {
        (self.0)(acc, vals.iter().map(|&v| Value::Int(v)).collect())
    }
}

/// Iterator over the records of a buffer, from [`Struct::iter_unpack`].
#[derive(Debug, Clone)]
pub struct IterUnpack<'a> {
    st: &'a Struct,
    /// The whole buffer, a whole number of records.
    buf: &'a [u8],
    /// Start of the next record.
    pos: usize,
}

impl Iterator for IterUnpack<'_> {
    type Item = Values;

    #[inline(always)]
    fn next(&mut self) -> Option<Values> {
        let size = self.st.layout.size;
        if size == 0 || self.buf.len() - self.pos < size {
            return None;
        }
        let start = self.pos;
        self.pos += size;
        // Cannot fail: the record is inside `buf` and `0p` was rejected.
        self.st.values_at(self.buf, start).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.buf.len() - self.pos)
            .checked_div(self.st.layout.size)
            .unwrap_or(0);
        (n, Some(n))
    }

    #[inline]
    fn fold<B, G: FnMut(B, Values) -> B>(mut self, init: B, mut g: G) -> B {
        if let Some(flat) = &self.st.flat {
            return flat.fold(self.buf, self.pos, init, EachValues(g));
        }
        let mut acc = init;
        for v in self.by_ref() {
            acc = g(acc, v);
        }
        acc
    }
}

impl ExactSizeIterator for IterUnpack<'_> {}

/// Packs `values` with the format `fmt`, as `struct.pack`.
///
/// # Errors
///
/// Which call resolves an offset: CPython words its errors differently.
#[derive(Debug, Clone, Copy)]
enum Access {
    Pack,
    Unpack,
}

/// As [`Struct::new`] and [`Struct::pack`].
pub fn pack(fmt: &str, values: &[Value]) -> Result<Vec<u8>, PackError> {
    with_cached(fmt, |s| s.pack(values))
}

/// Unpacks `buf` (exactly the struct's size) with the format `fmt`, as `struct.unpack`.
///
/// # Errors
///
/// As [`Struct::new`] and [`Struct::unpack`].
pub fn unpack(fmt: &str, buf: &[u8]) -> Result<Values, PackError> {
    with_cached(fmt, |s| s.unpack(buf))
}

/// The size in bytes of the format `fmt`, as `struct.calcsize`.
///
/// # Errors
///
/// As [`Struct::new`].
pub fn calcsize(fmt: &str) -> Result<usize, PackError> {
    with_cached(fmt, |s| Ok(s.size()))
}

/// How many compiled formats each thread keeps for the module-level functions.
const CACHE_ENTRIES: usize = 8;

thread_local! {
    /// Recently used formats, most recent first, as CPython's `_struct` cache.
    static CACHE: RefCell<Vec<Rc<Struct>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the compiled `fmt`, compiling it only when it is not among the
/// thread's [`CACHE_ENTRIES`] most recently used formats.
fn with_cached<T>(
    fmt: &str,
    f: impl FnOnce(&Struct) -> Result<T, PackError>,
) -> Result<T, PackError> {
    let hit = CACHE.try_with(|c| {
        let mut cache = c.try_borrow_mut().ok()?;
        if let Some(st) = cache.first().filter(|s| s.format == fmt) {
            return Some(Rc::clone(st));
        }
        let i = cache.iter().position(|s| s.format == fmt)?;
        let recent = cache.get_mut(..=i)?;
        recent.rotate_right(1);
        recent.first().cloned()
    });
    let st = match hit {
        Ok(Some(st)) => st,
        _ => {
            let st = Rc::new(Struct::new(fmt)?);
            // A thread being torn down just skips the cache.
            let _ = CACHE.try_with(|c| {
                if let Ok(mut cache) = c.try_borrow_mut() {
                    cache.truncate(CACHE_ENTRIES - 1);
                    cache.insert(0, Rc::clone(&st));
                }
            });
            st
        }
    };
    f(&st)
}
