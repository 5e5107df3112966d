//! [`PackError`]: every way compiling a format, packing or unpacking can fail.
//!
//! Each variant corresponds to a CPython `struct.error` (or the `OverflowError` /
//! `SystemError` CPython raises in the same place), with the position, argument index
//! or sizes that make the message useful. Argument indices are 0-based positions in
//! the `values` slice. This file owns only the error type, not the checks.

use thiserror::Error;

/// An error from [`Struct::new`](super::Struct::new), packing or unpacking.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PackError {
    /// The format has a character that is not a format code (or whitespace between
    /// a repeat count and its code, or a byte-order prefix after the first position).
    #[error("bad char in struct format at {pos}: {ch:?}")]
    BadChar {
        /// Byte offset of the character in the format string.
        pos: usize,
        /// The offending character.
        ch: char,
    },
    /// `n`, `N` or `P` used with a standard-size prefix (`=`, `<`, `>`, `!`).
    #[error("bad char in struct format at {pos}: {code:?} is only allowed in native mode ('@' or no prefix)")]
    NativeOnly {
        /// Byte offset of the code in the format string.
        pos: usize,
        /// The code.
        code: char,
    },
    /// The format ends with a repeat count that has no code after it.
    #[error("repeat count given without format specifier at {pos}")]
    RepeatWithoutCode {
        /// Byte offset where the repeat count starts.
        pos: usize,
    },
    /// The format contains a NUL character.
    #[error("embedded null character in struct format at {pos}")]
    EmbeddedNul {
        /// Byte offset of the NUL.
        pos: usize,
    },
    /// A repeat count or the total size exceeds `isize::MAX` bytes.
    #[error("total struct size too long")]
    TooLong,
    /// `pack` got a different number of values than the format describes.
    #[error("pack expected {expected} items for packing (got {got})")]
    WrongCount {
        /// Number of values the format takes.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// An integer code got a float or bytes.
    #[error("required argument is not an integer (argument {index} for {code:?})")]
    NotAnInteger {
        /// Index of the value.
        index: usize,
        /// The format code.
        code: char,
    },
    /// A float code (`e`, `f`, `d`) got bytes.
    #[error("required argument is not a float (argument {index} for {code:?})")]
    NotAFloat {
        /// Index of the value.
        index: usize,
        /// The format code.
        code: char,
    },
    /// An `s` or `p` code got something other than bytes.
    #[error("argument for {code:?} must be a bytes object (argument {index})")]
    NotBytes {
        /// Index of the value.
        index: usize,
        /// The format code.
        code: char,
    },
    /// A `c` code got something other than bytes of length 1.
    #[error("char format requires a bytes object of length 1 (argument {index})")]
    CharLength {
        /// Index of the value.
        index: usize,
    },
    /// An integer does not fit its code.
    #[error("argument {index} out of range for {code:?} ({min}..={max})")]
    OutOfRange {
        /// Index of the value.
        index: usize,
        /// The format code.
        code: char,
        /// Smallest value the code accepts.
        min: i128,
        /// Largest value the code accepts.
        max: i128,
    },
    /// A finite float is too large for `e` or standard-size `f`.
    #[error("float too large to pack with {code} format (argument {index})")]
    FloatTooLarge {
        /// Index of the value.
        index: usize,
        /// The format code.
        code: char,
    },
    /// `unpack` got a buffer whose length is not the struct size.
    #[error("unpack requires a buffer of {expected} bytes, got {got}")]
    UnpackSize {
        /// The struct size.
        expected: usize,
        /// The buffer length.
        got: usize,
    },
    /// A negative offset reaches before the start of the buffer.
    #[error("offset {offset} out of range for {len}-byte buffer")]
    OffsetOutOfRange {
        /// The offset given.
        offset: isize,
        /// The buffer length.
        len: usize,
    },
    /// `unpack_from` with a negative offset too close to the end for the struct.
    #[error("not enough data to unpack {size} bytes at offset {offset}")]
    NotEnoughData {
        /// The struct size.
        size: usize,
        /// The offset given.
        offset: isize,
    },
    /// `pack_into` with a negative offset too close to the end for the struct.
    #[error("no space to pack {size} bytes at offset {offset}")]
    NoSpace {
        /// The struct size.
        size: usize,
        /// The offset given.
        offset: isize,
    },
    /// `pack_into`: the buffer is too short from the offset on.
    #[error("pack_into requires a buffer of at least {required} bytes for packing {size} bytes at offset {offset} (actual buffer size is {len})")]
    PackIntoTooSmall {
        /// Bytes needed: offset plus struct size.
        required: u128,
        /// The struct size.
        size: usize,
        /// The offset, after adding the length to a negative one.
        offset: isize,
        /// The buffer length.
        len: usize,
    },
    /// `unpack_from`: the buffer is too short from the offset on.
    #[error("unpack_from requires a buffer of at least {required} bytes for unpacking {size} bytes at offset {offset} (actual buffer size is {len})")]
    UnpackFromTooSmall {
        /// Bytes needed: offset plus struct size.
        required: u128,
        /// The struct size.
        size: usize,
        /// The offset, after adding the length to a negative one.
        offset: isize,
        /// The buffer length.
        len: usize,
    },
    /// `iter_unpack` with a struct of size 0.
    #[error("cannot iteratively unpack with a struct of length 0")]
    IterZeroSize,
    /// `iter_unpack` with a buffer whose length is not a multiple of the size.
    #[error("iterative unpacking requires a buffer of a multiple of {size} bytes, got {len}")]
    IterNotMultiple {
        /// The struct size.
        size: usize,
        /// The buffer length.
        len: usize,
    },
    /// Unpacking a `0p` item, which CPython rejects (it cannot hold a length byte).
    #[error("cannot unpack a zero-length pascal string ('0p') at format position {pos}")]
    ZeroPascal {
        /// Byte offset of the `p` code in the format string.
        pos: usize,
    },
    /// The packed result could not be allocated.
    #[error("cannot allocate {size} bytes for the packed struct")]
    Alloc {
        /// The struct size.
        size: usize,
    },
    /// [`Struct::unpack_ints_from`](super::Struct::unpack_ints_from) on a format
    /// with a code that does not unpack to an integer.
    #[error("format code {code:?} at {pos} does not unpack to an integer")]
    NotIntegerFormat {
        /// Byte offset of the code in the format string.
        pos: usize,
        /// The code.
        code: char,
    },
    /// The output slice is shorter than the number of values.
    #[error("output holds {got} values, the format unpacks {needed}")]
    OutputTooSmall {
        /// Number of values the format unpacks.
        needed: usize,
        /// Length of the output slice.
        got: usize,
    },
}
