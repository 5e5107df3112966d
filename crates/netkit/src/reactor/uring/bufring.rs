//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`): the fixed pool of
//! receive buffers the kernel picks from for multishot `recv`. It owns the ring
//! memory and the buffers; the loop (`uring/mod.rs`) decides when a buffer goes
//! back. Nothing here submits I/O.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::Submitter;

/// One `struct io_uring_buf`: 16 bytes; the ring's tail overlays the `resv` field
/// of entry 0.
const ENTRY: usize = 16;

/// The ring and its buffers. Must be dropped after the `IoUring` it is registered
/// with (the loop declares it later).
pub(super) struct BufRing {
    ring: *mut u8,
    ring_len: usize,
    entries: u16,
    size: usize,
    bufs: Vec<u8>,
    tail: u16,
}

impl BufRing {
    /// Maps `entries` (a power of two) buffers of `size` bytes and registers them
    /// as buffer group `bgid`.
    pub(super) fn new(
        submitter: &Submitter<'_>,
        entries: u16,
        size: usize,
        bgid: u16,
    ) -> io::Result<BufRing> {
        if !entries.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer ring size must be a power of two",
            ));
        }
        let ring_len = usize::from(entries) * ENTRY;
        // SAFETY: an anonymous private mapping with no address hint; the result is
        // checked against MAP_FAILED before use.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut br = BufRing {
            ring: ring.cast(),
            ring_len,
            entries,
            size,
            bufs: vec![0; usize::from(entries) * size],
            tail: 0,
        };
        // SAFETY: the ring is page-aligned memory of `entries` entries that lives
        // (with the buffers) until after the io_uring instance is dropped.
        unsafe { submitter.register_buf_ring_with_flags(br.ring as u64, entries, bgid, 0)? };
        for bid in 0..entries {
            br.add(bid);
        }
        br.publish();
        Ok(br)
    }

    fn add(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (self.entries - 1));
        let addr = self.bufs.as_ptr() as u64 + u64::from(bid) * self.size as u64;
        // SAFETY: `idx < entries`, so the entry is inside the mapping; the fields
        // are written one by one so entry 0's `resv` (the tail) is left alone.
        unsafe {
            let e = self.ring.add(idx * ENTRY);
            e.cast::<u64>().write(addr);
            e.add(8).cast::<u32>().write(self.size as u32);
            e.add(12).cast::<u16>().write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: offset 14 is the tail, a naturally aligned u16 inside the mapping
        // that the kernel reads concurrently (hence the atomic release store).
        let tail = unsafe { &*self.ring.add(14).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// The first `len` bytes of buffer `bid`, or `None` for ids the ring never gave.
    pub(super) fn get(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.entries || len > self.size {
            return None;
        }
        let start = usize::from(bid) * self.size;
        self.bufs.get(start..start + len)
    }

    /// Gives buffer `bid` back to the kernel.
    pub(super) fn recycle(&mut self, bid: u16) {
        if bid < self.entries {
            self.add(bid);
            self.publish();
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_len);
        }
    }
}
