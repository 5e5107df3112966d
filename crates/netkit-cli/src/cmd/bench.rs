//! `netkit bench`: command-line arguments, their validation, and the printing of the
//! report, and the progress line (drawn on stderr once a second, only when stdout is a
//! terminal too, so `--json > out.json` and pipes stay silent). The run itself is the
//! `netkit_bench` crate.
//!
//! Exit status: 0 for a clean run, 1 when any error was counted or no reply came
//! back at all (the report is still printed) or the run could not start, 2 for bad
//! arguments.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::value_parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netkit::net::units::{parse_duration, parse_size_u64};
use netkit_bench::report::Report;
use netkit_bench::target::Target;
use netkit_bench::{self as bench, Config, Snapshot};

/// Largest accepted `--size`.
const MAX_SIZE: u64 = 1 << 30;
/// Most memory the connections' preallocated buffers may take.
const MAX_BUFFERS: u64 = 4 << 30;
/// Longest accepted `--duration`, `--warmup` or `--timeout`.
const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// Arguments of `netkit bench`.
///
/// Modes: ping-pong by default (each connection sends a message and waits for its
/// whole echo); pipelined with `--pipeline N` (up to N messages in flight per
/// connection); open-loop with `--rate R` (R messages per second over all connections,
/// latency measured from each message's intended send time). Every echoed byte is
/// checked; a mismatch, EOF, reset or timeout stops that connection and is counted by
/// kind; any error makes the exit status 1.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Modes: ping-pong (default); pipelined (--pipeline DEPTH); open-loop \
(--rate MSGS/S, latency timed from each message's intended send time).\n\
Every echoed byte is checked. A mismatch, EOF, reset or timeout closes that connection \
for good and is counted by kind.\n\
DUR is like 500ms, 30s, 2m; BYTES like 64, 16KiB, 1MiB.\n\
Exit status: 0 clean run, 1 errors counted or no replies at all (report still printed), \
2 bad arguments."
)]
pub struct Args {
    /// Server to load: HOST:PORT, tcp://HOST:PORT, [::1]:PORT or unix:///path.
    #[arg(value_name = "ADDR", value_parser = Target::parse)]
    addr: Target,
    /// Connections, all opened up front.
    #[arg(short, long, value_name = "N", default_value_t = 50,
          value_parser = value_parser!(u64).range(1..=100_000))]
    connections: u64,
    /// How long to measure, after the warmup.
    #[arg(short, long, value_name = "DUR", default_value = "10s", value_parser = positive_duration)]
    duration: Duration,
    /// How long to run before measuring; its messages are not counted.
    #[arg(short, long, value_name = "DUR", default_value = "1s", value_parser = bounded_duration)]
    warmup: Duration,
    /// Message size.
    #[arg(short, long, value_name = "BYTES", default_value = "64", value_parser = message_size)]
    size: u64,
    /// Messages in flight per connection (1 is ping-pong).
    #[arg(short, long, value_name = "DEPTH", default_value_t = 1,
          value_parser = value_parser!(u64).range(1..=65_536))]
    pipeline: u64,
    /// Open loop: send this many messages per second in all, on a fixed schedule.
    #[arg(short, long, value_name = "MSGS/S", value_parser = value_parser!(u64).range(1..=1_000_000_000))]
    rate: Option<u64>,
    /// Threads to spread the connections over, each with its own poll.
    #[arg(short, long, value_name = "N", default_value_t = 1,
          value_parser = value_parser!(u64).range(1..=1024))]
    threads: u64,
    /// Fail a connection on which no byte moves this long while an echo is owed (or
    /// whose connect does not finish this soon).
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = positive_duration)]
    timeout: Duration,
    /// Print one JSON object with every figure and parameter.
    #[arg(long)]
    json: bool,
}

/// A duration within bounds.
fn bounded_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err(format!("'{text}' is longer than the 30-day limit"));
    }
    Ok(d)
}

/// A non-zero duration within bounds.
fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = bounded_duration(text)?;
    if d.is_zero() {
        return Err(format!("'{text}' must be longer than zero"));
    }
    Ok(d)
}

/// A message size from 1 byte to 1 GiB.
fn message_size(text: &str) -> Result<u64, String> {
    let n = parse_size_u64(text).map_err(|e| e.to_string())?;
    if !(1..=MAX_SIZE).contains(&n) {
        return Err(format!("'{text}' is outside 1 byte to 1GiB"));
    }
    Ok(n)
}

impl Args {
    /// Checks the rules that span options and builds the configuration.
    fn into_config(self) -> Result<Config, String> {
        if self.threads > self.connections {
            return Err(format!(
                "--threads {} exceeds --connections {}: every thread needs a connection",
                self.threads, self.connections
            ));
        }
        let buffers = self
            .connections
            .saturating_mul(bench::conn::buffer_bytes(self.size, self.pipeline));
        if buffers > MAX_BUFFERS {
            return Err(format!(
                "{} connections with {} in flight need {} MiB of buffers, over the {} MiB limit; \
                 use fewer connections or a smaller --pipeline or --size",
                self.connections,
                self.pipeline,
                buffers >> 20,
                MAX_BUFFERS >> 20
            ));
        }
        Ok(Config {
            target: self.addr,
            connections: self.connections,
            duration: self.duration,
            warmup: self.warmup,
            size: self.size,
            pipeline: self.pipeline,
            rate: self.rate,
            threads: self.threads,
            timeout: self.timeout,
        })
    }
}

/// Runs `netkit bench`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let config = args.into_config().map_err(super::usage)?;
    let mut line = ProgressLine::new(config.warmup, config.duration, config.connections);
    let outcome = bench::run(&config, |s| line.update(s));
    line.finish();
    let outcome = outcome?;
    let report = Report {
        config: &config,
        outcome: &outcome,
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{}", report.to_table())?;
    }
    out.flush()?;
    if report.errors() > 0 {
        return Ok(ExitCode::from(1));
    }
    if report.messages() == 0 {
        // A server that answers nothing (discard, say) is not an echo server.
        anyhow::bail!(
            "no replies came back from {} in {:?}: is it an echo server?",
            config.target,
            config.duration
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress line for one run.
#[derive(Debug)]
pub struct ProgressLine {
    /// The bar; hidden when stdout is not a terminal.
    bar: ProgressBar,
    /// Warmup length, to label the phase.
    warmup: Duration,
    /// Messages completed at the previous update, for the rate.
    last_completed: u64,
    /// Connections asked for.
    connections: u64,
}

impl ProgressLine {
    /// A line for a run of `warmup + duration`; hidden unless stdout is a terminal.
    pub fn new(warmup: Duration, duration: Duration, connections: u64) -> ProgressLine {
        let total_ms = u64::try_from((warmup + duration).as_millis()).unwrap_or(u64::MAX);
        let bar = if std::io::stdout().is_terminal() {
            ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr_with_hz(2))
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("[{elapsed:>3}] {bar:20} {msg}") {
            bar.set_style(style);
        }
        ProgressLine {
            bar,
            warmup,
            last_completed: 0,
            connections,
        }
    }

    /// Shows the last second's figures.
    pub fn update(&mut self, s: Snapshot) {
        let rate = s.completed.saturating_sub(self.last_completed);
        self.last_completed = s.completed;
        let phase = if s.elapsed < self.warmup {
            "warmup"
        } else {
            "measuring"
        };
        self.bar
            .set_position(u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX));
        self.bar.set_message(format!(
            "{phase}: {rate} msg/s, {}/{} connected, {} errors",
            s.connected, self.connections, s.errors
        ));
    }

    /// Removes the line before the report is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
