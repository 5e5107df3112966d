//! [`Records`] and [`Record`]: iterating over a buffer of records without decoding
//! them up front, for [`Struct::iter_records`](super::Struct::iter_records).
//!
//! A [`Record`] is a borrowed window on one record (with the whole buffer around it,
//! which lets the integer reader use plain 8-byte loads); it decodes only what is
//! asked of it, so iterating allocates nothing. Format compilation and the
//! readers themselves live in `format.rs`, `ints.rs` and `codec.rs`.

use super::{PackError, Struct, Values};

/// Iterator over the records of a buffer, from
/// [`Struct::iter_records`](super::Struct::iter_records).
#[derive(Debug, Clone)]
pub struct Records<'a> {
    st: &'a Struct,
    /// The whole buffer (a whole number of records).
    buf: &'a [u8],
    /// Start of the next record.
    pos: usize,
}

impl<'a> Records<'a> {
    /// Records of `st` over `buf`, whose length the caller checked is a multiple
    /// of a non-zero record size.
    pub(crate) fn new(st: &'a Struct, buf: &'a [u8]) -> Records<'a> {
        Records { st, buf, pos: 0 }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        let size = self.st.size();
        if size == 0 || self.buf.len() - self.pos < size {
            return None;
        }
        let rec = Record {
            st: self.st,
            buf: self.buf,
            start: self.pos,
        };
        self.pos += size;
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.buf.len() - self.pos)
            .checked_div(self.st.size())
            .unwrap_or(0);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Records<'_> {}

/// One record of a buffer, decoded on request.
///
/// ```
/// use netkit::pack::{Struct, Value};
/// let s = Struct::new(">Hh")?;
/// let rec = s.iter_records(&[1, 2, 0xff, 0xfe])?.next().unwrap();
/// assert_eq!(rec.bytes(), [1, 2, 0xff, 0xfe]);
/// assert_eq!(rec.int(1), Some(-2));
/// assert_eq!(rec.unpack()?, [Value::Int(0x102), Value::Int(-2)]);
/// # Ok::<(), netkit::pack::PackError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    st: &'a Struct,
    /// The whole buffer the record is in.
    buf: &'a [u8],
    /// Where the record starts in `buf` (it lies wholly inside).
    start: usize,
}

impl<'a> Record<'a> {
    /// The record's bytes ([`Struct::size`] of them).
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
            .get(self.start..self.start + self.st.size())
            .unwrap_or_default()
    }

    /// Reads every value of an integer-only record into `out`, as
    /// [`Struct::unpack_ints_from`], without allocating; returns the number of
    /// values written.
    ///
    /// # Errors
    ///
    /// [`PackError::NotIntegerFormat`] and [`PackError::OutputTooSmall`], as
    /// [`Struct::unpack_ints_from`].
    #[inline]
    pub fn ints_into(&self, out: &mut [i128]) -> Result<usize, PackError> {
        self.st.check_ints_output(out.len())?;
        self.st.ints_at(self.buf, self.start, out)
    }

    /// Value number `index` of an integer-only record (`?` gives 0 or 1); `None`
    /// for an index past the last value or a format with other codes.
    pub fn int(&self, index: usize) -> Option<i128> {
        self.st.ints.as_ref().ok()?.read_one(self.bytes(), 0, index)
    }

    /// Every value of the record, as [`Struct::unpack`].
    ///
    /// # Errors
    ///
    /// [`PackError::ZeroPascal`] for a format with a `0p` item.
    pub fn unpack(&self) -> Result<Values, PackError> {
        self.st.values_at(self.buf, self.start)
    }
}
