//! Unix socket files: binding a path (replacing a stale file left by a dead
//! server, refusing a live one) and removing the file when its socket goes.
//!
//! Out of scope: the sockets' I/O (stream, listener and datagram modules).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

/// The socket file a bound Unix socket owns. Dropping it removes the file,
/// but only if the path still names the very file that was bound (a newer
/// server's socket at the same path is left alone).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl SocketFile {
    fn record(path: &Path) -> SocketFile {
        let id = fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()));
        SocketFile {
            path: path.to_path_buf(),
            id,
        }
    }

    /// Keeps the file on drop (its socket now belongs to someone else).
    pub(crate) fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        if let Ok(m) = fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == id {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// A Unix socket address for `path`, with the path in any error.
pub(crate) fn unix_sockaddr(path: &Path) -> io::Result<SockAddr> {
    SockAddr::unix(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("invalid Unix socket path {}: {e}", path.display()),
        )
    })
}

/// Creates a Unix socket of type `ty` bound to `path`. An existing socket
/// file whose server is gone (connecting is refused) is replaced; a live one
/// is an `AddrInUse` error, and so is a path that is not a socket at all.
pub(crate) fn bind_unix(path: &Path, ty: Type) -> io::Result<(Socket, SocketFile)> {
    let addr = unix_sockaddr(path)?;
    let sock = Socket::new(Domain::UNIX, ty, None)?;
    match sock.bind(&addr) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            clear_stale(path, &addr, ty)?;
            sock.bind(&addr).map_err(|e| bind_error(path, e))?;
        }
        Err(e) => return Err(bind_error(path, e)),
    }
    Ok((sock, SocketFile::record(path)))
}

fn bind_error(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display()))
}

fn in_use(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("cannot bind {}: address in use ({why})", path.display()),
    )
}

/// Removes `path` if it is a socket nobody is serving; errors if it is live
/// or not a socket.
fn clear_stale(path: &Path, addr: &SockAddr, ty: Type) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(bind_error(path, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(in_use(path, "the file exists and is not a socket"));
    }
    let probe = Socket::new(Domain::UNIX, ty, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(addr) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(bind_error(path, e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Ok(()) => Err(in_use(path, "another server is listening on it")),
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock
                || e.raw_os_error() == Some(libc::EINPROGRESS) =>
        {
            Err(in_use(path, "another server is listening on it"))
        }
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            Err(in_use(path, "a socket of another type is bound to it"))
        }
        Err(e) => Err(bind_error(path, e)),
    }
}
