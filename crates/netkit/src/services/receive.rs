//! The `receive` service: stores files sent with `netkit send` (or any client that
//! speaks the [`transfer`](super::transfer) wire format) under a root directory.
//!
//! It is a [`Protocol`], so it runs in every server mode. Per file it parses the
//! header, checks the path, answers with an offer (resuming from a partial file
//! kept by an earlier, interrupted transfer), streams the body into a partial file
//! under the root while computing its CRC-32, and when the body is complete checks
//! the checksum, applies mode and mtime, `fsync`s, and moves the file into place
//! (creating parent directories). Nothing but the header is buffered (at most
//! 32 + 4096 bytes): body bytes go to the file as they arrive.
//!
//! Safety rules: paths are refused when absolute, with `.`/`..`/empty components, a
//! NUL byte or a reserved name, when an existing component under the root is a
//! symbolic link or not a directory (so nothing lands outside the root through a
//! link), and when the file exists (unless `overwrite`; a directory is never
//! replaced). Without `overwrite` the final step is `link(2)`, which fails rather
//! than replace a file that appeared meanwhile.
//!
//! Partial files live in the root as `.netkit-part-<hash of path>` with a sidecar
//! `.info` holding the header they belong to; a later header for the same path with
//! the same size, mode, mtime and CRC resumes from the partial file's length (its
//! bytes are re-read to seed the checksum). Two connections sending the same path
//! at once share the partial file; the checksum then fails rather than store a mix.
//! Abandoned partial files expire after [`ReceiveConfig::partial_ttl`], their total
//! is bounded by [`ReceiveConfig::partial_max`], and the oldest make way when a new
//! upload needs the disk space.
//!
//! A header must arrive whole within [`ReceiveConfig::header_timeout`] of the
//! connection opening or the previous file ending, as an HTTP request head must;
//! file names in log lines have their control characters escaped.
//!
//! Out of scope: sockets and runners (any runner drives it), the sender (the CLI).
//! Disk writes and `fsync` are done inline, on the runner's thread.
//!
//! ```
//! use netkit::protocol::{testing::Script, ConnInfo, Factory, PeerAddr};
//! use netkit::services::receive::{ReceiveConfig, ReceiveFactory};
//! use netkit::services::transfer::{Header, Reply, Status, FLAG_NO_OFFER};
//!
//! let root = std::env::temp_dir().join(format!("nk-receive-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&root).unwrap();
//! let factory = ReceiveFactory::new(ReceiveConfig::new(&root)).unwrap();
//! let conn = ConnInfo {
//!     peer: PeerAddr::Inet(([127, 0, 0, 1], 50000).into()),
//!     local: PeerAddr::Inet(([127, 0, 0, 1], 9000).into()),
//! };
//! let mut crc = crc32fast::Hasher::new();
//! crc.update(b"hello");
//! let mut h = Header::new(b"greeting.txt".to_vec(), 5, 0o644, 0, crc.finalize());
//! h.flags = FLAG_NO_OFFER; // body follows at once
//! let mut wire = h.encode().unwrap();
//! wire.extend_from_slice(b"hello");
//! let out = Script::new().data(&wire).eof().run(factory.build(&conn));
//! let (reply, _) = Reply::decode(&out.written).unwrap().unwrap();
//! assert_eq!(reply.status, Status::Ok);
//! assert_eq!(std::fs::read(root.join("greeting.txt")).unwrap(), b"hello");
//! # std::fs::remove_dir_all(&root).unwrap();
//! ```
//!
//! [`Protocol`]: crate::protocol::Protocol

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::protocol::{CloseReason, ConnInfo, Factory, PeerAddr, Protocol, TimerId, Transport};

mod partials;

use partials::{Claim, Partials};

use super::transfer::{
    check_path, FixedHeader, Header, Reply, Status, FLAG_NO_OFFER, HEADER_SIZE, MAX_PATH,
    PART_PREFIX,
};

/// Permission bits used when a header's mode is 0.
const DEFAULT_MODE: u32 = 0o644;
/// Bytes read at a time when re-hashing a partial file.
const REHASH_CHUNK: usize = 1024 * 1024;

/// Settings of the `receive` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveConfig {
    /// Where files are stored; must be an existing directory.
    pub root: PathBuf,
    /// Replace existing files (never directories).
    pub overwrite: bool,
    /// Refuse files larger than this many bytes (`None`: no limit).
    pub max_size: Option<u64>,
    /// Close a connection whose header has not arrived whole this long after it
    /// opened or after its previous file (`None`: wait forever).
    pub header_timeout: Option<Duration>,
    /// Remove partial files of abandoned uploads untouched for this long
    /// (`None`: keep them).
    pub partial_ttl: Option<Duration>,
    /// The most bytes abandoned partial files may hold together; over it the
    /// oldest are removed (`None`: no bound but the disk's free space).
    pub partial_max: Option<u64>,
}

/// How long an abandoned partial upload is kept for resuming: a day.
pub const DEFAULT_PARTIAL_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The most bytes abandoned partial uploads keep together: 4 GiB.
pub const DEFAULT_PARTIAL_MAX: u64 = 4 << 30;

impl ReceiveConfig {
    /// Stores under `root`, never overwrites, no size limit, the default
    /// header timeout and partial-file limits.
    pub fn new(root: impl Into<PathBuf>) -> ReceiveConfig {
        ReceiveConfig {
            root: root.into(),
            overwrite: false,
            max_size: None,
            header_timeout: Some(crate::protocol::DEFAULT_HEADER_TIMEOUT),
            partial_ttl: Some(DEFAULT_PARTIAL_TTL),
            partial_max: Some(DEFAULT_PARTIAL_MAX),
        }
    }
}

/// Why the `receive` service cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The root does not exist, cannot be resolved, or is not a directory.
    #[error("receive root {}: {message}", path.display())]
    Root {
        /// The root as configured.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// The resolved settings every connection shares.
#[derive(Debug)]
struct Settings {
    root: PathBuf,
    overwrite: bool,
    max_size: Option<u64>,
    header_timeout: Option<Duration>,
    partials: Arc<Partials>,
}

/// Builds a [`Receive`] per connection; the root is resolved once, up front.
#[derive(Debug, Clone)]
pub struct ReceiveFactory {
    settings: Arc<Settings>,
}

impl ReceiveFactory {
    /// Checks and resolves the root (symbolic links in it are followed once, here).
    ///
    /// # Errors
    ///
    /// [`ReceiveError::Root`] when the root is missing or not a directory.
    pub fn new(config: ReceiveConfig) -> Result<ReceiveFactory, ReceiveError> {
        let err = |message: String| ReceiveError::Root {
            path: config.root.clone(),
            message,
        };
        let root = fs::canonicalize(&config.root).map_err(|e| err(e.to_string()))?;
        if !root.is_dir() {
            return Err(err("not a directory".into()));
        }
        let partials = Arc::new(Partials::new(
            root.clone(),
            config.partial_ttl,
            config.partial_max,
        ));
        // Partial files abandoned before this start expire now.
        partials.make_room(&root, 0);
        Ok(ReceiveFactory {
            settings: Arc::new(Settings {
                root,
                overwrite: config.overwrite,
                max_size: config.max_size,
                header_timeout: config.header_timeout,
                partials,
            }),
        })
    }

    /// The resolved root directory.
    pub fn root(&self) -> &Path {
        &self.settings.root
    }
}

impl Factory for ReceiveFactory {
    type Proto = Receive;
    fn build(&self, conn: &ConnInfo) -> Receive {
        Receive::new(self.settings.clone(), &conn.peer)
    }
}

/// One connection of the `receive` service.
#[derive(Debug)]
pub struct Receive {
    settings: Arc<Settings>,
    peer: String,
    state: State,
    /// Header bytes so far (fixed part, then path); at most 32 + 4096.
    head: Vec<u8>,
    fixed: Option<FixedHeader>,
    /// Armed while a header is awaited.
    header_timer: Option<TimerId>,
}

#[derive(Debug)]
enum State {
    /// Waiting for (the rest of) a header.
    Header,
    /// Storing a body.
    Body(Box<Incoming>),
    /// Reading and dropping this many body bytes of a refused file.
    Discard(u64),
    /// Closed; nothing more is read.
    Done,
}

/// A file being received.
#[derive(Debug)]
struct Incoming {
    header: Header,
    rel: PathBuf,
    part: PathBuf,
    info: PathBuf,
    file: File,
    hasher: crc32fast::Hasher,
    /// Bytes in the partial file so far.
    have: u64,
    /// Keeps the partial file from being taken for abandoned.
    _claim: Claim,
}

/// Why a file is refused.
struct Refusal(Status, String);

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        Refusal(Status::Io, e.to_string())
    }
}

impl Receive {
    fn new(settings: Arc<Settings>, peer: &PeerAddr) -> Receive {
        Receive {
            settings,
            peer: peer.to_string(),
            state: State::Header,
            head: Vec::new(),
            fixed: None,
            header_timer: None,
        }
    }

    /// Starts the header deadline, unless one is running or none is set.
    fn await_header(&mut self, t: &mut dyn Transport) {
        if let (None, Some(d)) = (self.header_timer, self.settings.header_timeout) {
            self.header_timer = Some(t.call_later(d));
        }
    }

    fn reply(t: &mut dyn Transport, r: &Reply) {
        if let Ok(bytes) = r.encode() {
            t.write(&bytes);
        }
    }

    /// Refuses a header that cannot be trusted and closes the connection.
    fn fatal(&mut self, t: &mut dyn Transport, message: String) {
        tracing::warn!(peer = %self.peer, "receive: bad header: {message}");
        Self::reply(t, &Reply::result(Status::BadHeader, 0, message));
        self.state = State::Done;
        t.close();
    }

    /// Takes header bytes from `data`; returns how many it used.
    fn take_header(&mut self, data: &[u8], t: &mut dyn Transport) -> usize {
        let need = HEADER_SIZE + self.fixed.map_or(0, |f| f.path_len);
        let n = need.saturating_sub(self.head.len()).min(data.len());
        self.head
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.head.len() < need {
            return n;
        }
        match self.fixed {
            None => match Header::decode_fixed(&self.head) {
                // The path (at least one byte) comes next.
                Ok(f) => self.fixed = Some(f),
                Err(e) => self.fatal(t, e.to_string()),
            },
            Some(f) => {
                let path = self.head.split_off(HEADER_SIZE);
                self.head.clear();
                self.fixed = None;
                self.start_file(f.with_path(path), t);
            }
        }
        n
    }

    /// A complete header arrived: refuse it or get ready for its body.
    fn start_file(&mut self, h: Header, t: &mut dyn Transport) {
        if let Some(id) = self.header_timer.take() {
            t.cancel_timer(id);
        }
        let offer = h.flags & FLAG_NO_OFFER == 0;
        match self.prepare(&h, offer) {
            Err(Refusal(status, message)) => {
                tracing::warn!(peer = %self.peer, "receive: refused {}: {message}", h.display_path());
                Self::reply(t, &Reply::result(status, 0, message));
                self.state = if offer {
                    State::Header
                } else {
                    State::Discard(h.size)
                };
            }
            Ok(inc) => {
                if inc.have > 0 {
                    tracing::info!(
                        peer = %self.peer,
                        "receive: resuming {} at {} of {} bytes",
                        h.display_path(),
                        inc.have,
                        h.size
                    );
                }
                if offer {
                    Self::reply(t, &Reply::offer(inc.have));
                }
                self.state = State::Body(Box::new(inc));
                self.finish_if_complete(t);
            }
        }
    }

    /// Checks a header against the root and opens (or resumes) its partial file.
    fn prepare(&self, h: &Header, resume: bool) -> Result<Incoming, Refusal> {
        let s = &self.settings;
        let rel = check_path(&h.path).map_err(|e| Refusal(Status::BadPath, e.to_string()))?;
        if let Some(max) = s.max_size.filter(|&m| h.size > m) {
            return Err(Refusal(
                Status::TooLarge,
                format!(
                    "{}: {} bytes is over the limit of {max}",
                    h.display_path(),
                    h.size
                ),
            ));
        }
        check_dirs(&s.root, &rel, false)?;
        let target = s.root.join(&rel);
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(Refusal(
                    Status::Exists,
                    format!("{} exists and is a directory", h.display_path()),
                ))
            }
            Ok(_) if !s.overwrite => {
                return Err(Refusal(
                    Status::Exists,
                    format!(
                        "{} exists (the receiver does not overwrite)",
                        h.display_path()
                    ),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let name = format!("{PART_PREFIX}{:016x}", fnv64(&h.path));
        let part = s.root.join(&name);
        let info = s.root.join(format!("{name}.info"));
        s.partials.make_room(&part, h.size);
        let claim = s.partials.claim(&part);
        let record = Header {
            flags: 0,
            ..h.clone()
        }
        .encode()
        .map_err(|e| Refusal(Status::BadPath, e.to_string()))?;
        let file = open_nofollow(&part, false)?;
        let mut hasher = crc32fast::Hasher::new();
        let mut have = 0;
        if resume && read_info(&info).as_deref() == Some(&record[..]) {
            let len = file.metadata()?.len();
            if len <= h.size {
                if let Ok(seeded) = rehash(&file, len) {
                    hasher = seeded;
                    have = len;
                }
            }
        }
        if have == 0 {
            file.set_len(0)?;
            use std::io::Write;
            let mut f = open_nofollow(&info, true)?;
            f.write_all(&record)?;
        }
        Ok(Incoming {
            header: h.clone(),
            rel,
            part,
            info,
            file,
            hasher,
            have,
            _claim: claim,
        })
    }

    /// Writes body bytes; returns how many of `data` belonged to this body.
    fn take_body(&mut self, data: &[u8], t: &mut dyn Transport) -> usize {
        let State::Body(inc) = &mut self.state else {
            return 0;
        };
        let left = inc.header.size - inc.have;
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
        let chunk = data.get(..n).unwrap_or_default();
        if let Err(e) = inc.file.write_all_at(chunk, inc.have) {
            let msg = format!("{}: {e}", inc.header.display_path());
            tracing::warn!(peer = %self.peer, "receive: {msg}");
            let _ = fs::remove_file(&inc.part);
            let _ = fs::remove_file(&inc.info);
            Self::reply(t, &Reply::result(Status::Io, 0, msg));
            self.state = State::Discard(left - n as u64);
            return n;
        }
        inc.hasher.update(chunk);
        inc.have += n as u64;
        self.finish_if_complete(t);
        n
    }

    fn finish_if_complete(&mut self, t: &mut dyn Transport) {
        let complete = matches!(&self.state, State::Body(inc) if inc.have == inc.header.size);
        if !complete {
            return;
        }
        let State::Body(inc) = std::mem::replace(&mut self.state, State::Header) else {
            return;
        };
        let path = inc.header.display_path();
        let (size, part, info) = (inc.header.size, inc.part.clone(), inc.info.clone());
        match self.store(*inc) {
            Ok(()) => {
                tracing::info!(peer = %self.peer, "receive: stored {path} ({size} bytes)");
                Self::reply(t, &Reply::result(Status::Ok, size, "stored"));
            }
            Err(Refusal(status, message)) => {
                tracing::warn!(peer = %self.peer, "receive: {path} not stored: {message}");
                if status != Status::Exists {
                    let _ = fs::remove_file(&part);
                    let _ = fs::remove_file(&info);
                }
                Self::reply(t, &Reply::result(status, 0, message));
            }
        }
    }

    /// Verifies a complete body and moves it into place.
    fn store(&self, inc: Incoming) -> Result<(), Refusal> {
        let s = &self.settings;
        let h = &inc.header;
        let crc = inc.hasher.finalize();
        if crc != h.crc32 {
            return Err(Refusal(
                Status::Checksum,
                format!(
                    "{}: checksum mismatch (header {:08x}, content {crc:08x}); nothing stored",
                    h.display_path(),
                    h.crc32
                ),
            ));
        }
        let mode = match h.mode & 0o777 {
            0 => DEFAULT_MODE,
            m => m,
        };
        inc.file.set_permissions(Permissions::from_mode(mode))?;
        if h.mtime != 0 {
            let secs = Duration::from_secs(h.mtime.unsigned_abs());
            let when = if h.mtime > 0 {
                UNIX_EPOCH.checked_add(secs)
            } else {
                UNIX_EPOCH.checked_sub(secs)
            };
            if let Some(when) = when {
                inc.file.set_modified(when)?;
            }
        }
        inc.file.sync_all()?;
        drop(inc.file);
        let parent = check_dirs(&s.root, &inc.rel, true)?;
        let target = s.root.join(&inc.rel);
        if s.overwrite {
            if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                return Err(Refusal(
                    Status::Exists,
                    format!("{} exists and is a directory", h.display_path()),
                ));
            }
            fs::rename(&inc.part, &target)?;
        } else {
            match fs::hard_link(&inc.part, &target) {
                Ok(()) => fs::remove_file(&inc.part)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let _ = fs::remove_file(&inc.part);
                    let _ = fs::remove_file(&inc.info);
                    return Err(Refusal(
                        Status::Exists,
                        format!(
                            "{} exists (the receiver does not overwrite)",
                            h.display_path()
                        ),
                    ));
                }
                // A file system without hard links: check, then rename.
                Err(_) if fs::symlink_metadata(&target).is_err() => fs::rename(&inc.part, &target)?,
                Err(e) => return Err(e.into()),
            }
        }
        let _ = fs::remove_file(&inc.info);
        File::open(&parent).and_then(|d| d.sync_all())?;
        if parent != s.root {
            File::open(&s.root).and_then(|d| d.sync_all())?;
        }
        Ok(())
    }
}

impl Protocol for Receive {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        self.await_header(t);
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        if self.header_timer != Some(id) || !matches!(self.state, State::Header) {
            return;
        }
        self.header_timer = None;
        let secs = self
            .settings
            .header_timeout
            .unwrap_or_default()
            .as_secs_f64();
        let message = format!("no complete header within {secs}s");
        tracing::warn!(peer = %self.peer, "receive: {message}; closing");
        Self::reply(t, &Reply::result(Status::BadHeader, 0, message));
        self.state = State::Done;
        t.close();
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        let mut data = data;
        while !data.is_empty() {
            let used = match &mut self.state {
                State::Done => return,
                State::Header => self.take_header(data, t),
                State::Body(_) => self.take_body(data, t),
                State::Discard(left) => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::Header;
                    }
                    n
                }
            };
            data = data.get(used..).unwrap_or_default();
        }
        if matches!(self.state, State::Header) {
            self.await_header(t);
        }
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        match &self.state {
            State::Header if !self.head.is_empty() => {
                Self::reply(
                    t,
                    &Reply::result(Status::Short, 0, "connection ended inside a header"),
                );
            }
            State::Body(inc) => {
                let msg = format!(
                    "{}: connection ended after {} of {} bytes; the part is kept for resume",
                    inc.header.display_path(),
                    inc.have,
                    inc.header.size
                );
                tracing::warn!(peer = %self.peer, "receive: {msg}");
                Self::reply(t, &Reply::result(Status::Short, inc.have, msg));
            }
            _ => {}
        }
        self.state = State::Done;
        t.close();
    }

    fn connection_lost(&mut self, reason: &CloseReason) {
        if let State::Body(inc) = &self.state {
            tracing::warn!(
                peer = %self.peer,
                "receive: {} interrupted after {} of {} bytes ({reason}); the part is kept for resume",
                inc.header.display_path(),
                inc.have,
                inc.header.size
            );
        }
        self.state = State::Done;
    }
}

/// FNV-1a, 64 bits: a stable name for a path's partial file.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Opens a file under the root for reading and writing without following a
/// symbolic link in its last component; `truncate` empties it.
fn open_nofollow(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
}

/// The header a partial file belongs to, if its sidecar is readable and sane.
fn read_info(path: &Path) -> Option<Vec<u8>> {
    let m = fs::symlink_metadata(path).ok()?;
    if !m.is_file() || m.len() > (HEADER_SIZE + MAX_PATH) as u64 {
        return None;
    }
    fs::read(path).ok()
}

/// A hasher fed with the first `len` bytes of `file`.
fn rehash(file: &File, len: u64) -> io::Result<crc32fast::Hasher> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; REHASH_CHUNK];
    let mut off = 0u64;
    while off < len {
        let n = usize::try_from(len - off)
            .unwrap_or(REHASH_CHUNK)
            .min(REHASH_CHUNK);
        let chunk = buf.get_mut(..n).unwrap_or_default();
        file.read_exact_at(chunk, off)?;
        hasher.update(chunk);
        off += n as u64;
    }
    Ok(hasher)
}

/// Walks the directories of `rel` under `root`: each existing one must be a real
/// directory (not a symbolic link); missing ones are created when `create` is set,
/// otherwise the walk stops at the first missing one. Returns the file's parent.
fn check_dirs(root: &Path, rel: &Path, create: bool) -> Result<PathBuf, Refusal> {
    let mut dir = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(dir);
    };
    for comp in parent.components() {
        dir.push(comp);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let what = if m.file_type().is_symlink() {
                    "a symbolic link"
                } else {
                    "not a directory"
                };
                let shown = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
                return Err(Refusal(Status::BadPath, format!("{shown} is {what}")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                        return Err(Refusal(
                            Status::BadPath,
                            format!("{} changed while being created", dir.display()),
                        ));
                    }
                }
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{Outcome, Script};
    use crate::services::transfer::{ReplyKind, PART_PREFIX};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Tmp(PathBuf);
    impl Tmp {
        fn new() -> Tmp {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "nk-receive-unit-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(p.join("root")).unwrap();
            Tmp(p)
        }
        fn root(&self) -> PathBuf {
            self.0.join("root")
        }
        /// Every file and directory under the temp dir, relative, sorted.
        fn listing(&self) -> Vec<String> {
            fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
                for e in fs::read_dir(dir).unwrap() {
                    let p = e.unwrap().path();
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                    if fs::symlink_metadata(&p).unwrap().is_dir() {
                        walk(base, &p, out);
                    }
                }
            }
            let mut out = Vec::new();
            walk(&self.0, &self.0, &mut out);
            out.sort();
            out
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn crc(b: &[u8]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(b);
        h.finalize()
    }

    fn header(path: &str, body: &[u8], flags: u8) -> Vec<u8> {
        let mut h = Header::new(
            path.as_bytes().to_vec(),
            body.len() as u64,
            0o640,
            1_000_000_000,
            crc(body),
        );
        h.flags = flags;
        h.encode().unwrap()
    }

    /// Header and body in one go, without waiting for an offer.
    fn file(path: &str, body: &[u8]) -> Vec<u8> {
        let mut b = header(path, body, FLAG_NO_OFFER);
        b.extend_from_slice(body);
        b
    }

    fn proto(root: &Path, overwrite: bool) -> Receive {
        let f = ReceiveFactory::new(ReceiveConfig {
            overwrite,
            max_size: Some(1 << 20),
            ..ReceiveConfig::new(root)
        })
        .unwrap();
        f.build(&ConnInfo {
            peer: PeerAddr::Inet(([127, 0, 0, 1], 50000).into()),
            local: PeerAddr::Inet(([127, 0, 0, 1], 9000).into()),
        })
    }

    fn replies(out: &Outcome) -> Vec<Reply> {
        let mut buf = &out.written[..];
        let mut v = Vec::new();
        while let Some((r, n)) = Reply::decode(buf).unwrap() {
            v.push(r);
            buf = &buf[n..];
        }
        assert!(buf.is_empty(), "trailing reply bytes");
        v
    }

    fn statuses(out: &Outcome) -> Vec<Status> {
        replies(out).into_iter().map(|r| r.status).collect()
    }

    #[test]
    fn files_arrive_whole_at_any_chunking() {
        let body: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut wire = file("a.bin", &body);
        wire.extend(file("dir/sub/é b.txt", b"hi"));
        wire.extend(file("empty", b""));
        for chunk in [1, 7, 32, 33, 4096, wire.len()] {
            let tmp = Tmp::new();
            let mut s = Script::new();
            for c in wire.chunks(chunk) {
                s = s.data(c);
            }
            let out = s.eof().run(proto(&tmp.root(), false));
            assert_eq!(statuses(&out), [Status::Ok; 3], "chunk {chunk}");
            assert_eq!(replies(&out)[0].value, 5000);
            assert!(out.closed);
            assert_eq!(fs::read(tmp.root().join("a.bin")).unwrap(), body);
            assert_eq!(fs::read(tmp.root().join("dir/sub/é b.txt")).unwrap(), b"hi");
            assert_eq!(fs::read(tmp.root().join("empty")).unwrap(), b"");
            let m = fs::metadata(tmp.root().join("a.bin")).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o640);
            assert_eq!(crate::services::transfer::mtime_secs(&m), 1_000_000_000);
            assert!(
                !tmp.listing().iter().any(|p| p.contains(PART_PREFIX)),
                "{:?}",
                tmp.listing()
            );
        }
    }

    #[test]
    fn the_offer_comes_before_the_body() {
        let tmp = Tmp::new();
        let mut wire = header("f", b"abc", 0);
        wire.extend_from_slice(b"abc");
        let out = Script::new()
            .data(&wire)
            .eof()
            .run(proto(&tmp.root(), false));
        let r = replies(&out);
        assert_eq!(r[0], Reply::offer(0));
        assert_eq!((r[1].kind, r[1].status), (ReplyKind::Result, Status::Ok));
        assert_eq!(fs::read(tmp.root().join("f")).unwrap(), b"abc");
    }

    #[test]
    fn an_interrupted_file_resumes_where_it_stopped() {
        let tmp = Tmp::new();
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let head = header("big/file", &body, 0);
        let first = Script::new()
            .data(&head)
            .data(&body[..60_000])
            .eof()
            .run(proto(&tmp.root(), false));
        let r = replies(&first);
        assert_eq!(r[0], Reply::offer(0));
        assert_eq!((r[1].status, r[1].value), (Status::Short, 60_000));
        assert!(!tmp.root().join("big").exists(), "no final name, no parent");

        // The same file again: offered from 60000; the rest completes it.
        let out = Script::new()
            .data(&head)
            .data(&body[60_000..])
            .eof()
            .run(proto(&tmp.root(), false));
        let r = replies(&out);
        assert_eq!(r[0], Reply::offer(60_000));
        assert_eq!(r[1].status, Status::Ok);
        assert_eq!(fs::read(tmp.root().join("big/file")).unwrap(), body);
        assert_eq!(tmp.listing(), ["root", "root/big", "root/big/file"]);
    }

    #[test]
    fn a_changed_file_starts_over_and_a_corrupt_part_fails_the_checksum() {
        let tmp = Tmp::new();
        let old = vec![1u8; 1000];
        let _ = Script::new()
            .data(&header("f", &old, 0))
            .data(&old[..500])
            .eof()
            .run(proto(&tmp.root(), false));
        // New content, same path: nothing is resumed.
        let new = vec![2u8; 1000];
        let out = Script::new()
            .data(&header("f", &new, 0))
            .run(proto(&tmp.root(), false));
        assert_eq!(replies(&out)[0], Reply::offer(0));

        // A part file altered behind the receiver's back is caught by the CRC.
        let tmp = Tmp::new();
        let _ = Script::new()
            .data(&header("g", &old, 0))
            .data(&old[..500])
            .eof()
            .run(proto(&tmp.root(), false));
        let part = fs::read_dir(tmp.root())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| !p.to_string_lossy().ends_with(".info"))
            .unwrap();
        fs::write(&part, vec![9u8; 500]).unwrap();
        let out = Script::new()
            .data(&header("g", &old, 0))
            .data(&old[500..])
            .eof()
            .run(proto(&tmp.root(), false));
        let r = replies(&out);
        assert_eq!(r[0], Reply::offer(500));
        assert_eq!(r[1].status, Status::Checksum);
        assert_eq!(tmp.listing(), ["root"]);
    }

    #[test]
    fn a_bad_checksum_stores_nothing_and_the_connection_goes_on() {
        let tmp = Tmp::new();
        let mut h = Header::new(b"x".to_vec(), 3, 0, 0, crc(b"abc") ^ 1);
        h.flags = FLAG_NO_OFFER;
        let mut wire = h.encode().unwrap();
        wire.extend_from_slice(b"abc");
        wire.extend(file("y", b"ok"));
        let out = Script::new()
            .data(&wire)
            .eof()
            .run(proto(&tmp.root(), false));
        let r = replies(&out);
        assert_eq!(r[0].status, Status::Checksum);
        assert!(
            r[0].message.contains("checksum mismatch"),
            "{}",
            r[0].message
        );
        assert_eq!(r[1].status, Status::Ok);
        assert_eq!(tmp.listing(), ["root", "root/y"]);
    }

    #[test]
    fn unsafe_paths_are_refused_and_their_bodies_skipped() {
        let tmp = Tmp::new();
        let mut wire = Vec::new();
        for p in [
            "/etc/evil",
            "../evil",
            "a/../../evil",
            "a//b",
            "./a",
            ".netkit-part-1",
        ] {
            wire.extend(file(p, b"evil"));
        }
        let mut nul = Header::new(b"a\0b".to_vec(), 4, 0, 0, crc(b"evil"));
        nul.flags = FLAG_NO_OFFER;
        wire.extend(nul.encode().unwrap());
        wire.extend_from_slice(b"evil");
        wire.extend(file("fine", b"good"));
        let out = Script::new()
            .data(&wire)
            .eof()
            .run(proto(&tmp.root(), false));
        let st = statuses(&out);
        assert_eq!(st[..7], [Status::BadPath; 7]);
        assert_eq!(st[7], Status::Ok);
        assert_eq!(tmp.listing(), ["root", "root/fine"]);
    }

    #[test]
    fn symlinked_directories_are_not_followed() {
        let tmp = Tmp::new();
        fs::create_dir(tmp.0.join("outside")).unwrap();
        std::os::unix::fs::symlink(tmp.0.join("outside"), tmp.root().join("link")).unwrap();
        fs::write(tmp.root().join("plain"), b"").unwrap();
        let mut wire = file("link/evil", b"evil");
        wire.extend(file("link/deeper/evil", b"evil"));
        wire.extend(file("plain/evil", b"evil"));
        let out = Script::new()
            .data(&wire)
            .eof()
            .run(proto(&tmp.root(), true));
        let r = replies(&out);
        assert_eq!(statuses(&out), [Status::BadPath; 3]);
        assert!(r[0].message.contains("symbolic link"), "{}", r[0].message);
        assert!(r[2].message.contains("not a directory"), "{}", r[2].message);
        assert!(fs::read_dir(tmp.0.join("outside"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn bad_headers_close_the_connection() {
        let good = file("f", b"abc");
        let mut magic = good.clone();
        magic[..4].copy_from_slice(b"HTTP");
        let mut version = good.clone();
        version[4] = 9;
        let mut flags = good.clone();
        flags[5] = 0xfe;
        let mut long = good.clone();
        long[6..8].copy_from_slice(&u16::MAX.to_be_bytes());
        for (bad, needle) in [
            (magic, "magic"),
            (version, "version"),
            (flags, "flags"),
            (long, "path length"),
        ] {
            let tmp = Tmp::new();
            let mut wire = bad;
            wire.extend(file("after", b"x"));
            let out = Script::new()
                .data(&wire)
                .eof()
                .run(proto(&tmp.root(), false));
            let r = replies(&out);
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].status, Status::BadHeader);
            assert!(r[0].message.contains(needle), "{}", r[0].message);
            assert!(out.closed);
            assert_eq!(tmp.listing(), ["root"]);
        }
    }

    #[test]
    fn existing_files_are_kept_unless_overwrite() {
        let tmp = Tmp::new();
        fs::write(tmp.root().join("f"), b"old").unwrap();
        fs::create_dir(tmp.root().join("d")).unwrap();
        let mut wire = file("f", b"new");
        wire.extend(file("d", b"new"));
        let out = Script::new()
            .data(&wire)
            .eof()
            .run(proto(&tmp.root(), false));
        assert_eq!(statuses(&out), [Status::Exists, Status::Exists]);
        assert_eq!(fs::read(tmp.root().join("f")).unwrap(), b"old");

        let out = Script::new()
            .data(&wire)
            .eof()
            .run(proto(&tmp.root(), true));
        assert_eq!(statuses(&out), [Status::Ok, Status::Exists]);
        assert_eq!(fs::read(tmp.root().join("f")).unwrap(), b"new");
        assert!(tmp.root().join("d").is_dir());
    }

    #[test]
    fn size_limit_and_short_bodies() {
        let tmp = Tmp::new();
        let mut h = Header::new(b"huge".to_vec(), 1 << 40, 0, 0, 0);
        let out = Script::new()
            .data(&h.encode().unwrap())
            .data(&file("after", b"x"))
            .eof()
            .run(proto(&tmp.root(), false));
        assert_eq!(statuses(&out), [Status::TooLarge, Status::Ok]);

        // A header that promises more than is sent: reported, nothing final.
        h.size = 10;
        let out = Script::new()
            .data(&h.encode().unwrap())
            .data(b"12345")
            .eof()
            .run(proto(&tmp.root(), false));
        let r = replies(&out);
        assert_eq!(r[0], Reply::offer(0));
        assert_eq!((r[1].status, r[1].value), (Status::Short, 5));
        assert!(!tmp.root().join("huge").exists());

        let out = Script::new()
            .data(&file("x", b"y")[..20])
            .eof()
            .run(proto(&tmp.root(), false));
        assert_eq!(statuses(&out), [Status::Short]);
    }

    #[test]
    fn a_lost_connection_keeps_the_part_and_writes_nothing_after_close() {
        let tmp = Tmp::new();
        let body = vec![5u8; 300];
        let out = Script::new()
            .data(&header("p", &body, 0))
            .data(&body[..100])
            .run(proto(&tmp.root(), false));
        assert_eq!(replies(&out), [Reply::offer(0)]);
        assert_eq!(tmp.listing().len(), 3, "root, part and info");
        assert!(!tmp.root().join("p").exists());
    }
}
