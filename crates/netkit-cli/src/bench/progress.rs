//! The progress line: once a second on a terminal, nothing otherwise.
//!
//! It is drawn on stderr, and only when stdout is a terminal too, so
//! `netkit bench ... --json > out.json` and pipes stay silent.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Snapshot;

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
