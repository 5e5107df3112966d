//! The outbound queue every runner shares: bytes and file ranges waiting for a
//! non-blocking socket, flushed with `send(2)` and `sendfile(2)`.
//!
//! Owns: ordering (bytes and files go out exactly in the order queued), the count of
//! queued bytes that watermarks are checked against, and zero-copy file sending a
//! bounded chunk at a time. Does not own: readiness (the caller flushes when its
//! poll or event loop says the socket is writable) or watermarks (the caller
//! compares [`WriteQueue::len`] with its own).

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use super::sys;

/// The most one `sendfile` call is asked to send: the socket buffer takes far less,
/// and a bound keeps one connection from holding the loop.
const FILE_CHUNK: u64 = 1 << 20;

/// A byte segment bigger than this is not appended to: a new one starts, so a
/// drained prefix can be freed instead of shifted.
const SEGMENT_MAX: usize = 256 * 1024;

enum Segment {
    Bytes {
        buf: Vec<u8>,
        pos: usize,
    },
    File {
        file: Arc<File>,
        offset: u64,
        remaining: u64,
    },
}

/// What one [`WriteQueue::flush`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Bytes the kernel took.
    pub sent: u64,
    /// Whether the queue is now empty.
    pub drained: bool,
}

/// An ordered queue of bytes and file ranges for one socket.
///
/// ```
/// use std::io::Read;
/// use netkit::net::{socketpair, WriteQueue};
///
/// let (a, b) = socketpair()?;
/// a.set_nonblocking(true)?;
/// let mut q = WriteQueue::new();
/// q.push(b"hello, ");
/// q.push(b"world");
/// assert_eq!(q.len(), 12);
/// let done = q.flush(&a)?;
/// assert!(done.drained);
/// let mut got = [0; 12];
/// b.read_exact(&mut got)?;
/// assert_eq!(&got, b"hello, world");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Default)]
pub struct WriteQueue {
    segs: VecDeque<Segment>,
    len: u64,
    scratch: Vec<u8>,
}

impl fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteQueue")
            .field("len", &self.len)
            .field("segments", &self.segs.len())
            .finish()
    }
}

impl WriteQueue {
    /// An empty queue.
    pub fn new() -> Self {
        WriteQueue::default()
    }

    /// Bytes queued and not yet taken by the kernel.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `data`.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len() as u64;
        if let Some(Segment::Bytes { buf, .. }) = self.segs.back_mut() {
            if buf.len() < SEGMENT_MAX {
                buf.extend_from_slice(data);
                return;
            }
        }
        self.segs.push_back(Segment::Bytes {
            buf: data.to_vec(),
            pos: 0,
        });
    }

    /// Queues `len` bytes of `file` from `offset`, to go out with `sendfile(2)`.
    pub fn push_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.len += len;
        self.segs.push_back(Segment::File {
            file,
            offset,
            remaining: len,
        });
    }

    /// Drops everything queued (an aborted connection).
    pub fn clear(&mut self) {
        self.segs.clear();
        self.len = 0;
    }

    /// Hands queued data to the non-blocking socket `sock` until it would block or
    /// the queue is empty. Retries `EINTR`.
    ///
    /// # Errors
    ///
    /// The socket's error (the peer reset, say); `UnexpectedEof` when a queued
    /// file turned out shorter than the range promised.
    pub fn flush(&mut self, sock: &impl AsFd) -> io::Result<Flushed> {
        let fd = sock.as_fd();
        let mut sent = 0u64;
        while let Some(front) = self.segs.front_mut() {
            let step = match front {
                Segment::Bytes { buf, pos } => match sys::send(fd, &buf[*pos..]) {
                    Ok(n) => {
                        *pos += n;
                        if *pos == buf.len() {
                            self.segs.pop_front();
                        }
                        Ok(n as u64)
                    }
                    Err(e) => Err(e),
                },
                Segment::File {
                    file,
                    offset,
                    remaining,
                } => {
                    let chunk = (*remaining).min(FILE_CHUNK);
                    match send_file_chunk(fd, file, *offset, chunk, &mut self.scratch) {
                        Ok(0) => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "a queued file is shorter than the range to send",
                        )),
                        Ok(n) => {
                            *offset += n;
                            *remaining -= n;
                            if *remaining == 0 {
                                self.segs.pop_front();
                            }
                            Ok(n)
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match step {
                Ok(n) => {
                    sent += n;
                    self.len -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Flushed {
            sent,
            drained: self.segs.is_empty(),
        })
    }
}

/// One `sendfile(2)` of at most `len` bytes, or a `pread`+`send` where the kernel
/// refuses `sendfile` for this file.
fn send_file_chunk(
    out: BorrowedFd<'_>,
    file: &File,
    offset: u64,
    len: u64,
    scratch: &mut Vec<u8>,
) -> io::Result<u64> {
    let mut off = i64::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset is too large"))?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        match sys::sendfile(out, file.as_fd(), &mut off, len as usize) {
            Ok(n) => return Ok(n as u64),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    scratch.resize(len.min(64 * 1024) as usize, 0);
    sys::copy_file_chunk(out, file, &mut off, scratch).map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::socketpair;
    use std::io::{Read, Write};

    #[test]
    fn bytes_and_files_go_out_in_order_across_would_block() {
        let dir = std::env::temp_dir().join(format!("netkit-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&content)
            .unwrap();
        let file = Arc::new(File::open(&path).unwrap());

        let (a, b) = socketpair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut q = WriteQueue::new();
        q.push(b"head:");
        q.push_file(file.clone(), 10, 2_000_000);
        q.push(b":mid:");
        q.push_file(file, 0, 5);
        q.push(b":tail");
        let total = q.len();
        assert_eq!(total, 5 + 2_000_000 + 5 + 5 + 5);

        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            (&b).read_to_end(&mut got).unwrap();
            got
        });
        let mut sent = 0;
        let mut rounds = 0;
        while !q.is_empty() {
            let f = q.flush(&a).unwrap();
            sent += f.sent;
            rounds += 1;
            assert!(rounds < 1_000_000, "the queue never drained");
            std::thread::yield_now();
        }
        assert_eq!(sent, total);
        a.shutdown(std::net::Shutdown::Both).unwrap();
        let got = reader.join().unwrap();
        let mut want = b"head:".to_vec();
        want.extend_from_slice(&content[10..2_000_010]);
        want.extend_from_slice(b":mid:");
        want.extend_from_slice(&content[..5]);
        want.extend_from_slice(b":tail");
        assert_eq!(got.len(), want.len());
        assert!(got == want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_short_file_is_an_error_not_a_hang() {
        let dir = std::env::temp_dir().join(format!("netkit-queue-short-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let (a, _b) = socketpair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut q = WriteQueue::new();
        q.push_file(file, 5, 100);
        let err = q.flush(&a).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clear_drops_everything() {
        let mut q = WriteQueue::new();
        q.push(b"abc");
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
    }
}
