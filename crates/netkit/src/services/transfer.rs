//! The file-transfer wire format shared by `netkit send` and the `receive` service:
//! the per-file [`Header`], the receiver's [`Reply`] records, the [`Status`] codes and
//! the rules for a safe relative [`path`](check_path). Everything is packed with
//! [`crate::pack`] in network byte order, so a Python client needs only `struct`.
//!
//! In scope: encoding, decoding and validating bytes. Out of scope: sockets, files
//! and the receiver's state machine (see [`super::receive`]).
//!
//! # The conversation
//!
//! A connection carries any number of files, one after the other. For each file:
//!
//! 1. The sender sends a header: the fixed part (format `!4sBBHQIqI`, 32 bytes),
//!    then `path_len` bytes of path.
//! 2. Unless the header's flags have [`FLAG_NO_OFFER`], the receiver answers with one
//!    reply: an **offer** (kind 1, status 0, `value` = N, the bytes it already holds
//!    of this very file from an interrupted transfer), or a **result** (kind 2) that
//!    refuses the file, in which case no body follows.
//! 3. After an offer the sender sends the body from byte N to the end
//!    (`size - N` bytes); with [`FLAG_NO_OFFER`] it sends the whole body at once,
//!    without waiting (a refused body is read and discarded by the receiver).
//! 4. The receiver answers with a result: status 0 when the file is stored under
//!    its final name (`value` = its size), otherwise an error status and a message.
//!
//! A header that cannot be trusted (bad magic, unknown version or flags, path longer
//! than [`MAX_PATH`]) gets a result with [`Status::BadHeader`] and the receiver closes
//! the connection. Every other refusal is per file: the connection goes on.
//!
//! # Header (sender → receiver)
//!
//! | field      | pack code | meaning                                                        |
//! |------------|-----------|----------------------------------------------------------------|
//! | magic      | `4s`      | `b"NKTF"`                                                      |
//! | version    | `B`       | `1`                                                            |
//! | flags      | `B`       | bit 0 [`FLAG_NO_OFFER`]: body follows at once, no offer; other bits must be 0 |
//! | path_len   | `H`       | length of the path in bytes, 1..=4096                          |
//! | size       | `Q`       | file size in bytes                                             |
//! | mode       | `I`       | permission bits (`& 0o777` is applied; 0 = receiver default 0644) |
//! | mtime      | `q`       | modification time, seconds since the Unix epoch (0 = leave as received) |
//! | crc32      | `I`       | CRC-32 (zlib's `crc32`) of the whole content                   |
//! | path       | (`path_len`s) | relative path, `/`-separated, no `.`/`..`/empty components, no NUL |
//!
//! # Reply (receiver → sender)
//!
//! | field   | pack code | meaning                                                   |
//! |---------|-----------|-----------------------------------------------------------|
//! | kind    | `B`       | 1 = offer, 2 = result                                     |
//! | status  | `B`       | a [`Status`] code (always 0 in an offer)                  |
//! | msg_len | `H`       | length of the message, 0..=1024                           |
//! | value   | `Q`       | offer: resume offset N; result: bytes stored (0 on error) |
//! | message | (`msg_len`s) | UTF-8 text for people                                  |
//!
//! ```
//! use netkit::services::transfer::{Header, Reply, ReplyKind, Status, HEADER_SIZE};
//!
//! let h = Header::new(b"docs/a.txt".to_vec(), 5, 0o644, 0, crc32(b"hello"));
//! let bytes = h.encode().unwrap();
//! assert_eq!(&bytes[..4], b"NKTF");
//! assert_eq!(bytes.len(), HEADER_SIZE + 10);
//! let fixed = Header::decode_fixed(&bytes[..HEADER_SIZE]).unwrap();
//! assert_eq!(fixed.path_len, 10);
//! assert_eq!(fixed.with_path(bytes[HEADER_SIZE..].to_vec()), h);
//!
//! let r = Reply::result(Status::Exists, 0, "docs/a.txt exists");
//! let wire = r.encode().unwrap();
//! assert_eq!(Reply::decode(&wire).unwrap(), Some((r, wire.len())));
//! # fn crc32(b: &[u8]) -> u32 { let mut h = crc32fast::Hasher::new(); h.update(b); h.finalize() }
//! ```

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::pack::{PackError, Struct, Value};

/// The first four bytes of every header.
pub const MAGIC: &[u8; 4] = b"NKTF";
/// The only protocol version.
pub const VERSION: u8 = 1;
/// Header flag: the body follows the header at once; the receiver sends no offer.
pub const FLAG_NO_OFFER: u8 = 0x01;
/// Every flag this version knows.
pub const KNOWN_FLAGS: u8 = FLAG_NO_OFFER;
/// The longest path a header may carry, in bytes.
pub const MAX_PATH: usize = 4096;
/// The longest reply message, in bytes.
pub const MAX_MESSAGE: usize = 1024;
/// The header's fixed part, as a `struct` format.
pub const HEADER_FORMAT: &str = "!4sBBHQIqI";
/// The size of the header's fixed part (the path follows it).
pub const HEADER_SIZE: usize = 32;
/// A reply's fixed part, as a `struct` format.
pub const REPLY_FORMAT: &str = "!BBHQ";
/// The size of a reply's fixed part (the message follows it).
pub const REPLY_SIZE: usize = 12;
/// The prefix of the receiver's partial files; paths may not use it.
pub const PART_PREFIX: &str = ".netkit-part-";

/// Why bytes are not a valid header or reply, or a path is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The header does not start with [`MAGIC`].
    #[error("bad magic {0:02x?} (expected \"NKTF\")")]
    BadMagic([u8; 4]),
    /// The header's version is not [`VERSION`].
    #[error("unsupported version {0} (this receiver speaks version 1)")]
    BadVersion(u8),
    /// The header sets flags this version does not know.
    #[error("unknown flags {0:#04x}")]
    BadFlags(u8),
    /// The path length is 0 or over [`MAX_PATH`].
    #[error("path length {0} is out of range (1..=4096)")]
    PathLength(usize),
    /// A reply's kind is neither offer nor result.
    #[error("unknown reply kind {0}")]
    BadKind(u8),
    /// A reply's message is longer than [`MAX_MESSAGE`].
    #[error("reply message of {0} bytes is too long")]
    MessageLength(usize),
    /// The path is refused (absolute, `..`, empty component, NUL, reserved name).
    #[error("unsafe path: {0}")]
    UnsafePath(String),
    /// An unpacked field is missing or out of its type's range.
    #[error("a field is missing or out of range")]
    Field,
    /// Packing or unpacking failed (a field out of range, a short buffer).
    #[error("bad field: {0}")]
    Pack(#[from] PackError),
}

/// What became of a file, as the receiver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Stored under its final name (or, in an offer: go ahead).
    Ok,
    /// A file of that name exists and the receiver does not overwrite.
    Exists,
    /// The path is unsafe or would land outside the receiver's root.
    BadPath,
    /// The header cannot be trusted; the receiver closes the connection.
    BadHeader,
    /// The file is larger than the receiver accepts.
    TooLarge,
    /// The content's CRC-32 does not match the header's; nothing was stored.
    Checksum,
    /// The connection ended before the whole body arrived; the part is kept for resume.
    Short,
    /// The receiver could not write the file (disk full, permissions, ...).
    Io,
    /// A code this version does not know.
    Other(u8),
}

impl Status {
    /// The status's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Exists => 1,
            Status::BadPath => 2,
            Status::BadHeader => 3,
            Status::TooLarge => 4,
            Status::Checksum => 5,
            Status::Short => 6,
            Status::Io => 7,
            Status::Other(c) => c,
        }
    }

    /// The status for a code read from the wire.
    pub fn from_code(code: u8) -> Status {
        match code {
            0 => Status::Ok,
            1 => Status::Exists,
            2 => Status::BadPath,
            3 => Status::BadHeader,
            4 => Status::TooLarge,
            5 => Status::Checksum,
            6 => Status::Short,
            7 => Status::Io,
            c => Status::Other(c),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::Exists => f.write_str("exists"),
            Status::BadPath => f.write_str("bad path"),
            Status::BadHeader => f.write_str("bad header"),
            Status::TooLarge => f.write_str("too large"),
            Status::Checksum => f.write_str("checksum mismatch"),
            Status::Short => f.write_str("incomplete"),
            Status::Io => f.write_str("write error"),
            Status::Other(c) => write!(f, "status {c}"),
        }
    }
}

/// One file's header: what the sender promises about the body that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// [`FLAG_NO_OFFER`] or 0.
    pub flags: u8,
    /// The relative, `/`-separated path.
    pub path: Vec<u8>,
    /// The body's size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// CRC-32 of the whole body.
    pub crc32: u32,
}

/// A header's fixed part, decoded; the path is still to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The flags.
    pub flags: u8,
    /// How many path bytes follow (checked: 1..=[`MAX_PATH`]).
    pub path_len: usize,
    /// The body's size.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: i64,
    /// CRC-32 of the body.
    pub crc32: u32,
}

impl FixedHeader {
    /// The whole header, once the path has arrived.
    pub fn with_path(self, path: Vec<u8>) -> Header {
        Header {
            flags: self.flags,
            path,
            size: self.size,
            mode: self.mode,
            mtime: self.mtime,
            crc32: self.crc32,
        }
    }
}

fn int<T: TryFrom<i128>>(v: Option<&Value>) -> Result<T, WireError> {
    v.and_then(Value::as_int)
        .and_then(|i| T::try_from(i).ok())
        .ok_or(WireError::Field)
}

impl Header {
    /// A header with no flags.
    pub fn new(path: Vec<u8>, size: u64, mode: u32, mtime: i64, crc32: u32) -> Header {
        Header {
            flags: 0,
            path,
            size,
            mode,
            mtime,
            crc32,
        }
    }

    /// The header's bytes: the fixed part, then the path.
    ///
    /// # Errors
    ///
    /// [`WireError::PathLength`] when the path is empty or over [`MAX_PATH`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        if self.path.is_empty() || self.path.len() > MAX_PATH {
            return Err(WireError::PathLength(self.path.len()));
        }
        let mut out = Struct::new(HEADER_FORMAT)?.pack(&[
            Value::from(MAGIC),
            Value::Int(VERSION.into()),
            Value::Int(self.flags.into()),
            Value::Int(self.path.len() as i128),
            Value::Int(self.size.into()),
            Value::Int(self.mode.into()),
            Value::Int(self.mtime.into()),
            Value::Int(self.crc32.into()),
        ])?;
        out.extend_from_slice(&self.path);
        Ok(out)
    }

    /// Decodes and checks the fixed part (exactly [`HEADER_SIZE`] bytes).
    ///
    /// # Errors
    ///
    /// [`WireError::BadMagic`], [`WireError::BadVersion`], [`WireError::BadFlags`],
    /// [`WireError::PathLength`], or [`WireError::Pack`] for a wrong-sized slice.
    pub fn decode_fixed(buf: &[u8]) -> Result<FixedHeader, WireError> {
        let v = Struct::new(HEADER_FORMAT)?.unpack(buf)?;
        let magic = v.first().and_then(Value::as_bytes).unwrap_or_default();
        if magic != MAGIC {
            let mut m = [0u8; 4];
            for (d, s) in m.iter_mut().zip(magic) {
                *d = *s;
            }
            return Err(WireError::BadMagic(m));
        }
        let version: u8 = int(v.get(1))?;
        if version != VERSION {
            return Err(WireError::BadVersion(version));
        }
        let flags: u8 = int(v.get(2))?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(WireError::BadFlags(flags));
        }
        let path_len: usize = int(v.get(3))?;
        if path_len == 0 || path_len > MAX_PATH {
            return Err(WireError::PathLength(path_len));
        }
        Ok(FixedHeader {
            flags,
            path_len,
            size: int(v.get(4))?,
            mode: int(v.get(5))?,
            mtime: int(v.get(6))?,
            crc32: int(v.get(7))?,
        })
    }

    /// The path as text, for messages (lossy UTF-8).
    pub fn display_path(&self) -> String {
        crate::net::escape_log_bytes(&self.path).into_owned()
    }
}

/// Whether a reply is an offer or a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// "Send from byte `value`."
    Offer,
    /// The file's outcome.
    Result,
}

/// A record from the receiver: an offer to resume, or a file's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Offer or result.
    pub kind: ReplyKind,
    /// The outcome ([`Status::Ok`] in an offer).
    pub status: Status,
    /// Offer: the resume offset; result: the bytes stored.
    pub value: u64,
    /// Text for people.
    pub message: String,
}

impl Reply {
    /// An offer to receive the body from byte `offset`.
    pub fn offer(offset: u64) -> Reply {
        Reply {
            kind: ReplyKind::Offer,
            status: Status::Ok,
            value: offset,
            message: String::new(),
        }
    }

    /// A file's result.
    pub fn result(status: Status, value: u64, message: impl Into<String>) -> Reply {
        Reply {
            kind: ReplyKind::Result,
            status,
            value,
            message: message.into(),
        }
    }

    /// The reply's bytes; a message over [`MAX_MESSAGE`] is cut at a character boundary.
    ///
    /// # Errors
    ///
    /// [`WireError::Pack`] only if the fixed format cannot be built.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut end = self.message.len().min(MAX_MESSAGE);
        while !self.message.is_char_boundary(end) {
            end -= 1;
        }
        let msg = self.message.as_bytes().get(..end).unwrap_or_default();
        let kind = match self.kind {
            ReplyKind::Offer => 1,
            ReplyKind::Result => 2,
        };
        let mut out = Struct::new(REPLY_FORMAT)?.pack(&[
            Value::Int(kind),
            Value::Int(self.status.code().into()),
            Value::Int(msg.len() as i128),
            Value::Int(self.value.into()),
        ])?;
        out.extend_from_slice(msg);
        Ok(out)
    }

    /// Decodes a reply from the start of `buf`: `Ok(None)` when more bytes are
    /// needed, else the reply and how many bytes it took.
    ///
    /// # Errors
    ///
    /// [`WireError::BadKind`] or [`WireError::MessageLength`].
    pub fn decode(buf: &[u8]) -> Result<Option<(Reply, usize)>, WireError> {
        let Some(fixed) = buf.get(..REPLY_SIZE) else {
            return Ok(None);
        };
        let v = Struct::new(REPLY_FORMAT)?.unpack(fixed)?;
        let kind = match int::<u8>(v.first())? {
            1 => ReplyKind::Offer,
            2 => ReplyKind::Result,
            k => return Err(WireError::BadKind(k)),
        };
        let status = Status::from_code(int(v.get(1))?);
        let len: usize = int(v.get(2))?;
        if len > MAX_MESSAGE {
            return Err(WireError::MessageLength(len));
        }
        let Some(msg) = buf.get(REPLY_SIZE..REPLY_SIZE + len) else {
            return Ok(None);
        };
        let reply = Reply {
            kind,
            status,
            value: int(v.get(3))?,
            message: String::from_utf8_lossy(msg).into_owned(),
        };
        Ok(Some((reply, REPLY_SIZE + len)))
    }
}

/// Checks a wire path and turns it into a relative [`PathBuf`].
///
/// Refused: empty paths, absolute paths, empty components (`a//b`, a trailing `/`),
/// `.` and `..`, NUL bytes, and components starting with [`PART_PREFIX`] (the receiver's own partial files).
///
/// # Errors
///
/// [`WireError::UnsafePath`] saying which rule the path breaks.
pub fn check_path(path: &[u8]) -> Result<PathBuf, WireError> {
    use std::os::unix::ffi::OsStrExt;
    let bad = |why: &str| {
        Err(WireError::UnsafePath(format!(
            "{:?}: {why}",
            String::from_utf8_lossy(path)
        )))
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_PATH {
        return bad("too long");
    }
    if path.contains(&0) {
        return bad("contains NUL");
    }
    if path.first() == Some(&b'/') {
        return bad("absolute");
    }
    let mut out = PathBuf::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" => return bad("empty component"),
            b"." | b".." => return bad("`.` or `..` component"),
            c if c.starts_with(PART_PREFIX.as_bytes()) => return bad("reserved name"),
            c => out.push(std::ffi::OsStr::from_bytes(c)),
        }
    }
    // Belt and braces: the result must be purely normal components.
    if !Path::new(&out)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return bad("not a plain relative path");
    }
    Ok(out)
}

/// The wire form of a relative local path: its components joined with `/`.
///
/// # Errors
///
/// [`WireError::UnsafePath`] when the path is not made of plain components only.
pub fn wire_path(path: &Path) -> Result<Vec<u8>, WireError> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(n.as_bytes());
            }
            Component::CurDir => {}
            _ => {
                return Err(WireError::UnsafePath(format!(
                    "{}: not a plain relative path",
                    path.display()
                )))
            }
        }
    }
    check_path(&out)?;
    Ok(out)
}

/// A file's modification time as the header's `mtime` field: whole seconds since
/// the Unix epoch (negative before it; 0 when the system cannot tell).
pub fn mtime_secs(meta: &std::fs::Metadata) -> i64 {
    let Ok(t) = meta.modified() else {
        return 0;
    };
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_the_documented_one() {
        let h = Header {
            flags: FLAG_NO_OFFER,
            path: b"a/b".to_vec(),
            size: 0x0102030405060708,
            mode: 0o644,
            mtime: -2,
            crc32: 0xdeadbeef,
        };
        let b = h.encode().unwrap();
        let mut want = b"NKTF\x01\x01\x00\x03".to_vec();
        want.extend_from_slice(&0x0102030405060708u64.to_be_bytes());
        want.extend_from_slice(&0o644u32.to_be_bytes());
        want.extend_from_slice(&(-2i64).to_be_bytes());
        want.extend_from_slice(&0xdeadbeefu32.to_be_bytes());
        want.extend_from_slice(b"a/b");
        assert_eq!(b, want);
        assert_eq!(
            Header::decode_fixed(&b[..HEADER_SIZE])
                .unwrap()
                .with_path(b"a/b".to_vec()),
            h
        );
    }

    #[test]
    fn bad_fixed_headers_are_named() {
        let good = Header::new(b"x".to_vec(), 1, 0, 0, 0).encode().unwrap();
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(
            Header::decode_fixed(&b[..32]),
            Err(WireError::BadMagic(_))
        ));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(
            Header::decode_fixed(&b[..32]),
            Err(WireError::BadVersion(2))
        );
        let mut b = good.clone();
        b[5] = 0x80;
        assert_eq!(
            Header::decode_fixed(&b[..32]),
            Err(WireError::BadFlags(0x80))
        );
        let mut b = good.clone();
        b[6..8].copy_from_slice(&0xffffu16.to_be_bytes());
        assert_eq!(
            Header::decode_fixed(&b[..32]),
            Err(WireError::PathLength(0xffff))
        );
        b[6..8].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(
            Header::decode_fixed(&b[..32]),
            Err(WireError::PathLength(0))
        );
        assert!(Header::decode_fixed(&good[..31]).is_err());
        assert_eq!(
            Header::new(vec![b'a'; MAX_PATH + 1], 0, 0, 0, 0).encode(),
            Err(WireError::PathLength(MAX_PATH + 1))
        );
    }

    #[test]
    fn replies_round_trip_and_need_more_when_short() {
        for r in [
            Reply::offer(12345),
            Reply::result(Status::Ok, 7, ""),
            Reply::result(Status::Checksum, 0, "crc differs: é"),
            Reply::result(Status::Other(200), 0, "future"),
        ] {
            let b = r.encode().unwrap();
            for cut in 0..b.len() {
                assert_eq!(Reply::decode(&b[..cut]).unwrap(), None);
            }
            let mut more = b.clone();
            more.extend_from_slice(b"next");
            assert_eq!(Reply::decode(&more).unwrap(), Some((r, b.len())));
        }
        let long = Reply::result(Status::Io, 0, "é".repeat(MAX_MESSAGE))
            .encode()
            .unwrap();
        assert!(long.len() <= REPLY_SIZE + MAX_MESSAGE);
        assert!(Reply::decode(&long).unwrap().is_some());
        assert_eq!(
            Reply::decode(b"\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
            Err(WireError::BadKind(3))
        );
        assert_eq!(
            Reply::decode(b"\x02\x00\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"),
            Err(WireError::MessageLength(0xffff))
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in [
            &b""[..],
            b"/etc/passwd",
            b"..",
            b"a/../../b",
            b"a//b",
            b"a/",
            b"./a",
            b"a/./b",
            b"a\0b",
            b".netkit-part-0011",
            b"d/.netkit-part-x",
        ] {
            assert!(
                matches!(check_path(p), Err(WireError::UnsafePath(_))),
                "{p:?}"
            );
        }
        assert!(check_path(&vec![b'a'; MAX_PATH + 1]).is_err());
        for p in [
            &b"a"[..],
            b"dir/sub/file.txt",
            b"with space/\xc3\xa9t\xc3\xa9",
            b"..hidden",
            b"\xff\xfe",
        ] {
            assert!(check_path(p).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn local_paths_become_wire_paths() {
        assert_eq!(wire_path(Path::new("./a/b")).unwrap(), b"a/b");
        assert!(wire_path(Path::new("/a")).is_err());
        assert!(wire_path(Path::new("a/../b")).is_err());
        assert!(wire_path(Path::new(".")).is_err());
    }

    #[test]
    fn status_codes_round_trip() {
        for c in 0..=255u8 {
            assert_eq!(Status::from_code(c).code(), c);
        }
    }
}
