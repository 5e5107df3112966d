//! The receiver's partial files: which ones a connection is writing, and
//! removing the abandoned ones so they cannot fill the disk.
//!
//! A partial file is abandoned when no connection of this process holds it and
//! nothing has written to it for [`IN_USE_WINDOW`] (other processes, as in fork
//! mode, are seen only through the file's modification time). Abandoned files
//! older than the time-to-live are removed; when their total passes the bound,
//! or when a new upload needs more space than the disk has free, the oldest
//! go first. The file a new upload resumes is never removed for it.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::net::escape_log;
use crate::services::transfer::PART_PREFIX;

/// A partial file written within this long counts as in use.
pub(crate) const IN_USE_WINDOW: Duration = Duration::from_secs(60);
/// Expiry and the total bound are checked at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The partial files under one root.
#[derive(Debug)]
pub(crate) struct Partials {
    root: PathBuf,
    ttl: Option<Duration>,
    max_total: Option<u64>,
    in_use: Mutex<HashSet<PathBuf>>,
    last_sweep: Mutex<Option<Instant>>,
}

/// A partial file held by a connection; released on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    partials: Arc<Partials>,
    part: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.partials.lock().remove(&self.part);
    }
}

/// One partial file found on disk.
struct Found {
    part: PathBuf,
    len: u64,
    modified: SystemTime,
}

impl Partials {
    pub(crate) fn new(root: PathBuf, ttl: Option<Duration>, max_total: Option<u64>) -> Partials {
        Partials {
            root,
            ttl,
            max_total,
            in_use: Mutex::new(HashSet::new()),
            last_sweep: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.in_use.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `part` as written by a connection until the claim is dropped.
    pub(crate) fn claim(self: &Arc<Self>, part: &Path) -> Claim {
        self.lock().insert(part.to_path_buf());
        Claim {
            partials: self.clone(),
            part: part.to_path_buf(),
        }
    }

    /// Before an upload of `need` more bytes into `keep`: removes expired
    /// partial files and, oldest first, those over the total bound or in the
    /// way of the space the upload needs.
    pub(crate) fn make_room(&self, keep: &Path, need: u64) {
        let short = free_space(&self.root).is_some_and(|free| free < need);
        let due = {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = match *last {
                Some(t) => t.elapsed() >= SWEEP_EVERY,
                None => true,
            };
            if due || short {
                *last = Some(Instant::now());
            }
            due
        };
        if !due && !short {
            return;
        }
        let mut abandoned = self.abandoned(keep);
        abandoned.sort_by_key(|f| f.modified);
        let now = SystemTime::now();
        let mut kept = Vec::new();
        for f in abandoned {
            let age = now.duration_since(f.modified).unwrap_or_default();
            if self.ttl.is_some_and(|ttl| age > ttl) {
                self.remove(&f, "it was untouched for longer than --partial-ttl");
            } else {
                kept.push(f);
            }
        }
        let mut total: u64 = kept.iter().map(|f| f.len).sum();
        let mut free = free_space(&self.root);
        for f in kept {
            let over = self.max_total.is_some_and(|max| total > max);
            let no_room = free.is_some_and(|free| free < need);
            if !over && !no_room {
                break;
            }
            let why = if over {
                "abandoned partial uploads were over --partial-max"
            } else {
                "a new upload needed the space"
            };
            if self.remove(&f, why) {
                total -= f.len;
                free = free.map(|n| n.saturating_add(f.len));
            }
        }
    }

    /// The partial files nobody is writing, except `keep`.
    fn abandoned(&self, keep: &Path) -> Vec<Found> {
        let Ok(dir) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let in_use = self.lock().clone();
        let recent = SystemTime::now()
            .checked_sub(IN_USE_WINDOW)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        dir.filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.as_bytes();
                name.starts_with(PART_PREFIX.as_bytes()) && !name.ends_with(b".info")
            })
            .filter_map(|e| {
                let part = e.path();
                let m = fs::symlink_metadata(&part).ok()?;
                let modified = m.modified().ok()?;
                let idle = modified < recent;
                (m.is_file() && idle && part != keep && !in_use.contains(&part)).then_some(Found {
                    part,
                    len: m.len(),
                    modified,
                })
            })
            .collect()
    }

    /// Removes a partial file and its sidecar, with a log line; true if removed.
    fn remove(&self, f: &Found, why: &str) -> bool {
        let name = f.part.file_name().unwrap_or_default().to_string_lossy();
        match fs::remove_file(&f.part) {
            Ok(()) => {
                let mut info = f.part.clone().into_os_string();
                info.push(".info");
                let _ = fs::remove_file(info);
                tracing::info!(
                    "receive: removed the partial upload {} ({} bytes): {why}",
                    escape_log(&name),
                    f.len
                );
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(
                    "receive: cannot remove the partial upload {}: {e}",
                    escape_log(&name)
                );
                false
            }
        }
    }
}

/// Bytes an unprivileged writer may still use on the file system of `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `statvfs` is plain old data, so all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `st` a live, writable struct.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail.saturating_mul(st.f_frsize))
}
