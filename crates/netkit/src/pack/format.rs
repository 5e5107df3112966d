//! Format-string compilation: the byte-order prefix, repeat counts, codes, native
//! sizes and alignment, with CPython's rules and checked arithmetic throughout.
//!
//! The result is a [`Layout`]: a flat list of [`Item`]s, each a code with its byte
//! offset and repeat count, plus the total size and number of values. Pad bytes
//! (`x`) take no item, since packing zeroes the whole record first. Reading and
//! writing the items is `codec.rs`'s job.

use std::ffi::{c_int, c_long, c_longlong, c_short};
use std::mem::{align_of, size_of};

use super::PackError;

/// Byte order of multi-byte items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

/// What an item reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `c`: one byte, as bytes of length 1.
    Char,
    /// `b h i l q n` (and native `P` is unsigned, see `Ptr`): a signed integer.
    Signed,
    /// `B H I L Q N`: an unsigned integer.
    Unsigned,
    /// Native `P`: packs `i64::MIN..=u64::MAX` like `PyLong_AsVoidPtr`, unpacks unsigned.
    Ptr,
    /// `?`: packs truthiness, unpacks any nonzero byte as `True`.
    Bool,
    /// `e`: binary16.
    Half,
    /// `f`: binary32.
    Float,
    /// `d`: binary64.
    Double,
    /// `s`: fixed-length bytes.
    Bytes,
    /// `p`: Pascal string (length byte, then bytes).
    Pascal,
}

/// One compiled format item: `count` elements of `size` bytes from `offset`
/// (for `s` and `p`, one element of `count` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    /// What the item holds.
    pub kind: Kind,
    /// The format code, for messages.
    pub code: u8,
    /// Byte offset of the code in the format string, for messages.
    pub pos: usize,
    /// Byte offset of the item in the record.
    pub offset: usize,
    /// Repeat count (byte length for `s` and `p`).
    pub count: usize,
    /// Size of one element in bytes (1 for `s` and `p`).
    pub size: usize,
}

impl Item {
    /// Number of values the item packs and unpacks.
    pub fn values(&self) -> usize {
        match self.kind {
            Kind::Bytes | Kind::Pascal => 1,
            _ => self.count,
        }
    }
}

/// A compiled format.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Native mode (`@` or no prefix): native sizes and alignment.
    pub native: bool,
    /// Byte order.
    pub order: Order,
    /// Record size in bytes.
    pub size: usize,
    /// Number of values.
    pub values: usize,
    /// The items in format order.
    pub items: Vec<Item>,
}

/// Size and alignment of a code; `None` for a character that is not a code.
fn entry(code: u8, native: bool) -> Option<(Kind, usize, usize)> {
    use Kind::*;
    let std_entry = |kind, size| Some((kind, size, 1));
    let nat = |kind, size, align| Some((kind, size, align));
    if native {
        match code {
            b'c' => nat(Char, 1, 1),
            b'b' => nat(Signed, 1, 1),
            b'B' => nat(Unsigned, 1, 1),
            b'?' => nat(Bool, 1, 1),
            b'h' => nat(Signed, size_of::<c_short>(), align_of::<c_short>()),
            b'H' => nat(Unsigned, size_of::<c_short>(), align_of::<c_short>()),
            b'i' => nat(Signed, size_of::<c_int>(), align_of::<c_int>()),
            b'I' => nat(Unsigned, size_of::<c_int>(), align_of::<c_int>()),
            b'l' => nat(Signed, size_of::<c_long>(), align_of::<c_long>()),
            b'L' => nat(Unsigned, size_of::<c_long>(), align_of::<c_long>()),
            b'q' => nat(Signed, size_of::<c_longlong>(), align_of::<c_longlong>()),
            b'Q' => nat(Unsigned, size_of::<c_longlong>(), align_of::<c_longlong>()),
            b'n' => nat(Signed, size_of::<isize>(), align_of::<isize>()),
            b'N' => nat(Unsigned, size_of::<usize>(), align_of::<usize>()),
            b'P' => nat(Ptr, size_of::<usize>(), align_of::<usize>()),
            b'e' => nat(Half, 2, 2),
            b'f' => nat(Float, 4, align_of::<f32>()),
            b'd' => nat(Double, 8, align_of::<f64>()),
            b's' => nat(Bytes, 1, 1),
            b'p' => nat(Pascal, 1, 1),
            _ => None,
        }
    } else {
        match code {
            b'c' => std_entry(Char, 1),
            b'b' => std_entry(Signed, 1),
            b'B' => std_entry(Unsigned, 1),
            b'?' => std_entry(Bool, 1),
            b'h' => std_entry(Signed, 2),
            b'H' => std_entry(Unsigned, 2),
            b'i' | b'l' => std_entry(Signed, 4),
            b'I' | b'L' => std_entry(Unsigned, 4),
            b'q' => std_entry(Signed, 8),
            b'Q' => std_entry(Unsigned, 8),
            b'e' => std_entry(Half, 2),
            b'f' => std_entry(Float, 4),
            b'd' => std_entry(Double, 8),
            b's' => std_entry(Bytes, 1),
            b'p' => std_entry(Pascal, 1),
            _ => None,
        }
    }
}

/// C's `isspace` in the "C" locale, which CPython uses between codes.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The character starting at byte `pos` of `fmt`, for messages.
fn char_at(fmt: &str, pos: usize) -> char {
    fmt.get(pos..)
        .and_then(|s| s.chars().next())
        .unwrap_or('\u{fffd}')
}

const MAX_SIZE: usize = isize::MAX as usize;

/// Compiles `fmt` as CPython's `struct.Struct(fmt)` does.
pub(crate) fn compile(fmt: &str) -> Result<Layout, PackError> {
    let bytes = fmt.as_bytes();
    if let Some(pos) = bytes.iter().position(|&c| c == 0) {
        return Err(PackError::EmbeddedNul { pos });
    }
    let (native, order, start) = match bytes.first() {
        Some(b'@') => (true, native_order(), 1),
        Some(b'=') => (false, native_order(), 1),
        Some(b'<') => (false, Order::Little, 1),
        Some(b'>') | Some(b'!') => (false, Order::Big, 1),
        _ => (true, native_order(), 0),
    };
    let mut layout = Layout {
        native,
        order,
        size: 0,
        values: 0,
        items: Vec::new(),
    };
    let mut i = start;
    while let Some(&c) = bytes.get(i) {
        if is_space(c) {
            i += 1;
            continue;
        }
        let count_pos = i;
        let mut count = 1usize;
        if c.is_ascii_digit() {
            count = 0;
            while let Some(&d) = bytes.get(i).filter(|d| d.is_ascii_digit()) {
                count = count
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(usize::from(d - b'0')))
                    .filter(|&n| n <= MAX_SIZE)
                    .ok_or(PackError::TooLong)?;
                i += 1;
            }
            if i >= bytes.len() {
                return Err(PackError::RepeatWithoutCode { pos: count_pos });
            }
        }
        let pos = i;
        let code = bytes.get(pos).copied().unwrap_or(0);
        i += 1;
        let (kind, size, align) = match entry(code, native) {
            Some(e) => e,
            None if !native && matches!(code, b'n' | b'N' | b'P') => {
                return Err(PackError::NativeOnly {
                    pos,
                    code: char::from(code),
                })
            }
            None if code == b'x' => (Kind::Char, 1, 1),
            None => {
                return Err(PackError::BadChar {
                    pos,
                    ch: char_at(fmt, pos),
                })
            }
        };
        let offset = align_up(layout.size, align).ok_or(PackError::TooLong)?;
        let bytes_len = count
            .checked_mul(size)
            .and_then(|n| n.checked_add(offset))
            .filter(|&n| n <= MAX_SIZE)
            .ok_or(PackError::TooLong)?;
        layout.size = bytes_len;
        if code == b'x' {
            continue;
        }
        let item = Item {
            kind,
            code,
            pos,
            offset,
            count,
            size,
        };
        if item.values() == 0 {
            continue;
        }
        layout.values = layout
            .values
            .checked_add(item.values())
            .ok_or(PackError::TooLong)?;
        layout.items.push(item);
    }
    Ok(layout)
}

/// Rounds `size` up to a multiple of `align` (a power of two), within `isize::MAX`.
fn align_up(size: usize, align: usize) -> Option<usize> {
    let mask = align.checked_sub(1)?;
    size.checked_add(mask)
        .map(|n| n & !mask)
        .filter(|&n| n <= MAX_SIZE)
}

fn native_order() -> Order {
    if cfg!(target_endian = "big") {
        Order::Big
    } else {
        Order::Little
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(fmt: &str) -> Result<usize, PackError> {
        compile(fmt).map(|l| l.size)
    }

    #[test]
    fn calcsize_matches_cpython() {
        // Expected sizes from python3 -c 'import struct; print(struct.calcsize(f))'
        // on x86_64 Linux.
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("<", 0),
            ("@ic", 5),
            ("ic", 5),
            ("@ci", 8),
            ("@cd", 16),
            ("@ce", 4),
            ("<ic", 5),
            ("4s 2i", 12),
            (" 4s", 4),
            ("i ", 4),
            ("0s", 0),
            ("0x", 0),
            ("0p", 0),
            ("@0i", 0),
            ("n", 8),
            ("@?", 1),
            ("@qc", 9),
            ("c0i", 4),
            ("ci0c", 8),
            ("@e", 2),
            ("@hl", 16),
            ("s", 1),
            ("x", 1),
            ("9223372036854775807s", 9223372036854775807),
            ("<IIIHH", 16),
            ("!I", 4),
            ("=l", 4),
            ("l", 8),
            ("<q", 8),
            ("@P", 8),
            ("@N", 8),
            ("bhilqnNP", 48),
            ("<bhilq", 19),
            ("cxh", 4),
            ("ch\t\n\x0b\x0c\r i", 8),
            ("3x", 3),
            ("c3xd", 16),
            ("5p", 5),
            ("@f?d", 16),
            ("=efd", 14),
        ];
        for (fmt, want) in cases {
            assert_eq!(size(fmt), Ok(*want), "calcsize({fmt:?})");
        }
    }

    #[test]
    fn format_errors_match_cpython() {
        use PackError::*;
        let cases: &[(&str, PackError)] = &[
            ("4 s", BadChar { pos: 1, ch: ' ' }),
            ("<n", NativeOnly { pos: 1, code: 'n' }),
            ("!P", NativeOnly { pos: 1, code: 'P' }),
            ("=N", NativeOnly { pos: 1, code: 'N' }),
            ("99999999999999999999s", TooLong),
            ("9223372036854775808s", TooLong),
            ("4611686018427387904i", TooLong),
            ("9223372036854775807sc", TooLong),
            ("1", RepeatWithoutCode { pos: 0 }),
            ("ii12", RepeatWithoutCode { pos: 2 }),
            ("\0", EmbeddedNul { pos: 0 }),
            ("i\0", EmbeddedNul { pos: 1 }),
            (" <i", BadChar { pos: 1, ch: '<' }),
            ("<i<", BadChar { pos: 2, ch: '<' }),
            ("i@", BadChar { pos: 1, ch: '@' }),
            ("y", BadChar { pos: 0, ch: 'y' }),
            ("iié", BadChar { pos: 2, ch: 'é' }),
            ("-1i", BadChar { pos: 0, ch: '-' }),
        ];
        for (fmt, want) in cases {
            assert_eq!(size(fmt).as_ref(), Err(want), "calcsize({fmt:?})");
        }
    }

    #[test]
    fn items_have_offsets_and_counts() {
        let l = compile("@c3xh2s0i?").unwrap();
        let got: Vec<(u8, usize, usize)> = l
            .items
            .iter()
            .map(|i| (i.code, i.offset, i.count))
            .collect();
        assert_eq!(
            got,
            vec![(b'c', 0, 1), (b'h', 4, 1), (b's', 6, 2), (b'?', 8, 1)]
        );
        assert_eq!((l.size, l.values), (9, 4));
        let l = compile("0s0p0c").unwrap();
        assert_eq!((l.size, l.values, l.items.len()), (0, 2, 2));
    }
}
