//! The figures of a finished run, printed as one JSON object (`--json`) or as a small
//! table for people.
//!
//! Throughput counts echoed payload bytes in one direction, in decimal megabytes
//! (1 MB = 10^6 bytes), over the measurement window (`--duration`), not the warmup.
//! Latencies are in microseconds; they are `null` in JSON when no message completed.

use netkit::net::units::format_duration;
use serde_json::{json, Map, Value};

use super::stats::{ErrorKind, Tally};
use super::{Config, Outcome};

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Fastest message.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest message.
    pub max: f64,
}

impl Latency {
    /// Reads the histogram (nanoseconds); `None` when it is empty.
    fn of(tally: &Tally) -> Option<Latency> {
        let h = &tally.latency;
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| round(ns as f64 / 1e3, 1);
        Some(Latency {
            min: us(h.min()),
            mean: round(h.mean() / 1e3, 1),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

/// A run's figures, with the parameters that produced them.
#[derive(Debug)]
pub struct Report<'a> {
    /// The parameters.
    pub config: &'a Config,
    /// What was counted.
    pub outcome: &'a Outcome,
}

impl Report<'_> {
    /// Messages completed in the window.
    pub fn messages(&self) -> u64 {
        self.outcome.tally.messages
    }

    /// Echoed payload bytes in the window (whole messages only).
    fn bytes(&self) -> u64 {
        self.messages().saturating_mul(self.config.size)
    }

    /// Messages per second over the window.
    fn msgs_per_s(&self) -> f64 {
        round(self.messages() as f64 / self.window_s(), 1)
    }

    /// Decimal megabytes per second over the window.
    fn mb_per_s(&self) -> f64 {
        round(self.bytes() as f64 / 1e6 / self.window_s(), 3)
    }

    /// The measurement window in seconds (never zero).
    fn window_s(&self) -> f64 {
        self.config.duration.as_secs_f64().max(1e-9)
    }

    /// Total errors.
    pub fn errors(&self) -> u64 {
        self.outcome.tally.errors.total()
    }

    /// The JSON object: every figure and every parameter.
    pub fn to_json(&self) -> Value {
        let c = self.config;
        let errors = &self.outcome.tally.errors;
        let mut kinds = Map::new();
        let mut details = Map::new();
        for kind in ErrorKind::ALL {
            kinds.insert(kind.name().into(), json!(errors.count(kind)));
            if let Some(first) = errors.first(kind) {
                details.insert(kind.name().into(), json!(first));
            }
        }
        let lat = Latency::of(&self.outcome.tally);
        let field = |f: fn(&Latency) -> f64| lat.as_ref().map(f);
        json!({
            "address": c.target.to_string(),
            "mode": c.mode(),
            "connections": c.connections,
            "threads": c.threads,
            "size": c.size,
            "pipeline": c.pipeline,
            "rate": c.rate,
            "duration_s": c.duration.as_secs_f64(),
            "warmup_s": c.warmup.as_secs_f64(),
            "timeout_s": c.timeout.as_secs_f64(),
            "elapsed_s": round(self.outcome.elapsed.as_secs_f64(), 3),
            "connected": self.outcome.tally.connected,
            "messages": self.messages(),
            "bytes": self.bytes(),
            "msgs_per_s": self.msgs_per_s(),
            "mb_per_s": self.mb_per_s(),
            "min_us": field(|l| l.min),
            "mean_us": field(|l| l.mean),
            "p50_us": field(|l| l.p50),
            "p90_us": field(|l| l.p90),
            "p99_us": field(|l| l.p99),
            "p999_us": field(|l| l.p999),
            "max_us": field(|l| l.max),
            "errors": self.errors(),
            "error_kinds": kinds,
            "error_details": details,
        })
    }

    /// The human report: a few aligned lines.
    pub fn to_table(&self) -> String {
        let c = self.config;
        let mut out = String::new();
        let mut row = |name: &str, value: String| out.push_str(&format!("{name:<12} {value}\n"));
        let mode = match c.rate {
            Some(rate) => format!("open-loop at {rate} msg/s, pipeline {}", c.pipeline),
            None => format!("{}, pipeline {}", c.mode(), c.pipeline),
        };
        row("address", c.target.to_string());
        row("mode", mode);
        row(
            "connections",
            format!(
                "{} opened of {}, {} thread(s)",
                self.outcome.tally.connected, c.connections, c.threads
            ),
        );
        row("message", format!("{} B", c.size));
        row(
            "duration",
            format!(
                "{} measured after {} warmup",
                format_duration(c.duration),
                format_duration(c.warmup)
            ),
        );
        row(
            "messages",
            format!("{} ({} msg/s)", self.messages(), self.msgs_per_s()),
        );
        row("throughput", format!("{} MB/s echoed", self.mb_per_s()));
        match Latency::of(&self.outcome.tally) {
            Some(l) => row(
                "latency",
                format!(
                    "p50 {}us  p90 {}us  p99 {}us  p99.9 {}us  max {}us",
                    l.p50, l.p90, l.p99, l.p999, l.max
                ),
            ),
            None => row("latency", "no message completed".into()),
        }
        row("errors", self.errors().to_string());
        let errors = &self.outcome.tally.errors;
        for kind in ErrorKind::ALL {
            let n = errors.count(kind);
            if n > 0 {
                let first = errors.first(kind).unwrap_or("");
                row(&format!("  {kind}"), format!("{n} (first: {first})"));
            }
        }
        out
    }
}

/// Rounds to `places` decimal places.
fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::target::Target;

    fn config() -> Config {
        Config {
            target: Target::parse("127.0.0.1:9000").unwrap(),
            connections: 2,
            duration: Duration::from_secs(2),
            warmup: Duration::ZERO,
            size: 64,
            pipeline: 1,
            rate: None,
            threads: 1,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn json_has_consistent_figures() {
        let mut tally = Tally::new();
        for ns in [10_000, 20_000, 30_000, 40_000] {
            tally.record(ns);
        }
        tally
            .errors
            .add(ErrorKind::Reset, || "connection 1: read: reset".into());
        let outcome = Outcome {
            tally,
            elapsed: Duration::from_secs(2),
        };
        let config = config();
        let v = Report {
            config: &config,
            outcome: &outcome,
        }
        .to_json();
        assert_eq!(v["messages"], 4);
        assert_eq!(v["bytes"], 256);
        assert_eq!(v["msgs_per_s"], 2.0);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["error_kinds"]["reset"], 1);
        assert_eq!(v["error_kinds"]["mismatch"], 0);
        assert_eq!(v["error_details"]["reset"], "connection 1: read: reset");
        assert_eq!(v["rate"], Value::Null);
        assert!(v["p50_us"].as_f64().unwrap() >= 19.9);
        assert!(v["max_us"].as_f64().unwrap() >= 39.9);
    }

    #[test]
    fn empty_run_has_null_latency_and_a_table() {
        let outcome = Outcome {
            tally: Tally::new(),
            elapsed: Duration::ZERO,
        };
        let config = config();
        let report = Report {
            config: &config,
            outcome: &outcome,
        };
        assert_eq!(report.to_json()["p99_us"], Value::Null);
        assert!(report.to_table().contains("no message completed"));
    }
}
