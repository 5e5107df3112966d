//! `netkit send ADDR PATTERN...`: send files picked by glob patterns to
//! `netkit serve receive --root DIR`, one connection, one header per file, bodies
//! with `sendfile(2)`, resuming what an interrupted run left behind.
//!
//! Names on the receiver are relative: a relative pattern without `..` keeps the
//! path as given (`docs/*.md` sends `docs/a.md`); an absolute pattern or one with
//! `..` is named from its base, the directories before the first wildcard
//! (`/var/log/*.log` sends `syslog.log`; a plain `/etc/hosts` sends `hosts`).
//! Directories are walked with `--recursive`; without it a directory named
//! outright is an error and one matched by a wildcard is skipped. On a terminal a
//! progress bar per file and one overall are drawn on stderr. One line per file goes
//! to stdout; the exit status is 1 when any file failed. The wire format lives in
//! `netkit::services::transfer`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use netkit::net::units::{parse_duration, parse_size_u64};
use netkit::net::{self, Address, Stream};
use netkit::services::transfer::{
    mtime_secs, wire_path, Header, Reply, ReplyKind, Status, MAX_MESSAGE, REPLY_SIZE,
};

/// Bytes handed to one `sendfile` call between progress updates.
const CHUNK: u64 = 4 * 1024 * 1024;
/// Bytes read at a time while computing a file's CRC-32.
const CRC_CHUNK: usize = 256 * 1024;
/// Files at least this large are checksummed on several threads.
const PARALLEL_CRC_MIN: u64 = 16 * 1024 * 1024;

/// Arguments of `netkit send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The receiver (`netkit serve receive`): HOST:PORT or unix:///path.
    pub addr: String,
    /// Files to send: paths or glob patterns (`*`, `?`, `[abc]`, `**`).
    #[arg(required = true, value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Send the files under directories, recursively.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Give up connecting, or waiting on the receiver, after this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "60s")]
    pub timeout: Duration,
    /// Send at most this many bytes per second (e.g. 512KiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_size_u64)]
    pub limit_rate: Option<u64>,
}

/// A file to send: where it is here, and its name on the receiver.
#[derive(Debug)]
struct Item {
    local: PathBuf,
    remote: Vec<u8>,
    size: u64,
}

/// One line of the summary.
#[derive(Debug)]
enum Outcome {
    Sent { size: u64, resumed_at: u64 },
    Failed(String),
}

/// Why a file failed, and whether the connection can carry on.
#[derive(Debug)]
struct Failure {
    message: String,
    /// The connection is out of step (or gone) and must be replaced.
    broken: bool,
}

impl Failure {
    fn file(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            broken: false,
        }
    }
    fn conn(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            broken: true,
        }
    }
}

/// Runs `netkit send`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let addr = super::parse_address(&args.addr)?;
    if !addr.is_stream() {
        return Err(super::usage(format!(
            "`{}` is not a stream address (use HOST:PORT or unix:///path)",
            args.addr
        )));
    }
    if args.limit_rate == Some(0) {
        return Err(super::usage(
            "--limit-rate must be at least 1 byte per second",
        ));
    }
    let (items, mut report) = expand(&args.patterns, args.recursive);
    if items.is_empty() && report.is_empty() {
        bail!("nothing to send (directories need --recursive)");
    }
    let total: u64 = items.iter().map(|i| i.size).sum();
    let bars = Bars::new(total);
    for (name, outcome) in &report {
        bars.line(&summary_line(name, outcome));
    }
    let mut session = Session {
        addr,
        timeout: args.timeout,
        rate: args.limit_rate,
        conn: None,
        dead: None,
        sent: 0,
    };
    for item in &items {
        let name = String::from_utf8_lossy(&item.remote).into_owned();
        let outcome = match session.send(item, &bars) {
            Ok((size, resumed_at)) => Outcome::Sent { size, resumed_at },
            Err(f) => {
                if f.broken {
                    session.conn = None;
                }
                Outcome::Failed(f.message)
            }
        };
        bars.line(&summary_line(&name, &outcome));
        report.push((name, outcome));
    }
    bars.done();
    let failed = report
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .count();
    let line = format!(
        "{} of {} files sent, {} bytes on the wire",
        report.len() - failed,
        report.len(),
        session.sent
    );
    bars.line(&line);
    if failed > 0 {
        bail!("{failed} of {} files failed", report.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_line(name: &str, o: &Outcome) -> String {
    match o {
        Outcome::Sent {
            size,
            resumed_at: 0,
        } => format!("sent    {name} ({size} bytes)"),
        Outcome::Sent { size, resumed_at } => {
            format!("sent    {name} ({size} bytes, resumed at {resumed_at})")
        }
        Outcome::Failed(m) => format!("FAILED  {name}: {m}"),
    }
}

/// The connection to the receiver, made on first use and again after a failure.
#[derive(Debug)]
struct Session {
    addr: Address,
    timeout: Duration,
    rate: Option<u64>,
    conn: Option<Stream>,
    /// Set when connecting failed: the remaining files fail with it.
    dead: Option<String>,
    /// Body bytes sent, over all files.
    sent: u64,
}

impl Session {
    fn stream(&mut self) -> Result<&Stream, Failure> {
        if let Some(why) = &self.dead {
            return Err(Failure::file(format!("not sent: {why}")));
        }
        if self.conn.is_none() {
            let s = net::connect(&self.addr, self.timeout)
                .and_then(|s| {
                    s.set_read_timeout(Some(self.timeout))?;
                    s.set_write_timeout(Some(self.timeout))?;
                    Ok(s)
                })
                .map_err(|e| {
                    let why = format!("cannot connect to {}: {e}", self.addr);
                    self.dead = Some(why.clone());
                    Failure::file(why)
                })?;
            self.conn = Some(s);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| Failure::conn("no connection"))
    }

    /// Sends one file; returns its size and the offset the receiver resumed from.
    fn send(&mut self, item: &Item, bars: &Bars) -> Result<(u64, u64), Failure> {
        let file = File::open(&item.local)
            .map_err(|e| Failure::file(format!("{}: {e}", item.local.display())))?;
        let meta = file
            .metadata()
            .map_err(|e| Failure::file(format!("{}: {e}", item.local.display())))?;
        if !meta.is_file() {
            return Err(Failure::file("not a regular file"));
        }
        let size = meta.len();
        let crc = crc_of(&file, size)?;
        let header = Header::new(
            item.remote.clone(),
            size,
            meta.permissions().mode() & 0o777,
            mtime_secs(&meta),
            crc,
        )
        .encode()
        .map_err(|e| Failure::file(e.to_string()))?;
        let rate = self.rate;
        let stream = self.stream()?;
        stream
            .send_all(&header)
            .map_err(|e| Failure::conn(format!("sending the header: {e}")))?;
        let offer = read_reply(stream)?;
        let from = match offer.kind {
            ReplyKind::Result => return Err(Failure::file(refusal(&offer))),
            ReplyKind::Offer if offer.value > size => {
                return Err(Failure::conn(format!(
                    "the receiver offered to resume at {} of {size} bytes",
                    offer.value
                )))
            }
            ReplyKind::Offer => offer.value,
        };
        let bar = bars.file(&String::from_utf8_lossy(&item.remote), size, from);
        let sent = send_body(stream, &file, from, size, rate, &bar, bars);
        bar.finish_and_clear();
        let sent = sent?;
        let result = read_reply(stream)?;
        self.sent += sent;
        match (result.kind, result.status) {
            (ReplyKind::Result, Status::Ok) => Ok((size, from)),
            (ReplyKind::Result, _) => Err(Failure::file(refusal(&result))),
            (ReplyKind::Offer, _) => {
                Err(Failure::conn("the receiver sent an offer after the body"))
            }
        }
    }
}

fn refusal(r: &Reply) -> String {
    if r.message.is_empty() {
        format!("refused: {}", r.status)
    } else {
        format!("refused ({}): {}", r.status, r.message)
    }
}

/// Sends bytes `from..size` of `file`; returns how many were sent.
fn send_body(
    stream: &Stream,
    file: &File,
    from: u64,
    size: u64,
    rate: Option<u64>,
    bar: &ProgressBar,
    bars: &Bars,
) -> Result<u64, Failure> {
    let start = Instant::now();
    let chunk = rate.map_or(CHUNK, |r| (r / 10).clamp(1, CHUNK));
    let mut off = from;
    while off < size {
        let want = chunk.min(size - off);
        let n = stream
            .sendfile(file, off, want)
            .map_err(|e| Failure::conn(format!("sending the body: {e}")))?;
        if n == 0 {
            return Err(Failure::conn(format!(
                "the file shrank while being sent ({off} of {size} bytes)"
            )));
        }
        off += n;
        bar.inc(n);
        bars.total.inc(n);
        if let Some(r) = rate {
            let due = Duration::from_secs_f64((off - from) as f64 / r as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(off - from)
}

/// The CRC-32 of the first `size` bytes of `file`. A large file is split into
/// ranges hashed on parallel threads and the results combined.
fn crc_of(file: &File, size: u64) -> Result<u32, Failure> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4)) as u64;
    if size < PARALLEL_CRC_MIN || threads < 2 {
        return Ok(crc_range(file, 0, size)?.finalize());
    }
    let step = size.div_ceil(threads);
    let parts: Vec<Result<crc32fast::Hasher, Failure>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (start, end) = (i * step, ((i + 1) * step).min(size));
                s.spawn(move || crc_range(file, start, end))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failure::file("checksum thread failed")))
            })
            .collect()
    });
    let mut whole = crc32fast::Hasher::new();
    for part in parts {
        whole.combine(&part?);
    }
    Ok(whole.finalize())
}

/// A hasher over bytes `start..end` of `file`.
fn crc_range(file: &File, start: u64, end: u64) -> Result<crc32fast::Hasher, Failure> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CRC_CHUNK];
    let mut off = start;
    while off < end {
        let want = usize::try_from(end - off)
            .unwrap_or(CRC_CHUNK)
            .min(CRC_CHUNK);
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = file
            .read_at(chunk, off)
            .map_err(|e| Failure::file(format!("reading: {e}")))?;
        if n == 0 {
            return Err(Failure::file("the file shrank while being read"));
        }
        hasher.update(chunk.get(..n).unwrap_or_default());
        off += n as u64;
    }
    Ok(hasher)
}

/// Reads one reply record (fixed part, then its bounded message).
fn read_reply(stream: &Stream) -> Result<Reply, Failure> {
    let lost = |e: io::Error| Failure::conn(format!("waiting for the receiver: {e}"));
    let mut fixed = [0u8; REPLY_SIZE];
    stream.read_exact(&mut fixed).map_err(lost)?;
    let len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if len > MAX_MESSAGE {
        return Err(Failure::conn(format!(
            "the receiver sent a {len}-byte message"
        )));
    }
    let mut buf = fixed.to_vec();
    buf.resize(REPLY_SIZE + len, 0);
    if let Some(msg) = buf.get_mut(REPLY_SIZE..) {
        stream.read_exact(msg).map_err(lost)?;
    }
    match Reply::decode(&buf) {
        Ok(Some((r, _))) => Ok(r),
        Ok(None) => Err(Failure::conn("a short reply from the receiver")),
        Err(e) => Err(Failure::conn(format!("a bad reply from the receiver: {e}"))),
    }
}

/// Whether a pattern has glob wildcards.
fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Where names are taken from for `pattern`: `None` for a relative pattern without
/// `..` (names as given), else the directories before the first wildcard (or the
/// parent, for a plain path).
fn base_of(pattern: &str) -> Option<PathBuf> {
    let p = Path::new(pattern);
    if !p.is_absolute() && !p.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let comps: Vec<Component<'_>> = p.components().collect();
    let first_magic = comps
        .iter()
        .position(|c| has_magic(&c.as_os_str().to_string_lossy()));
    let keep = first_magic.unwrap_or(comps.len().saturating_sub(1));
    Some(comps.iter().take(keep).collect())
}

/// Expands the patterns into files (deduplicated by remote name), with a failure
/// line for each pattern or entry that cannot be sent.
fn expand(patterns: &[String], recursive: bool) -> (Vec<Item>, Vec<(String, Outcome)>) {
    let mut items: Vec<Item> = Vec::new();
    let mut fails = Vec::new();
    let mut seen: HashMap<Vec<u8>, PathBuf> = HashMap::new();
    for pattern in patterns {
        let mut found = Vec::new();
        let matches = match glob::glob(pattern) {
            Ok(m) => m,
            Err(e) => {
                fails.push((
                    pattern.clone(),
                    Outcome::Failed(format!("bad pattern: {e}")),
                ));
                continue;
            }
        };
        let base = base_of(pattern);
        let mut any = false;
        for m in matches {
            any = true;
            let path = match m {
                Ok(p) => p,
                Err(e) => {
                    fails.push((
                        e.path().display().to_string(),
                        Outcome::Failed(e.to_string()),
                    ));
                    continue;
                }
            };
            let rel = match &base {
                None => path.clone(),
                Some(b) => match path.strip_prefix(b) {
                    Ok(r) => r.to_path_buf(),
                    Err(_) => path.clone(),
                },
            };
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => found.push((path, rel, m.len())),
                Ok(m) if m.is_dir() && recursive => walk(&path, &rel, &mut found, &mut fails),
                Ok(m) if m.is_dir() && has_magic(pattern) => {}
                Ok(m) if m.is_dir() => fails.push((
                    path.display().to_string(),
                    Outcome::Failed("is a directory (use --recursive)".into()),
                )),
                Ok(_) => fails.push((
                    path.display().to_string(),
                    Outcome::Failed("not a regular file".into()),
                )),
                Err(e) => fails.push((path.display().to_string(), Outcome::Failed(e.to_string()))),
            }
        }
        if !any {
            let why = if has_magic(pattern) {
                "no file matches".to_string()
            } else {
                "no such file or directory".to_string()
            };
            fails.push((pattern.clone(), Outcome::Failed(why)));
        }
        for (local, rel, size) in found {
            let remote = match wire_path(&rel) {
                Ok(r) => r,
                Err(e) => {
                    fails.push((local.display().to_string(), Outcome::Failed(e.to_string())));
                    continue;
                }
            };
            match seen.get(&remote) {
                Some(prev) if *prev == local => {}
                Some(prev) => fails.push((
                    local.display().to_string(),
                    Outcome::Failed(format!("same name on the receiver as {}", prev.display())),
                )),
                None => {
                    seen.insert(remote.clone(), local.clone());
                    items.push(Item {
                        local,
                        remote,
                        size,
                    });
                }
            }
        }
    }
    (items, fails)
}

/// Adds the regular files under `dir` (named under `rel`), sorted; symbolic links
/// to files are sent, links to directories are not followed.
fn walk(
    dir: &Path,
    rel: &Path,
    found: &mut Vec<(PathBuf, PathBuf, u64)>,
    fails: &mut Vec<(String, Outcome)>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<_> = rd.filter_map(Result::ok).collect();
            v.sort_by_key(|e| e.file_name());
            v
        }
        Err(e) => {
            fails.push((dir.display().to_string(), Outcome::Failed(e.to_string())));
            return;
        }
    };
    for e in entries {
        let path = e.path();
        let name = rel.join(e.file_name());
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&path, &name, found, fails);
        } else if let Ok(m) = std::fs::metadata(&path) {
            if m.is_file() {
                found.push((path, name, m.len()));
            }
        }
    }
}

/// The progress display: bars on a terminal, nothing otherwise; summary lines on
/// stdout either way.
struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    on_terminal: bool,
}

impl Bars {
    fn new(total: u64) -> Bars {
        let on_terminal = io::stderr().is_terminal();
        let target = if on_terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(style(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ));
        bar.set_message("total");
        Bars {
            multi,
            total: bar,
            on_terminal,
        }
    }

    fn file(&self, name: &str, size: u64, from: u64) -> ProgressBar {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(size));
        bar.set_style(style(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        ));
        bar.set_message(name.to_string());
        bar.set_position(from);
        self.total.inc(from);
        bar
    }

    fn line(&self, text: &str) {
        let print = || {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{text}");
        };
        if self.on_terminal {
            self.multi.suspend(print);
        } else {
            print();
        }
    }

    fn done(&self) {
        self.total.finish_and_clear();
    }
}

impl std::fmt::Debug for Bars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bars").finish_non_exhaustive()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_to_the_pattern_base() {
        assert_eq!(base_of("docs/*.md"), None);
        assert_eq!(base_of("a/b.txt"), None);
        assert_eq!(base_of("/var/log/*.log"), Some(PathBuf::from("/var/log")));
        assert_eq!(base_of("/etc/hosts"), Some(PathBuf::from("/etc")));
        assert_eq!(base_of("../x/**/*.rs"), Some(PathBuf::from("../x")));
        assert_eq!(base_of(".."), Some(PathBuf::new()));
        assert_eq!(base_of("/"), Some(PathBuf::new()));
    }

    #[test]
    fn summary_lines_say_what_happened() {
        assert_eq!(
            summary_line(
                "a b",
                &Outcome::Sent {
                    size: 3,
                    resumed_at: 0
                }
            ),
            "sent    a b (3 bytes)"
        );
        assert_eq!(
            summary_line(
                "f",
                &Outcome::Sent {
                    size: 9,
                    resumed_at: 4
                }
            ),
            "sent    f (9 bytes, resumed at 4)"
        );
        assert_eq!(
            summary_line("f", &Outcome::Failed("x".into())),
            "FAILED  f: x"
        );
    }
}
