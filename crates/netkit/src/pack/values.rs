//! [`Values`]: the values of one unpacked record, what Python's `struct.unpack`
//! returns as a tuple.
//!
//! Up to [`Values::INLINE`] values are stored inline, so unpacking a small record
//! allocates nothing (but the `bytes` of `c s p` values); longer records spill to
//! one `Vec`. A `Values` dereferences to `[Value]`, so it indexes, iterates and
//! compares like a slice or a `Vec<Value>`. Decoding the values is `codec.rs`'s and
//! `ints.rs`'s job, not this file's.

use std::fmt;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};

use super::Value;

/// The values unpacked from one record, like the tuple Python's `struct.unpack`
/// returns: up to [`Values::INLINE`] of them without a heap allocation.
///
/// It dereferences to `[Value]` (index it, iterate it, take its `len`), compares
/// equal to slices, arrays and `Vec`s of [`Value`], and converts into a
/// `Vec<Value>` with [`Values::into_vec`].
///
/// ```
/// use netkit::pack::{Struct, Value, Values};
/// let v: Values = Struct::new("<hB")?.unpack(&[0xff, 0xff, 7])?;
/// assert_eq!(v, [Value::Int(-1), Value::Int(7)]);
/// assert_eq!((v.len(), v[1].as_int()), (2, Some(7)));
/// assert!(v.is_inline());
/// let sum: i128 = v.iter().filter_map(Value::as_int).sum();
/// assert_eq!(sum, 6);
/// let owned: Vec<Value> = v.into_vec();
/// assert_eq!(owned.len(), 2);
/// # Ok::<(), netkit::pack::PackError>(())
/// ```
pub struct Values {
    repr: Repr,
}

/// Where the values are. The inline variant is large on purpose: it is the
/// storage that saves the allocation.
#[allow(clippy::large_enum_variant)]
enum Repr {
    /// The first `len` slots of `vals`; the rest hold [`FILL`].
    Inline {
        len: u8,
        /// Whether a slot may own heap memory (a `Bytes` value), so that dropping
        /// must look at the slots. Integer, float and bool records never do, and
        /// their drop costs nothing.
        owns: bool,
        /// Never dropped as a whole: [`Values`]'s `Drop` frees what the first
        /// `len` slots own when `owns` is set, and the other slots own nothing.
        vals: ManuallyDrop<[Value; INLINE]>,
    },
    /// More than [`INLINE`] values. Freed by [`Values`]'s `Drop`, which keeps
    /// the drop of inline values down to two compares.
    Heap(ManuallyDrop<Vec<Value>>),
}

/// How many values [`Values`] holds without allocating.
const INLINE: usize = 8;

/// What an unused inline slot holds: a value that owns nothing.
const FILL: Value = Value::Int(0);

impl Values {
    /// How many values are stored without a heap allocation.
    pub const INLINE: usize = INLINE;

    /// No values.
    #[inline]
    pub const fn new() -> Values {
        Values {
            repr: Repr::Inline {
                len: 0,
                owns: false,
                vals: ManuallyDrop::new([FILL; INLINE]),
            },
        }
    }

    /// Room for `n` values: inline for up to [`Values::INLINE`], else one `Vec`
    /// of that capacity.
    #[inline]
    pub(crate) fn with_capacity(n: usize) -> Values {
        if n <= INLINE {
            Values::new()
        } else {
            Values {
                repr: Repr::Heap(ManuallyDrop::new(Vec::with_capacity(n))),
            }
        }
    }

    /// `N` integers, value `k` being `val(k)`, stored inline.
    #[inline(always)]
    pub(crate) fn ints<const N: usize>(val: impl Fn(usize) -> i128) -> Values {
        const { assert!(N <= INLINE) };
        Values {
            repr: Repr::Inline {
                len: N as u8,
                owns: false,
                vals: ManuallyDrop::new({
                    // Every slot an integer, then the first `N` given their values:
                    // the compiler writes the discriminants as constants.
                    let mut vals = [FILL; INLINE];
                    for (k, slot) in vals.iter_mut().take(N).enumerate() {
                        if let Value::Int(i) = slot {
                            *i = val(k);
                        }
                    }
                    vals
                }),
            },
        }
    }

    /// Appends `v`, moving the values to the heap when the inline slots are full.
    #[inline]
    pub fn push(&mut self, v: Value) {
        match &mut self.repr {
            Repr::Inline { len, owns, vals } => {
                if let Some(slot) = vals.get_mut(usize::from(*len)) {
                    *owns |= matches!(v, Value::Bytes(_));
                    // The slot held `FILL`, which owns nothing.
                    mem::forget(mem::replace(slot, v));
                    *len += 1;
                    return;
                }
                let mut heap = Vec::with_capacity(2 * INLINE);
                heap.extend(take_inline(len, owns, vals));
                heap.push(v);
                self.repr = Repr::Heap(ManuallyDrop::new(heap));
            }
            Repr::Heap(heap) => heap.push(v),
        }
    }

    /// The values as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[Value] {
        match &self.repr {
            Repr::Inline { len, vals, .. } => vals.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(heap) => heap.as_slice(),
        }
    }

    /// The values as a mutable slice.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Value] {
        match &mut self.repr {
            Repr::Inline { len, owns, vals } => {
                // The caller may store bytes in a slot.
                *owns = true;
                vals.get_mut(..usize::from(*len)).unwrap_or_default()
            }
            Repr::Heap(heap) => heap.as_mut_slice(),
        }
    }

    /// Whether the values are stored inline (at most [`Values::INLINE`] of them),
    /// with no heap allocation of their own.
    #[inline]
    pub fn is_inline(&self) -> bool {
        matches!(self.repr, Repr::Inline { .. })
    }

    /// The values as a `Vec`, allocating only when they are inline.
    pub fn into_vec(mut self) -> Vec<Value> {
        match &mut self.repr {
            Repr::Inline { len, owns, vals } => take_inline(len, owns, vals).collect(),
            Repr::Heap(heap) => mem::take(&mut **heap),
        }
    }
}

/// Moves the first `len` values out of inline slots, leaving none behind.
fn take_inline<'a>(
    len: &mut u8,
    owns: &mut bool,
    vals: &'a mut [Value; INLINE],
) -> impl Iterator<Item = Value> + 'a {
    let n = usize::from(mem::take(len));
    *owns = false;
    vals.iter_mut().take(n).map(|v| mem::replace(v, FILL))
}

impl Drop for Values {
    #[inline]
    fn drop(&mut self) {
        if !matches!(self.repr, Repr::Inline { owns: false, .. }) {
            self.free();
        }
    }
}

impl Values {
    /// Frees what the values own: the heap `Vec`, or the `bytes` of inline
    /// `Bytes` values.
    #[inline(never)]
    fn free(&mut self) {
        match &mut self.repr {
            Repr::Inline { vals, len, owns } => {
                for v in vals.iter_mut().take(usize::from(*len)) {
                    if let Value::Bytes(b) = v {
                        drop(mem::take(b));
                    }
                }
                *owns = false;
            }
            Repr::Heap(heap) => drop(mem::take(&mut **heap)),
        }
    }
}

impl Default for Values {
    #[inline]
    fn default() -> Values {
        Values::new()
    }
}

impl Clone for Values {
    fn clone(&self) -> Values {
        self.as_slice().iter().cloned().collect()
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Deref for Values {
    type Target = [Value];

    #[inline]
    fn deref(&self) -> &[Value] {
        self.as_slice()
    }
}

impl DerefMut for Values {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Value] {
        self.as_mut_slice()
    }
}

impl AsRef<[Value]> for Values {
    #[inline]
    fn as_ref(&self) -> &[Value] {
        self.as_slice()
    }
}

impl std::borrow::Borrow<[Value]> for Values {
    #[inline]
    fn borrow(&self) -> &[Value] {
        self.as_slice()
    }
}

impl FromIterator<Value> for Values {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Values {
        let iter = iter.into_iter();
        let mut out = Values::with_capacity(iter.size_hint().0);
        out.extend(iter);
        out
    }
}

impl Extend<Value> for Values {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl From<Vec<Value>> for Values {
    /// Takes the `Vec` as it is (no copy), even when it is short.
    #[inline]
    fn from(v: Vec<Value>) -> Values {
        Values {
            repr: Repr::Heap(ManuallyDrop::new(v)),
        }
    }
}

impl From<Values> for Vec<Value> {
    #[inline]
    fn from(v: Values) -> Vec<Value> {
        v.into_vec()
    }
}

impl<const N: usize> From<[Value; N]> for Values {
    #[inline]
    fn from(v: [Value; N]) -> Values {
        v.into_iter().collect()
    }
}

impl PartialEq for Values {
    #[inline]
    fn eq(&self, other: &Values) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<[Value]> for Values {
    #[inline]
    fn eq(&self, other: &[Value]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[Value]> for Values {
    #[inline]
    fn eq(&self, other: &&[Value]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[Value; N]> for Values {
    #[inline]
    fn eq(&self, other: &[Value; N]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<Value>> for Values {
    #[inline]
    fn eq(&self, other: &Vec<Value>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Values> for [Value] {
    #[inline]
    fn eq(&self, other: &Values) -> bool {
        self == other.as_slice()
    }
}

impl PartialEq<Values> for &[Value] {
    #[inline]
    fn eq(&self, other: &Values) -> bool {
        *self == other.as_slice()
    }
}

impl<const N: usize> PartialEq<Values> for [Value; N] {
    #[inline]
    fn eq(&self, other: &Values) -> bool {
        self == other.as_slice()
    }
}

impl PartialEq<Values> for Vec<Value> {
    #[inline]
    fn eq(&self, other: &Values) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;

    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<'a> IntoIterator for &'a mut Values {
    type Item = &'a mut Value;
    type IntoIter = std::slice::IterMut<'a, Value>;

    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.as_mut_slice().iter_mut()
    }
}

impl IntoIterator for Values {
    type Item = Value;
    type IntoIter = IntoIter;

    #[inline]
    fn into_iter(self) -> IntoIter {
        IntoIter {
            values: self,
            next: 0,
        }
    }
}

/// The values of a [`Values`], by value.
#[derive(Debug)]
pub struct IntoIter {
    values: Values,
    /// Index of the next value; the slots before it hold [`FILL`].
    next: usize,
}

impl Iterator for IntoIter {
    type Item = Value;

    #[inline]
    fn next(&mut self) -> Option<Value> {
        let slot = self.values.as_mut_slice().get_mut(self.next)?;
        self.next += 1;
        Some(mem::replace(slot, FILL))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.values.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for IntoIter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    #[test]
    fn inline_then_heap() {
        let mut v = Values::new();
        assert!(v.is_empty() && v.is_inline());
        for i in 0..INLINE as i128 {
            v.push(Value::Int(i));
        }
        assert!(v.is_inline());
        assert_eq!(v.len(), INLINE);
        v.push(bytes("spill"));
        assert!(!v.is_inline());
        assert_eq!(v.len(), INLINE + 1);
        assert_eq!(v[INLINE], bytes("spill"));
        assert_eq!(v[3], Value::Int(3));
        let w = v.clone();
        assert_eq!(v, w);
        assert_eq!(v.into_vec(), w);
    }

    #[test]
    fn bytes_are_freed_and_moved_out() {
        let v: Values = [bytes("a"), Value::Int(1), bytes("bc")].into();
        assert!(v.is_inline());
        assert_eq!(format!("{v:?}"), format!("{:?}", v.as_slice()));
        let c = v.clone();
        let all: Vec<Value> = v.into_iter().collect();
        assert_eq!(all, c);
        let mut it = c.clone().into_iter();
        assert_eq!(it.len(), 3);
        assert_eq!(it.next(), Some(bytes("a")));
        assert_eq!(it.len(), 2);
        drop(it);
        assert_eq!(
            c.clone().into_vec(),
            [bytes("a"), Value::Int(1), bytes("bc")]
        );
    }

    #[test]
    fn mutation_through_the_slice_is_owned() {
        let mut v: Values = [Value::Int(1), Value::Int(2)].into();
        v[1] = bytes("owned");
        for x in &mut v {
            if let Value::Int(i) = x {
                *i += 1;
            }
        }
        assert_eq!(v, [Value::Int(2), bytes("owned")]);
        assert_eq!(&v[..], &[Value::Int(2), bytes("owned")][..]);
    }

    #[test]
    fn comparisons_and_conversions() {
        let v = Values::ints::<3>(|k| k as i128 * 10);
        let want = vec![Value::Int(0), Value::Int(10), Value::Int(20)];
        assert!(v == want);
        assert!(want == v);
        assert!(v == want[..]);
        assert!(want[..] == v);
        let slice: &[Value] = &want;
        assert!(v == slice);
        assert!(slice == v);
        assert!(v == [Value::Int(0), Value::Int(10), Value::Int(20)]);
        assert!([Value::Int(0), Value::Int(10), Value::Int(20)] == v);
        assert_ne!(v, [Value::Int(0)]);
        assert_eq!(Values::from(want.clone()), v);
        assert_eq!(Vec::from(v), want);
        assert_eq!(Values::default(), Values::new());
        let many: Values = (0..20).map(Value::Int).collect();
        assert!(!many.is_inline());
        assert_eq!(many.iter().filter_map(Value::as_int).sum::<i128>(), 190);
        assert_eq!(many.into_iter().count(), 20);
    }
}
