//! The HTTP client: Python's `urlopen`, `urlretrieve` and `urlcleanup`, on ureq
//! with rustls, plus resumable downloads that never lose data.
//!
//! In scope: `http://`, `https://` (rustls with the webpki roots, or a private CA
//! from a PEM file) and `file://` URLs; bounded redirects; connect and per-read
//! timeouts; basic auth from the URL (`http://user:pass@host/`) or the options;
//! cookies kept across redirects and requests of one [`Client`], optionally loaded
//! from and saved to a cookie jar file (cookie_store's JSON format; session cookies
//! are not saved); extra request headers.
//!
//! Every status of 400 or more is an error ([`FetchError::Status`]), as curl's
//! `--fail` makes it: a download never saves an error page as if it were the file.
//!
//! Downloads ([`Client::download`]) go to `NAME.part` beside the target and are
//! renamed over the target only when complete (the byte count matches
//! `Content-Length`); an existing target is never truncated by a failed download.
//! A failed transfer keeps the `.part` file, and `resume` continues it with a Range
//! request, checking that the server answered with the matching `Content-Range`
//! (a 200 restarts from zero).
//!
//! Out of scope: request bodies (POST), proxies, compression, HTTP/2.
//!
//! ```no_run
//! use std::io::BufRead;
//! let page = netkit::http::fetch::urlopen("http://127.0.0.1:8000/")?;
//! for line in page.lines() {
//!     println!("{}", line.map_err(netkit::http::fetch::FetchError::from_io)?);
//! }
//! # Ok::<_, netkit::http::fetch::FetchError>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ureq::http;
use ureq::ResponseExt;

mod url;

use url::{base64, parse_content_range, parse_url};
pub use url::{name_from_url, part_path, sanitize_name};

/// Errors from fetching a URL; each names the URL (or file) it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL could not be parsed.
    #[error("{url}: invalid URL: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme is not http, https or file.
    #[error("{url}: unsupported scheme {scheme:?} (http, https and file are supported)")]
    UnsupportedScheme {
        /// The URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The host name did not resolve.
    #[error("{url}: cannot resolve host")]
    Dns {
        /// The URL.
        url: String,
    },
    /// The server refused the connection.
    #[error("{url}: connection refused")]
    Refused {
        /// The URL.
        url: String,
    },
    /// Connecting failed otherwise.
    #[error("{url}: cannot connect: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A connect or read timeout expired.
    #[error("{url}: timed out ({what})")]
    Timeout {
        /// The URL.
        url: String,
        /// Which timeout.
        what: String,
    },
    /// The TLS handshake or certificate check failed.
    #[error("{url}: TLS failure: {reason}")]
    Tls {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with a status of 400 or more.
    #[error("{url}: HTTP {status} {reason}")]
    Status {
        /// The URL (after redirects).
        url: String,
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// More redirects than allowed.
    #[error("{url}: too many redirects (more than {max})")]
    TooManyRedirects {
        /// The URL.
        url: String,
        /// The limit.
        max: u32,
    },
    /// The body ended before `Content-Length` bytes arrived; the partial data is kept.
    #[error("{url}: incomplete download: {got} of {expected} bytes; partial data kept in {} (resume with --continue)", part.display())]
    Incomplete {
        /// The URL.
        url: String,
        /// Bytes received (including any resumed prefix).
        got: u64,
        /// Bytes announced.
        expected: u64,
        /// The `.part` file holding them.
        part: PathBuf,
    },
    /// A range request was answered with a range that does not continue the file.
    #[error("{url}: asked for bytes from {offset}, server sent Content-Range {got:?}")]
    RangeMismatch {
        /// The URL.
        url: String,
        /// The offset asked for.
        offset: u64,
        /// The `Content-Range` received.
        got: String,
    },
    /// The transfer failed with an I/O error.
    #[error("{url}: {error}")]
    Io {
        /// The URL.
        url: String,
        /// The error.
        error: io::Error,
    },
    /// A local file (target, `.part`, `file://` source) could not be used.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The cookie jar file could not be read or written.
    #[error("cookie jar {}: {reason}", path.display())]
    CookieJar {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Any other HTTP-level failure (bad response, bad header value).
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl FetchError {
    /// Wraps an I/O error from reading a [`Response`] (which is a plain `io::Read`).
    pub fn from_io(e: io::Error) -> FetchError {
        FetchError::Io {
            url: String::new(),
            error: e,
        }
    }

    fn from_ureq(url: &str, e: ureq::Error, max_redirects: u32) -> FetchError {
        let url = url.to_string();
        match e {
            ureq::Error::HostNotFound => FetchError::Dns { url },
            ureq::Error::Io(e) => FetchError::from_io_at(&url, e),
            ureq::Error::Timeout(t) => FetchError::Timeout {
                url,
                what: t.to_string(),
            },
            ureq::Error::ConnectionFailed => FetchError::Connect {
                url,
                reason: "connection failed".into(),
            },
            ureq::Error::TooManyRedirects => FetchError::TooManyRedirects {
                url,
                max: max_redirects,
            },
            ureq::Error::Tls(m) => FetchError::Tls {
                url,
                reason: m.to_string(),
            },
            ureq::Error::Rustls(e) => FetchError::Tls {
                url,
                reason: e.to_string(),
            },
            ureq::Error::BadUri(reason) => FetchError::InvalidUrl { url, reason },
            other => FetchError::Http {
                url,
                reason: other.to_string(),
            },
        }
    }

    fn from_io_at(url: &str, e: io::Error) -> FetchError {
        if e.get_ref().is_some_and(|x| x.is::<ureq::Error>()) {
            let ue = ureq::Error::from(e);
            return FetchError::from_ureq(url, ue, 0);
        }
        let url = url.to_string();
        if let Some(tls) = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()) {
            return FetchError::Tls {
                url,
                reason: tls.to_string(),
            };
        }
        if e.to_string().contains("failed to lookup address") {
            return FetchError::Dns { url };
        }
        match e.kind() {
            io::ErrorKind::ConnectionRefused => FetchError::Refused { url },
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FetchError::Timeout {
                url,
                what: "read".into(),
            },
            _ => FetchError::Io { url, error: e },
        }
    }
}

/// Client settings. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Connect timeout (per address tried). Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for the response head and for each read of the body. Default 30 s.
    pub read_timeout: Duration,
    /// Redirects followed before giving up. Default 10.
    pub max_redirects: u32,
    /// Basic auth credentials; credentials in the URL take precedence.
    pub user: Option<(String, String)>,
    /// Extra request headers, sent with every request.
    pub headers: Vec<(String, String)>,
    /// A PEM file of CA certificates to trust instead of the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// A cookie jar file, loaded by [`Client::new`] if it exists and written by
    /// [`Client::save_cookies`].
    pub cookie_jar: Option<PathBuf>,
    /// The `User-Agent` header. Default `netkit/VERSION`.
    pub user_agent: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_redirects: 10,
            user: None,
            headers: Vec::new(),
            ca_file: None,
            cookie_jar: None,
            user_agent: super::SERVER.to_string(),
        }
    }
}

/// A response being read: status, headers, and the body as `Read` / `BufRead`
/// (`read_line`, `lines`).
pub struct Response {
    url: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: BufReader<Box<dyn Read + Send>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("url", &self.url)
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The URL the body came from (after redirects).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The status code (200 for `file://`).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Every header, in order, names in lowercase.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, if the server sent a valid one.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// Reads the whole body.
    ///
    /// # Errors
    /// [`FetchError::Io`] (or a timeout) when the transfer fails.
    pub fn read_all(&mut self) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        self.body
            .read_to_end(&mut out)
            .map_err(|e| FetchError::from_io_at(&self.url, e))?;
        Ok(out)
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

impl BufRead for Response {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.body.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.body.consume(n)
    }
}

/// How far a download has come, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the file present (a resumed prefix included).
    pub done: u64,
    /// The file's full size, when the server said.
    pub total: Option<u64>,
    /// Bytes that were already there when this transfer started.
    pub resumed_from: u64,
}

/// Where a download goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This file.
    File(PathBuf),
    /// This directory, under a name from the URL's last path segment or the
    /// server's `Content-Disposition` filename, sanitized (`index.html` if empty).
    Dir(PathBuf),
}

/// A finished download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Where the file is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Bytes that were already there from an earlier, interrupted transfer.
    pub resumed_from: u64,
    /// The final response's headers.
    pub headers: Vec<(String, String)>,
}

/// An HTTP client: one connection pool and one cookie jar, for a run.
///
/// ```
/// use std::io::BufRead;
/// use netkit::http::fetch::{Client, FetchOptions, Target};
///
/// let dir = std::env::temp_dir().join(format!("netkit-fetch-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("notes.txt"), "first\nsecond\n")?;
/// let client = Client::new(FetchOptions::default())?;
/// let url = format!("file://{}/notes.txt", dir.display());
///
/// let page = client.urlopen(&url)?;
/// assert_eq!(page.status(), 200);
/// let lines: Vec<String> = page.lines().collect::<Result<_, _>>().map_err(netkit::http::fetch::FetchError::from_io)?;
/// assert_eq!(lines, ["first", "second"]);
///
/// let got = client.download(&url, &Target::File(dir.join("copy.txt")), false, &mut |_| {})?;
/// assert_eq!(got.size, 13);
/// assert_eq!(std::fs::read_to_string(dir.join("copy.txt"))?, "first\nsecond\n");
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    opts: FetchOptions,
}

impl Client {
    /// A client with these options; loads the cookie jar file if it exists.
    ///
    /// # Errors
    /// [`FetchError::CaFile`] or [`FetchError::CookieJar`] when those files are unusable.
    pub fn new(opts: FetchOptions) -> Result<Client, FetchError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &opts.ca_file {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&load_ca(path)?));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(opts.max_redirects)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .user_agent(opts.user_agent.as_str())
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .tls_config(tls.build())
            .build();
        let agent = ureq::Agent::new_with_config(config);
        if let Some(path) = opts.cookie_jar.as_ref().filter(|p| p.exists()) {
            let file = File::open(path).map_err(|e| FetchError::CookieJar {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            agent
                .cookie_jar_lock()
                .load_json(BufReader::new(file))
                .map_err(|e| FetchError::CookieJar {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(Client { agent, opts })
    }

    /// Writes the persistent cookies to the cookie jar file, if one is set
    /// (written beside it and renamed, so a failure never leaves half a jar).
    ///
    /// # Errors
    /// [`FetchError::CookieJar`] when the file cannot be written.
    pub fn save_cookies(&self) -> Result<(), FetchError> {
        let Some(path) = &self.opts.cookie_jar else {
            return Ok(());
        };
        let err = |reason: String| FetchError::CookieJar {
            path: path.clone(),
            reason,
        };
        let tmp = part_path(path);
        let mut file = File::create(&tmp).map_err(|e| err(e.to_string()))?;
        self.agent
            .cookie_jar_lock()
            .save_json(&mut file)
            .map_err(|e| err(e.to_string()))?;
        file.sync_all().map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }

    /// Opens `url` (Python's `urlopen`): follows redirects and returns the response
    /// to read.
    ///
    /// # Errors
    /// A [`FetchError`] naming the URL: DNS, refused, TLS, timeout, status ≥ 400...
    pub fn urlopen(&self, url: &str) -> Result<Response, FetchError> {
        let resp = self.request(url, 0)?;
        check_status(resp)
    }

    /// Sends a GET, from byte `offset` when it is not 0; any status is returned.
    fn request(&self, url: &str, offset: u64) -> Result<Response, FetchError> {
        let parsed = parse_url(url)?;
        if parsed.scheme == "file" {
            return open_file(url, &parsed.rest, offset);
        }
        let mut req = self.agent.get(parsed.without_userinfo.as_str());
        let creds = parsed.userinfo.clone().or_else(|| self.opts.user.clone());
        if let Some((user, pass)) = creds {
            let token = base64(format!("{user}:{pass}").as_bytes());
            req = req.header("Authorization", format!("Basic {token}"));
        }
        for (name, value) in &self.opts.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        if offset > 0 {
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let resp = req.call().map_err(|e| {
            FetchError::from_ureq(&parsed.without_userinfo, e, self.opts.max_redirects)
        })?;
        let final_url = resp.get_uri().to_string();
        let (parts, body) = resp.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(Response {
            url: final_url,
            status: parts.status.as_u16(),
            headers,
            body: BufReader::with_capacity(64 * 1024, Box::new(body.into_reader())),
        })
    }

    /// Downloads `url` into `target` without ever leaving a partial target: the
    /// data goes to `TARGET.part` and is renamed when complete. With `resume`, an
    /// existing `.part` is continued with a Range request.
    ///
    /// # Errors
    /// Any [`FetchError`]; [`FetchError::Incomplete`] (or the transfer's error)
    /// when the body was cut off, with the `.part` file kept.
    pub fn download(
        &self,
        url: &str,
        target: &Target,
        resume: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Downloaded, FetchError> {
        let first = match target {
            Target::File(p) => p.clone(),
            Target::Dir(d) => d.join(name_from_url(url)),
        };
        let part = part_path(&first);
        let mut offset = if resume {
            std::fs::metadata(&part).map_or(0, |m| m.len())
        } else {
            0
        };
        let mut resp = self.request(url, offset)?;
        let mut total = resp.content_length();
        match resp.status {
            206 if offset > 0 => {
                let cr = resp.header("content-range").unwrap_or("").to_string();
                match parse_content_range(&cr) {
                    Some((start, size)) if start == offset => {
                        total = size.or(total.map(|l| l + offset))
                    }
                    _ => {
                        return Err(FetchError::RangeMismatch {
                            url: resp.url.clone(),
                            offset,
                            got: cr,
                        })
                    }
                }
            }
            416 if offset > 0 => {
                // The part may already be the whole file.
                let cr = resp.header("content-range").unwrap_or("");
                let size = cr
                    .strip_prefix("bytes */")
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if size != Some(offset) {
                    return Err(status_error(&resp));
                }
                total = Some(offset);
            }
            s if !(200..300).contains(&s) => return Err(status_error(&resp)),
            _ => offset = 0,
        }
        let path = match (target, content_disposition_name(&resp)) {
            (Target::Dir(d), Some(name)) => d.join(name),
            _ => first,
        };
        let file_err = |path: &Path, error| FetchError::File {
            path: path.to_path_buf(),
            error,
        };
        let mut file = if offset > 0 {
            OpenOptions::new().append(true).open(&part)
        } else {
            File::create(&part)
        }
        .map_err(|e| file_err(&part, e))?;
        let mut done = offset;
        progress(Progress {
            done,
            total,
            resumed_from: offset,
        });
        if resp.status != 416 {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match resp.body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = file.flush();
                        return Err(FetchError::from_io_at(&resp.url, e));
                    }
                };
                file.write_all(&buf[..n]).map_err(|e| file_err(&part, e))?;
                done += n as u64;
                progress(Progress {
                    done,
                    total,
                    resumed_from: offset,
                });
            }
        }
        if let Some(expected) = total.filter(|t| *t != done) {
            return Err(FetchError::Incomplete {
                url: resp.url.clone(),
                got: done,
                expected,
                part,
            });
        }
        file.sync_all().map_err(|e| file_err(&part, e))?;
        drop(file);
        std::fs::rename(&part, &path).map_err(|e| file_err(&path, e))?;
        Ok(Downloaded {
            path,
            size: done,
            resumed_from: offset,
            headers: resp.headers.clone(),
        })
    }

    /// Python's `urlretrieve`: saves `url` to `path`, or to a new temporary file
    /// (removed by [`urlcleanup`]) when `path` is `None`.
    ///
    /// # Errors
    /// As [`download`](Client::download).
    pub fn urlretrieve(
        &self,
        url: &str,
        path: Option<&Path>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Downloaded, FetchError> {
        let target = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = temp_path(url);
                register_temp(p.clone());
                p
            }
        };
        self.download(url, &Target::File(target), false, progress)
    }
}

/// Opens `url` with a default [`Client`] (Python's `urllib.request.urlopen`).
///
/// # Errors
/// As [`Client::urlopen`].
pub fn urlopen(url: &str) -> Result<Response, FetchError> {
    Client::new(FetchOptions::default())?.urlopen(url)
}

/// Saves `url` to `path` (or a temporary file) with a default [`Client`]
/// (Python's `urlretrieve`); returns where it went and the response headers.
///
/// # Errors
/// As [`Client::download`].
pub fn urlretrieve(
    url: &str,
    path: Option<&Path>,
    mut progress: impl FnMut(Progress),
) -> Result<(PathBuf, Vec<(String, String)>), FetchError> {
    let d = Client::new(FetchOptions::default())?.urlretrieve(url, path, &mut progress)?;
    Ok((d.path, d.headers))
}

static TEMP_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn register_temp(p: PathBuf) {
    if let Ok(mut v) = TEMP_FILES.lock() {
        v.push(p);
    }
}

/// Removes the temporary files made by [`urlretrieve`] without a path (Python's
/// `urlcleanup`); returns how many were removed.
pub fn urlcleanup() -> usize {
    let Ok(mut v) = TEMP_FILES.lock() else {
        return 0;
    };
    let mut removed = 0;
    for p in v.drain(..) {
        let _ = std::fs::remove_file(part_path(&p));
        if std::fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A fresh path in the temp directory, keeping the URL's file extension.
fn temp_path(url: &str) -> PathBuf {
    let name = name_from_url(url);
    let ext = Path::new(&name)
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("netkit-{}-{nanos:x}-{n}{ext}", std::process::id()))
}

fn content_disposition_name(resp: &Response) -> Option<String> {
    let cd = resp.header("content-disposition")?;
    let v = cd.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("filename")
            .then(|| v.trim().trim_matches('"').to_string())
    })?;
    Some(sanitize_name(&v))
}

fn status_error(resp: &Response) -> FetchError {
    FetchError::Status {
        url: resp.url.clone(),
        status: resp.status,
        reason: http::StatusCode::from_u16(resp.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_string(),
    }
}

fn check_status(resp: Response) -> Result<Response, FetchError> {
    if resp.status >= 400 {
        return Err(status_error(&resp));
    }
    Ok(resp)
}

fn load_ca(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, FetchError> {
    let err = |reason: String| FetchError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    Ok(certs)
}

/// `file://[localhost]/path` as a [`Response`].
fn open_file(url: &str, rest: &str, offset: u64) -> Result<Response, FetchError> {
    let path = if let Some(p) = rest.strip_prefix("localhost/") {
        format!("/{p}")
    } else if rest.starts_with('/') {
        rest.to_string()
    } else {
        return Err(FetchError::InvalidUrl {
            url: url.to_string(),
            reason: "file URLs name a local path (file:///path)".into(),
        });
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    let path = PathBuf::from(std::ffi::OsString::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&decoded),
    ));
    let ferr = |error| FetchError::File {
        path: path.clone(),
        error,
    };
    let mut file = File::open(&path).map_err(ferr)?;
    let meta = file.metadata().map_err(ferr)?;
    if meta.is_dir() {
        return Err(ferr(io::Error::other("is a directory")));
    }
    let size = meta.len();
    let mut headers = vec![
        (
            "content-type".to_string(),
            super::mime::content_type(&path).to_string(),
        ),
        (
            "content-length".to_string(),
            size.saturating_sub(offset).to_string(),
        ),
    ];
    if let Ok(m) = meta.modified() {
        headers.push(("last-modified".to_string(), httpdate::fmt_http_date(m)));
    }
    let mut status = 200;
    if offset > 0 {
        if offset >= size {
            return Ok(Response {
                url: url.to_string(),
                status: 416,
                headers: vec![("content-range".into(), format!("bytes */{size}"))],
                body: BufReader::new(Box::new(io::empty())),
            });
        }
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset)).map_err(ferr)?;
        status = 206;
        headers.push((
            "content-range".to_string(),
            format!("bytes {offset}-{}/{size}", size - 1),
        ));
    }
    Ok(Response {
        url: url.to_string(),
        status,
        headers,
        body: BufReader::with_capacity(64 * 1024, Box::new(file)),
    })
}
