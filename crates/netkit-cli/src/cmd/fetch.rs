//! `netkit fetch URL [-o FILE]`: download with a progress bar, resume, auth,
//! cookies and redirects (`urlretrieve`, done carefully).
//!
//! The file appears only when complete: data goes to `FILE.part` and is renamed at
//! the end. Any HTTP status of 400 or more fails the command (exit 1), as curl's
//! `--fail` does, so an error page is never saved as the file.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netkit::http::fetch::{Client, FetchOptions, Progress, Target};

use crate::duration::parse_duration;

/// Arguments of `netkit fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL: http://, https:// or file://. Credentials may be given as
    /// http://USER:PASS@HOST/.
    pub url: String,
    /// Save to FILE (`-` writes to stdout). Default: the URL's last path segment
    /// (or the server's Content-Disposition name) in the current directory.
    #[arg(short, long, value_name = "FILE")]
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
    /// Trust the CA certificates in this PEM file (instead of the built-in roots).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Load cookies from FILE (if it exists) and save them back after the run.
    #[arg(long, value_name = "FILE")]
    pub cookie_jar: Option<PathBuf>,
    /// Redirects to follow at most.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: u32,
    /// Connect timeout (e.g. 500ms, 10s, 1m).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Timeout for the response head and for each read of the body.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Runs `netkit fetch`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = FetchOptions {
        connect_timeout: args.connect_timeout,
        read_timeout: args.timeout,
        max_redirects: args.max_redirects,
        ca_file: args.cacert.clone(),
        cookie_jar: args.cookie_jar.clone(),
        ..FetchOptions::default()
    };
    if let Some(user) = &args.user {
        let (u, p) = user.split_once(':').unwrap_or((user, ""));
        opts.user = Some((u.to_string(), p.to_string()));
    }
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("header {h:?} is not `Name: value`");
        };
        opts.headers
            .push((name.trim().to_string(), value.trim().to_string()));
    }
    let client = Client::new(opts)?;
    if args.output.as_deref() == Some(std::path::Path::new("-")) {
        let mut resp = client.urlopen(&args.url)?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        std::io::copy(&mut resp, &mut out).with_context(|| args.url.clone())?;
        out.flush()?;
        client.save_cookies()?;
        return Ok(ExitCode::SUCCESS);
    }
    let target = match &args.output {
        Some(p) => Target::File(p.clone()),
        None => Target::Dir(PathBuf::from(".")),
    };
    let show = !args.quiet && std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let mut on_progress = |p: Progress| {
        let b = bar.get_or_insert_with(|| progress_bar(show, p.total));
        b.set_position(p.done);
    };
    let result = client.download(&args.url, &target, args.resume, &mut on_progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    client.save_cookies()?;
    let done = result?;
    if !args.quiet {
        let resumed = if done.resumed_from > 0 {
            format!(", resumed at {}", done.resumed_from)
        } else {
            String::new()
        };
        eprintln!(
            "saved {} ({} bytes{resumed})",
            done.path.display(),
            done.size
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar with size, speed and ETA on stderr; a spinner with bytes and speed when
/// the size is unknown; nothing when stderr is not a terminal or with `--quiet`.
fn progress_bar(show: bool, total: Option<u64>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{bytes:>10}/{total_bytes:10} [{bar:30}] {bytes_per_sec:>12} ETA {eta}"
    } else {
        "{spinner} {bytes:>10} {bytes_per_sec:>12} {elapsed}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
