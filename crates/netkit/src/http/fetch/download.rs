//! Downloads: [`Client::download`] writes `NAME.part`, watches the transfer's
//! limits (whole-transfer time, minimum speed, maximum size) and renames the
//! part over the target only when the body is known complete.
//!
//! A body is complete when its byte count matches `Content-Length`, or, without
//! a length, when the connection ended cleanly (see [`super::transport`]).
//! Anything else is [`FetchError::Incomplete`], saying what happened and how
//! many bytes arrived, with the `.part` kept for a later resume. Out of scope:
//! parallel or segmented downloads.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::url::parse_content_range;
use super::{
    content_disposition_name, name_from_url, part_path, status_error, Client, Cut, FetchError,
};

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

/// The slowest a transfer may be: fewer than `bytes_per_sec` on average over
/// `time` aborts it (curl's `--speed-limit` and `--speed-time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeedLimit {
    /// The minimum average rate.
    pub bytes_per_sec: u64,
    /// How long the rate may stay below the minimum.
    pub time: Duration,
}

/// Why a transfer stopped early.
enum Stop {
    /// The body was cut short (or a limit on time or rate stopped it).
    Cut {
        /// What happened.
        reason: String,
        /// Bytes present so far.
        done: u64,
    },
    /// Any other failure, reported as it is.
    Fatal(FetchError),
}

/// Where a transfer's bytes go.
trait Sink {
    fn put(&mut self, data: &[u8]) -> Result<(), FetchError>;
}

struct FileSink<'a> {
    file: &'a mut File,
    path: &'a Path,
}

impl Sink for FileSink<'_> {
    fn put(&mut self, data: &[u8]) -> Result<(), FetchError> {
        self.file.write_all(data).map_err(|error| FetchError::File {
            path: self.path.to_path_buf(),
            error,
        })
    }
}

struct WriteSink<'a>(&'a mut dyn Write);

impl Sink for WriteSink<'_> {
    fn put(&mut self, data: &[u8]) -> Result<(), FetchError> {
        self.0.write_all(data).map_err(|error| FetchError::Io {
            url: "writing the output".into(),
            error,
        })
    }
}

/// Measures the rate over windows of [`SpeedLimit::time`].
struct Meter {
    limit: Option<SpeedLimit>,
    since: Instant,
    bytes: u64,
}

impl Meter {
    fn new(limit: Option<SpeedLimit>) -> Meter {
        Meter {
            limit,
            since: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `n` more bytes; says why to stop when the rate is too low.
    fn update(&mut self, n: u64) -> Option<String> {
        let limit = self.limit?;
        self.bytes += n;
        let elapsed = self.since.elapsed();
        if elapsed < limit.time {
            return None;
        }
        if (self.bytes as f64) < limit.bytes_per_sec as f64 * elapsed.as_secs_f64() {
            return Some(too_slow(&limit));
        }
        self.since = Instant::now();
        self.bytes = 0;
        None
    }
}

fn too_slow(limit: &SpeedLimit) -> String {
    format!(
        "slower than {} bytes/s for {}",
        limit.bytes_per_sec,
        show_duration(limit.time)
    )
}

/// `500ms`, `2s`, `1.5s`.
pub(crate) fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Client {
    /// Downloads `url` into `target` without ever leaving a partial target: the
    /// data goes to `TARGET.part` and is renamed when complete. With `resume`, an
    /// existing `.part` is continued with a Range request.
    ///
    /// # Errors
    /// Any [`FetchError`]; [`FetchError::Incomplete`] when the body was cut off
    /// or a limit stopped it, with the `.part` file kept;
    /// [`FetchError::TooLarge`] past [`max_filesize`](super::FetchOptions::max_filesize).
    pub fn download(
        &self,
        url: &str,
        target: &Target,
        resume: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Downloaded, FetchError> {
        let deadline = self.opts.max_time.map(|t| Instant::now() + t);
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
        let mut resp = self.request(url, offset, deadline)?;
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
        self.check_size(&resp, total)?;
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
            let mut sink = FileSink {
                file: &mut file,
                path: &part,
            };
            let moved = self.transfer(&mut resp, &mut sink, offset, total, deadline, progress);
            match moved {
                Ok(n) => done = n,
                Err(Stop::Cut { reason, done }) => {
                    let _ = file.flush();
                    return Err(FetchError::Incomplete {
                        url: resp.url.clone(),
                        reason,
                        got: done,
                        expected: total,
                        part: Some(part),
                    });
                }
                Err(Stop::Fatal(e)) => {
                    let _ = file.flush();
                    return Err(e);
                }
            }
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

    /// Copies `url`'s body to `out` (for `-o -`), under the same limits as a
    /// download; returns the byte count.
    ///
    /// # Errors
    /// As [`urlopen`](Client::urlopen); [`FetchError::Incomplete`] (without a
    /// `.part`) when the body was cut off or a limit stopped it;
    /// [`FetchError::TooLarge`]; [`FetchError::Io`] when `out` fails.
    pub fn stream_to(&self, url: &str, out: &mut dyn Write) -> Result<u64, FetchError> {
        let deadline = self.opts.max_time.map(|t| Instant::now() + t);
        let mut resp = self.request(url, 0, deadline)?;
        if resp.status >= 400 {
            return Err(status_error(&resp));
        }
        let total = resp.content_length();
        self.check_size(&resp, total)?;
        let mut sink = WriteSink(out);
        match self.transfer(&mut resp, &mut sink, 0, total, deadline, &mut |_| {}) {
            Ok(n) => Ok(n),
            Err(Stop::Cut { reason, done }) => Err(FetchError::Incomplete {
                url: resp.url.clone(),
                reason,
                got: done,
                expected: total,
                part: None,
            }),
            Err(Stop::Fatal(e)) => Err(e),
        }
    }

    /// [`FetchError::TooLarge`] when the announced size is over the limit.
    fn check_size(&self, resp: &super::Response, total: Option<u64>) -> Result<(), FetchError> {
        match (self.opts.max_filesize, total) {
            (Some(limit), Some(size)) if size > limit => Err(FetchError::TooLarge {
                url: resp.url.clone(),
                limit,
                size: Some(size),
            }),
            _ => Ok(()),
        }
    }

    /// Moves the body to `sink`, counting from `start`, until a clean end
    /// (and then checks the count against `total`), an error or a limit.
    fn transfer(
        &self,
        resp: &mut super::Response,
        sink: &mut dyn Sink,
        start: u64,
        total: Option<u64>,
        deadline: Option<Instant>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, Stop> {
        let mut meter = Meter::new(self.opts.speed_limit);
        let mut buf = vec![0u8; 64 * 1024];
        let mut done = start;
        loop {
            let n = match resp.body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let reason = self.why(&e, deadline);
                    return Err(Stop::Cut { reason, done });
                }
            };
            sink.put(&buf[..n]).map_err(Stop::Fatal)?;
            done += n as u64;
            progress(Progress {
                done,
                total,
                resumed_from: start,
            });
            if let Some(limit) = self.opts.max_filesize.filter(|l| done > *l) {
                return Err(Stop::Fatal(FetchError::TooLarge {
                    url: resp.url.clone(),
                    limit,
                    size: None,
                }));
            }
            if let Some(reason) = meter.update(n as u64) {
                return Err(Stop::Cut { reason, done });
            }
        }
        if total.is_some_and(|t| t != done) {
            return Err(Stop::Cut {
                reason: Cut::Eof.to_string(),
                done,
            });
        }
        Ok(done)
    }

    /// What a failed body read means, in words.
    fn why(&self, e: &io::Error, deadline: Option<Instant>) -> String {
        if let Some(cut) = e.get_ref().and_then(|x| x.downcast_ref::<Cut>()) {
            return cut.to_string();
        }
        let timeout = match e.get_ref().and_then(|x| x.downcast_ref::<ureq::Error>()) {
            Some(ureq::Error::Timeout(_)) => true,
            _ => matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
        };
        if deadline.is_some_and(|d| Instant::now() + Duration::from_millis(50) >= d) {
            if let Some(max) = self.opts.max_time {
                return format!("the maximum time of {} ran out", show_duration(max));
            }
        }
        if timeout {
            if let Some(limit) = &self.opts.speed_limit {
                if limit.time <= self.opts.read_timeout {
                    return too_slow(limit);
                }
            }
            return format!(
                "no data for {} (read timeout)",
                show_duration(self.opts.read_timeout)
            );
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return Cut::Eof.to_string();
        }
        e.to_string()
    }
}
