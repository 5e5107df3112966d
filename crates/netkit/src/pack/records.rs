//! [`Records`] and [`Record`]: iterating over a buffer of records without decoding
//! them up front, for [`Struct::iter_records`](super::Struct::iter_records).
//!
//! A [`Record`] is a borrowed window on one record (plus the rest of the buffer,
//! which lets the integer reader use plain 8-byte loads); it decodes only what is
//! asked of it, so iterating allocates nothing. Format compilation and the
//! readers themselves live in `format.rs`, `ints.rs` and `codec.rs`.

use super::{PackError, Struct, Value};

/// Iterator over the records of a buffer, from
/// [`Struct::iter_records`](super::Struct::iter_records).
#[derive(Debug, Clone)]
pub struct Records<'a> {
    st: &'a Struct,
    /// The records not yet yielded (a whole number of them).
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    /// Records of `st` over `buf`, whose length the caller checked is a multiple
    /// of a non-zero record size.
    pub(crate) fn new(st: &'a Struct, buf: &'a [u8]) -> Records<'a> {
        Records { st, rest: buf }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        let size = self.st.size();
        if size == 0 || self.rest.len() < size {
            return None;
        }
        let rec = Record {
            st: self.st,
            rest: self.rest,
        };
        self.rest = self.rest.get(size..).unwrap_or_default();
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len().checked_div(self.st.size()).unwrap_or(0);
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
    /// The record followed by the rest of the buffer.
    rest: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's bytes ([`Struct::size`] of them).
    pub fn bytes(&self) -> &'a [u8] {
        self.rest.get(..self.st.size()).unwrap_or_default()
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
        let plan = self.st.ints.as_ref().map_err(Clone::clone)?;
        let needed = self.st.count();
        if out.len() < needed {
            return Err(PackError::OutputTooSmall {
                needed,
                got: out.len(),
            });
        }
        // The iterator only yields records that lie wholly inside `rest`.
        match plan.read(self.rest, 0, out) {
            Some(()) => Ok(needed),
            None => self.st.unpack_ints_from(self.rest, 0, out),
        }
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
    pub fn unpack(&self) -> Result<Vec<Value>, PackError> {
        self.st.unpack(self.bytes())
    }
}
