//! `netkit fetch URL [-o FILE|DIR]`: download with a progress bar, resume, auth,
//! cookies, redirects and limits (`urlretrieve`, done carefully).
//!
//! The file appears only when complete: data goes to `FILE.part` and is renamed at
//! the end. Any HTTP status of 400 or more fails the command (exit 1), as curl's
//! `--fail` does, so an error page is never saved as the file. A malformed URL
//! or option value is a usage error (exit 2); a failed download exits 1.

use std::io::{ErrorKind, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use netkit::http::fetch::{
    name_from_url, Client, FetchError, FetchOptions, Progress, SpeedLimit, Target,
};
use netkit::net::units::{parse_duration, parse_size_u64};
use netkit::protocol::trust::Trust;

use super::usage;

/// Arguments of `netkit fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL: http://, https:// or file://. Credentials may be given as
    /// http://USER:PASS@HOST/.
    pub url: String,
    /// Save to FILE (`-` writes to stdout), or into an existing DIR under the
    /// URL's name. Default: the URL's last path segment (or the server's
    /// Content-Disposition name) in the current directory.
    #[arg(short, long, value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
    /// Resume an interrupted download (FILE.part) with a Range request.
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,
    /// No progress bar and no summary line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Basic auth credentials, USER:PASS.
    #[arg(short, long, value_name = "USER:PASS")]
    pub user: Option<String>,
    /// An extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Trust only the certificates in this PEM file (instead of the system's
    /// roots); a self-signed server certificate named here is accepted.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate or name (unsafe).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Load cookies from FILE (Netscape format, as curl and wget write it) if it
    /// exists, and save them all back after the run, session cookies included.
    #[arg(long, value_name = "FILE")]
    pub cookie_jar: Option<PathBuf>,
    /// Redirects to follow at most.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: u32,
    /// Send credentials on redirects to another scheme, host or port too.
    #[arg(long)]
    pub location_trusted: bool,
    /// Timeout for each connection attempt (e.g. 500ms, 10s, 1m).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Timeout for the response head and for each read of the body (not the
    /// whole transfer: see --max-time).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Longest time for the whole transfer, redirects included.
    #[arg(short = 'm', long, value_name = "DUR", value_parser = parse_duration)]
    pub max_time: Option<Duration>,
    /// Abort when the average rate stays below SIZE per second for
    /// --speed-time (30s unless given).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_u64)]
    pub speed_limit: Option<u64>,
    /// How long the rate may stay below --speed-limit (1 byte/s unless given)
    /// before the transfer is aborted.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub speed_time: Option<Duration>,
    /// Refuse a file larger than SIZE (e.g. 10MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_u64)]
    pub max_filesize: Option<u64>,
}

/// Runs `netkit fetch`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(options(&args)?).map_err(fail)?;
    if args.output.as_deref() == Some(Path::new("-")) {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let result = client.stream_to(&args.url, &mut out);
        let _ = out.flush();
        client.save_cookies()?;
        return match result {
            Ok(_) => Ok(ExitCode::SUCCESS),
            // `netkit fetch URL -o - | head`: a closed stdout is not a failure.
            Err(FetchError::Io { error, .. }) if error.kind() == ErrorKind::BrokenPipe => {
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(fail(e)),
        };
    }
    let target = match &args.output {
        Some(p) if p.is_dir() => Target::Dir(p.clone()),
        Some(p) => Target::File(p.clone()),
        None => Target::Dir(PathBuf::from(".")),
    };
    let name = match &target {
        Target::File(p) => p.display().to_string(),
        Target::Dir(_) => name_from_url(&args.url),
    };
    let show = !args.quiet && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut bar: Option<ProgressBar> = None;
    let mut on_progress = |p: Progress| {
        let b = bar.get_or_insert_with(|| progress_bar(show, &name, p.total));
        b.set_position(p.done);
    };
    let result = client.download(&args.url, &target, args.resume, &mut on_progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    client.save_cookies()?;
    let done = result.map_err(fail)?;
    if !args.quiet {
        eprintln!("{}", summary(&done, started.elapsed()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The options, checked: a bad value is a usage error.
fn options(args: &Args) -> anyhow::Result<FetchOptions> {
    let trust = match (&args.cacert, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(path), false) => Trust::CaFile(path.clone()),
        (None, false) => Trust::System,
    };
    let speed_limit = match (args.speed_limit, args.speed_time) {
        (None, None) => None,
        (limit, time) => Some(SpeedLimit {
            bytes_per_sec: limit.unwrap_or(1),
            time: time.unwrap_or(Duration::from_secs(30)),
        }),
    };
    if speed_limit.is_some_and(|s| s.time.is_zero()) {
        return Err(usage("--speed-time must be more than 0"));
    }
    if args.max_time.is_some_and(|t| t.is_zero()) {
        return Err(usage("--max-time must be more than 0"));
    }
    let mut opts = FetchOptions {
        connect_timeout: args.connect_timeout,
        read_timeout: args.timeout,
        max_time: args.max_time,
        speed_limit,
        max_filesize: args.max_filesize,
        max_redirects: args.max_redirects,
        location_trusted: args.location_trusted,
        trust,
        cookie_jar: args.cookie_jar.clone(),
        ..FetchOptions::default()
    };
    if let Some(user) = &args.user {
        let (u, p) = user.split_once(':').unwrap_or((user, ""));
        opts.user = Some((u.to_string(), p.to_string()));
    }
    for h in &args.headers {
        match h.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => opts
                .headers
                .push((name.trim().to_string(), value.trim().to_string())),
            _ => return Err(usage(format!("header {h:?} is not `Name: value`"))),
        }
    }
    Ok(opts)
}

/// A malformed URL is a usage error (exit 2); everything else exits 1.
fn fail(e: FetchError) -> anyhow::Error {
    match e {
        FetchError::InvalidUrl { .. } => usage(e.to_string()),
        e => e.into(),
    }
}

/// `saved NAME: SIZE bytes (HUMAN) in TIME, RATE/s`, as wget ends a download.
fn summary(done: &netkit::http::fetch::Downloaded, elapsed: Duration) -> String {
    let moved = done.size - done.resumed_from;
    let secs = elapsed.as_secs_f64().max(0.001);
    let resumed = if done.resumed_from > 0 {
        format!(", resumed at {}", done.resumed_from)
    } else {
        String::new()
    };
    format!(
        "saved {}: {} bytes ({}) in {:.2}s, {}/s{resumed}",
        done.path.strip_prefix(".").unwrap_or(&done.path).display(),
        done.size,
        BinaryBytes(done.size),
        elapsed.as_secs_f64(),
        BinaryBytes((moved as f64 / secs) as u64),
    )
}

/// Name, percentage, bar, size, speed and ETA on stderr; name, bytes and speed
/// when the size is unknown; nothing when stderr is not a terminal or with
/// `--quiet`.
fn progress_bar(show: bool, name: &str, total: Option<u64>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{msg:20!} {percent:>3}% [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}"
    } else {
        "{msg:20!} {spinner} {binary_bytes} {binary_bytes_per_sec} {elapsed}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_templates_parse() {
        for total in [Some(10), None] {
            let bar = progress_bar(true, "x", total);
            assert!(bar.style().get_tick_str(0).len() <= 4);
        }
        assert!(ProgressStyle::with_template(
            "{msg:20!} {percent:>3}% [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}"
        )
        .is_ok());
    }
}
