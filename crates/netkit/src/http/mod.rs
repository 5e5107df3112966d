//! HTTP: a static file service (Python's `http.server`, done right) and a client
//! (`urllib.request`'s `urlopen` / `urlretrieve`).
//!
//! In scope:
//! - [`StaticFiles`], a [`Factory`] whose Protocol serves
//!   files under a root directory over HTTP/1.0 and 1.1 (GET and HEAD, keep-alive,
//!   pipelining, conditional requests, single byte ranges, directory listings), with
//!   file bodies sent by [`Transport::write_file`](crate::protocol::Transport::write_file)
//!   and listings streamed a bounded step at a time.
//!   It is a sans-IO Protocol, so every runner (threads, pool, reactor, ...) serves it.
//! - [`fetch`]: `urlopen`, `urlretrieve` and resumable downloads over http, https
//!   (rustls) and `file://`.
//!
//! Out of scope: request bodies (uploads), CGI, HTTP/2, compression, multi-range
//! (`multipart/byteranges`) responses, virtual hosts.
//!
//! ```no_run
//! use netkit::http::{HttpOptions, StaticFiles};
//! let factory = StaticFiles::new("/srv/www", HttpOptions::default())?;
//! // hand `factory` to any runner: it builds one Protocol per connection.
//! # Ok::<_, netkit::http::HttpError>(())
//! ```

mod conn;
pub mod fetch;
mod listing;
mod log;
mod mime;
mod path;
mod range;
mod request;
mod response;
mod sys;

use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use conn::HttpConn;
pub use log::{AccessLog, AccessRecord};
pub use mime::content_type;
pub use path::{resolve_target, Refusal};
pub use range::{parse_range, RangeSpec};

use crate::protocol::{ConnInfo, Factory};

/// The `Server` header value: `netkit/VERSION`.
pub const SERVER: &str = concat!("netkit/", env!("CARGO_PKG_VERSION"));

/// Errors from setting up the HTTP service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The root directory does not exist or cannot be resolved.
    #[error("root {path}: {error}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// Why it could not be resolved.
        error: std::io::Error,
    },
    /// The root exists but is not a directory.
    #[error("root {0}: not a directory")]
    NotADirectory(PathBuf),
}

/// Limits and settings of the static file service.
#[derive(Clone)]
pub struct HttpOptions {
    /// A client must finish each request head within this long (and an idle
    /// keep-alive connection is closed after it). Default
    /// [`DEFAULT_HEADER_TIMEOUT`](crate::protocol::DEFAULT_HEADER_TIMEOUT), 10 s.
    pub header_timeout: Duration,
    /// Longest request line (method, target, version); longer gets 414. Default 8 KiB.
    pub max_request_line: usize,
    /// Largest request head (request line and headers); larger gets 431. Default 8 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in one request; more gets 431. Default 100.
    pub max_headers: usize,
    /// Largest request body a GET or HEAD may carry; it is read and discarded.
    /// Larger gets 413. Default 64 KiB.
    pub max_discard_body: u64,
    /// Files up to this size are read and sent in one write with the headers;
    /// larger ones go out with `write_file` (sendfile). Default 16 KiB.
    pub small_file: u64,
    /// While more than this many bytes are queued for the peer, pipelined requests
    /// wait and reading pauses. Default 64 KiB.
    pub max_queued: usize,
    /// List dotfiles in directory listings. Default false: they are hidden, as
    /// nginx's autoindex hides them (they are still served when asked for by name).
    pub show_hidden: bool,
    /// Where access log lines go. Default: `tracing::info!`.
    pub access_log: AccessLog,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            header_timeout: crate::protocol::DEFAULT_HEADER_TIMEOUT,
            max_request_line: 8 * 1024,
            max_header_bytes: 8 * 1024,
            max_headers: 100,
            max_discard_body: 64 * 1024,
            small_file: 16 * 1024,
            max_queued: 64 * 1024,
            show_hidden: false,
            access_log: AccessLog::default(),
        }
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("header_timeout", &self.header_timeout)
            .field("max_request_line", &self.max_request_line)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_headers", &self.max_headers)
            .field("max_discard_body", &self.max_discard_body)
            .field("small_file", &self.small_file)
            .field("max_queued", &self.max_queued)
            .field("show_hidden", &self.show_hidden)
            .finish_non_exhaustive()
    }
}

/// What every connection of one [`StaticFiles`] service shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The canonical root: every served path must lie under it.
    pub(crate) root: PathBuf,
    /// The root opened as a directory (`O_PATH`), for opening files beneath it;
    /// `None` when that failed and every open goes through `root`.
    pub(crate) root_fd: Option<OwnedFd>,
    pub(crate) opts: HttpOptions,
}

/// The static file service: a [`Factory`] building one [`HttpConn`] per connection.
///
/// ```
/// use netkit::http::{HttpOptions, StaticFiles};
/// use netkit::protocol::testing::Script;
/// use netkit::protocol::{ConnInfo, Factory};
///
/// let dir = std::env::temp_dir().join(format!("netkit-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
/// let files = StaticFiles::new(&dir, HttpOptions::default()).unwrap();
/// let info = ConnInfo {
///     peer: netkit::protocol::PeerAddr::Inet(([127, 0, 0, 1], 1).into()),
///     local: netkit::protocol::PeerAddr::Inet(([127, 0, 0, 1], 2).into()),
/// };
/// let out = Script::new()
///     .data(b"GET /hello.txt HTTP/1.0\r\n\r\n")
///     .run(files.build(&info));
/// assert!(out.text().starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(out.text().ends_with("\r\n\r\nhello\n"));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    shared: Arc<Shared>,
}

impl StaticFiles {
    /// Serves the files under `root` (resolved once, symlinks included).
    ///
    /// # Errors
    /// [`HttpError::Root`] when `root` cannot be resolved, [`HttpError::NotADirectory`]
    /// when it is not a directory.
    pub fn new(root: impl AsRef<Path>, opts: HttpOptions) -> Result<StaticFiles, HttpError> {
        let given = root.as_ref();
        let root = std::fs::canonicalize(given).map_err(|error| HttpError::Root {
            path: given.to_path_buf(),
            error,
        })?;
        if !root.is_dir() {
            return Err(HttpError::NotADirectory(given.to_path_buf()));
        }
        let root_fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&root)
            .ok()
            .map(OwnedFd::from);
        Ok(StaticFiles {
            shared: Arc::new(Shared {
                root,
                root_fd,
                opts,
            }),
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }
}

impl Factory for StaticFiles {
    type Proto = HttpConn;

    fn build(&self, conn: &ConnInfo) -> HttpConn {
        HttpConn::new(self.shared.clone(), &conn.peer)
    }
}
