//! The HTTP client: Python's `urlopen`, `urlretrieve` and `urlcleanup`, on ureq
//! with rustls, plus resumable downloads that never lose data.
//!
//! In scope: `http://`, `https://` and `file://` URLs (parsed by the `url` crate;
//! a malformed one is [`FetchError::InvalidUrl`]); TLS trusting what
//! [`crate::protocol::trust`] says (the system's roots, a `--cacert` file whose
//! self-signed certificates are accepted as themselves, or nothing checked);
//! redirects followed here, one hop at a time, credentials (basic auth from the
//! URL or the options, and `Authorization`/`Cookie` request headers) sent only
//! while scheme, host and port stay those of the first URL, unless
//! [`FetchOptions::location_trusted`]; cookies kept across redirects and
//! requests of one [`Client`], optionally loaded from and saved to a Netscape
//! cookie file (session cookies included, as curl does); extra request headers.
//!
//! Timeouts and limits: [`FetchOptions::connect_timeout`] per connection
//! attempt; [`FetchOptions::read_timeout`] for the response head and for each
//! read of the body (a body dripped byte by byte never trips it);
//! [`FetchOptions::max_time`] for the whole transfer, redirects included;
//! [`FetchOptions::speed_limit`] aborts a transfer slower than a rate for a
//! while; [`FetchOptions::max_filesize`] refuses a bigger file.
//!
//! Every status of 400 or more is an error ([`FetchError::Status`]), as curl's
//! `--fail` makes it: a download never saves an error page as if it were the file.
//!
//! Downloads ([`Client::download`]) go to `NAME.part` beside the target and are
//! renamed over the target only when complete: the byte count matches
//! `Content-Length`, or, for a body without a length, the connection ended
//! cleanly (a FIN; over TLS, `close_notify`). A reset, an unclean TLS close, a
//! timeout or a limit is an error ([`FetchError::Incomplete`]) that keeps the
//! `.part`; an existing target is never touched by a failed download, and
//! `resume` continues the `.part` with a Range request, checking that the server
//! answered with the matching `Content-Range` (a 200 restarts from zero).
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

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cookie_store::CookieStore;
use rustls::ClientConfig;
use ureq::http;

use crate::protocol::trust::{self, Trust, TrustError};

mod cookies;
mod download;
mod file;
mod transport;
mod url;

pub use cookies::{format_cookie_file, parse_cookie_file, CookieFileError, CookieLine};
pub use download::{Downloaded, Progress, SpeedLimit, Target};
use file::open_file;
pub use transport::Cut;
use url::{base64, parse_url, Parsed};
pub use url::{check_url, name_from_url, part_path, sanitize_name};

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
    /// The transfer stopped before the body was complete (the connection was
    /// cut, reset or timed out, or a limit was reached); a download keeps the
    /// partial data in its `.part` file.
    #[error("{url}: download cut short: {reason}; {got} of {} bytes arrived{}", expected.map_or("unknown".to_string(), |e| e.to_string()), part.as_ref().map_or(String::new(), |p| format!("; partial data kept in {} (resume with --continue)", p.display())))]
    Incomplete {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
        /// Bytes received (including any resumed prefix).
        got: u64,
        /// Bytes announced, when the server said.
        expected: Option<u64>,
        /// The `.part` file holding them (none when streaming).
        part: Option<PathBuf>,
    },
    /// The file is bigger than [`FetchOptions::max_filesize`].
    #[error("{url}: the file is larger than the limit of {limit} bytes{}", size.map_or(String::new(), |s| format!(" ({s} bytes)")))]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
        /// The announced size, when the server said.
        size: Option<u64>,
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
                what: match t {
                    ureq::Timeout::Global => "the maximum time for the transfer".into(),
                    other => other.to_string(),
                },
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
        if let Some(cut) = e.get_ref().and_then(|x| x.downcast_ref::<Cut>()) {
            let cut = *cut;
            return FetchError::Io {
                url,
                error: io::Error::other(cut),
            };
        }
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
    /// Longest time for the whole transfer, redirects included (curl's
    /// `--max-time`). Default: none.
    pub max_time: Option<Duration>,
    /// Abort a transfer slower than this (curl's `--speed-limit/--speed-time`).
    pub speed_limit: Option<SpeedLimit>,
    /// Refuse a file larger than this many bytes (curl's `--max-filesize`).
    pub max_filesize: Option<u64>,
    /// Redirects followed before giving up. Default 10.
    pub max_redirects: u32,
    /// Basic auth credentials; credentials in the URL take precedence.
    pub user: Option<(String, String)>,
    /// Send credentials on redirects to another scheme, host or port too
    /// (curl's `--location-trusted`). Default false.
    pub location_trusted: bool,
    /// Extra request headers, sent with every request (`Authorization` and
    /// `Cookie` only to the first URL's origin, as credentials).
    pub headers: Vec<(String, String)>,
    /// Which HTTPS servers to trust. Default: the system's roots.
    pub trust: Trust,
    /// A Netscape cookie file, loaded by [`Client::new`] if it exists and written
    /// by [`Client::save_cookies`].
    pub cookie_jar: Option<PathBuf>,
    /// The `User-Agent` header. Default `netkit/VERSION`.
    pub user_agent: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_time: None,
            speed_limit: None,
            max_filesize: None,
            max_redirects: 10,
            user: None,
            location_trusted: false,
            headers: Vec::new(),
            trust: Trust::System,
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
    /// The TLS configuration, or why there is none (no system roots: only
    /// `https` URLs fail then).
    tls: Result<Arc<ClientConfig>, String>,
    jar: Mutex<CookieStore>,
}

/// Redirect statuses that carry a `Location` to follow with a GET.
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

impl Client {
    /// A client with these options; loads the cookie jar file if it exists.
    ///
    /// # Errors
    /// [`FetchError::CaFile`] or [`FetchError::CookieJar`] when those files are unusable.
    pub fn new(opts: FetchOptions) -> Result<Client, FetchError> {
        let tls = match trust::client_config(&opts.trust) {
            Ok(c) => Ok(Arc::new(c)),
            Err(e @ TrustError::NoSystemRoots) => Err(e.to_string()),
            Err(TrustError::Read { path, error }) => {
                return Err(FetchError::CaFile {
                    path,
                    reason: error.to_string(),
                })
            }
            Err(TrustError::BadCaFile { path, reason }) => {
                return Err(FetchError::CaFile { path, reason })
            }
            Err(e) => {
                return Err(FetchError::Tls {
                    url: String::new(),
                    reason: e.to_string(),
                })
            }
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(opts.user_agent.as_str())
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .build();
        let connector = transport::connector(tls.as_ref().ok().cloned());
        let agent = ureq::Agent::with_parts(
            config,
            connector,
            ureq::unversioned::resolver::DefaultResolver::default(),
        );
        let mut jar = CookieStore::default();
        if let Some(path) = opts.cookie_jar.as_ref().filter(|p| p.exists()) {
            let err = |reason: String| FetchError::CookieJar {
                path: path.clone(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            let lines = parse_cookie_file(&text).map_err(|e| err(e.to_string()))?;
            cookies::load(&mut jar, &lines);
        }
        Ok(Client {
            agent,
            opts,
            tls,
            jar: Mutex::new(jar),
        })
    }

    /// Writes every unexpired cookie, session cookies included, to the cookie
    /// jar file in the Netscape format, if one is set (written beside it and
    /// renamed, so a failure never leaves half a jar).
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
        let text = {
            let jar = self.jar.lock().map_err(|_| err("poisoned".into()))?;
            format_cookie_file(&cookies::dump(&jar))
        };
        let tmp = part_path(path);
        std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }

    /// Opens `url` (Python's `urlopen`): follows redirects and returns the response
    /// to read.
    ///
    /// # Errors
    /// A [`FetchError`] naming the URL: DNS, refused, TLS, timeout, status ≥ 400...
    pub fn urlopen(&self, url: &str) -> Result<Response, FetchError> {
        let deadline = self.opts.max_time.map(|t| Instant::now() + t);
        let resp = self.request(url, 0, deadline)?;
        check_status(resp)
    }

    /// Sends a GET, from byte `offset` when it is not 0, following redirects;
    /// any final status is returned.
    fn request(
        &self,
        url: &str,
        offset: u64,
        deadline: Option<Instant>,
    ) -> Result<Response, FetchError> {
        let first = parse_url(url)?;
        if first.is_file() {
            return open_file(url, &first.url, offset);
        }
        let creds = first.userinfo.clone().or_else(|| self.opts.user.clone());
        let mut current = first.clone();
        let mut hops = 0;
        loop {
            let trusted = self.opts.location_trusted || url::same_origin(&first.url, &current.url);
            let resp = self.hop(&current, trusted, creds.as_ref(), offset, deadline)?;
            let location = REDIRECTS
                .contains(&resp.status)
                .then(|| resp.header("location").map(str::to_string))
                .flatten();
            let Some(location) = location else {
                return Ok(resp);
            };
            if hops >= self.opts.max_redirects {
                if self.opts.max_redirects == 0 {
                    return Ok(resp);
                }
                return Err(FetchError::TooManyRedirects {
                    url: first.url.to_string(),
                    max: self.opts.max_redirects,
                });
            }
            hops += 1;
            current = url::join(&current.url, &location)?;
        }
    }

    /// One request, no redirect followed; cookies sent and stored. Credentials
    /// (`creds`, and `Authorization`/`Cookie` among the extra headers) go only
    /// when `trusted`.
    fn hop(
        &self,
        target: &Parsed,
        trusted: bool,
        creds: Option<&(String, String)>,
        offset: u64,
        deadline: Option<Instant>,
    ) -> Result<Response, FetchError> {
        let shown = target.url.to_string();
        if target.url.scheme() == "https" {
            if let Err(reason) = &self.tls {
                return Err(FetchError::Tls {
                    url: shown,
                    reason: reason.clone(),
                });
            }
        }
        let mut req = self.agent.get(target.url.as_str());
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FetchError::Timeout {
                    url: shown,
                    what: "the maximum time for the transfer".into(),
                });
            }
            req = req.config().timeout_global(Some(left)).build();
        }
        if let Some(sl) = &self.opts.speed_limit {
            let per_read = self.opts.read_timeout.min(sl.time);
            req = req.config().timeout_per_read(Some(per_read)).build();
        }
        if let Some((user, pass)) = creds.filter(|_| trusted) {
            let token = base64(format!("{user}:{pass}").as_bytes());
            req = req.header("Authorization", format!("Basic {token}"));
        }
        for (name, value) in &self.opts.headers {
            let credential =
                name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie");
            if trusted || !credential {
                req = req.header(name.as_str(), value.as_str());
            }
        }
        let cookie = self.cookie_header(&target.url);
        if !cookie.is_empty() {
            req = req.header("Cookie", cookie);
        }
        if offset > 0 {
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let resp = req
            .call()
            .map_err(|e| FetchError::from_ureq(&shown, e, self.opts.max_redirects))?;
        let (parts, body) = resp.into_parts();
        self.store_cookies(&target.url, &parts.headers);
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
            url: shown,
            status: parts.status.as_u16(),
            headers,
            body: BufReader::with_capacity(64 * 1024, Box::new(body.into_reader())),
        })
    }

    fn cookie_header(&self, url: &::url::Url) -> String {
        let Ok(jar) = self.jar.lock() else {
            return String::new();
        };
        jar.get_request_values(url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store_cookies(&self, url: &::url::Url, headers: &http::HeaderMap) {
        let Ok(mut jar) = self.jar.lock() else {
            return;
        };
        let cookies = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|s| cookie_store::RawCookie::parse(s.to_string()).ok());
        jar.store_response_cookies(cookies, url);
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
