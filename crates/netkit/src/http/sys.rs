//! The one system call the static file service needs that std does not wrap:
//! opening a file beneath a directory descriptor with `openat2(RESOLVE_BENEATH)`,
//! so the kernel refuses any resolution that leaves the root (including through
//! symlinks) in the same call that opens the file. Path checks live in `path.rs`;
//! this module only opens.

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

/// Opens `rel` (a relative path without NUL bytes) read-only, non-blocking and
/// close-on-exec, beneath the directory `dir`: symlinks are followed only while
/// they stay beneath it.
///
/// # Errors
/// `EXDEV` when the resolution would leave `dir` (an absolute symlink included),
/// `ENOSYS`/`EPERM` when `openat2` is unavailable, or the usual `open` errors.
#[cfg(target_os = "linux")]
pub(crate) fn open_beneath(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<File> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;

    let bytes = rel.as_os_str().as_bytes();
    let c_path = CString::new(if bytes.is_empty() { b"." } else { bytes })
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `open_how` is a plain C struct of integers; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `dir` is a live descriptor borrowed for the call, `c_path` is a
    // NUL-terminated string that outlives it, and `how` points to an `open_how`
    // whose size is passed alongside; the kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c_path.as_ptr(),
            std::ptr::addr_of!(how),
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::Other))?;
    // SAFETY: `openat2` succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Without `openat2` every open goes the portable way.
///
/// # Errors
/// Always `ENOSYS`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn open_beneath(_dir: BorrowedFd<'_>, _rel: &Path) -> io::Result<File> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn opens_beneath_and_refuses_to_leave() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f.txt"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("up")).unwrap();
        std::os::unix::fs::symlink("sub/f.txt", root.join("in")).unwrap();
        let fd: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(&root)
            .unwrap()
            .into();
        let code = |rel: &str| open_beneath(fd.as_fd(), Path::new(rel)).map(|_| ());
        match code("sub/f.txt") {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return,
            got => got.unwrap(),
        }
        code("in").unwrap();
        code("").unwrap();
        assert_eq!(code("up").unwrap_err().raw_os_error(), Some(libc::EXDEV));
        assert_eq!(
            code("../secret").unwrap_err().raw_os_error(),
            Some(libc::EXDEV)
        );
        assert_eq!(code("nope").unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }
}
