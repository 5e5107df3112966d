//! What a run measured: error counts by kind, and each worker's tally (messages in the
//! measurement window, their latency histogram), merged into one [`Tally`].
//!
//! Formatting the figures is `report`'s job; counting them is the workers'.

use std::fmt;

use hdrhistogram::Histogram;

/// Why a connection stopped. A connection that hits any of these is closed and not
/// reopened: the error is counted once and the run goes on with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be opened (refused, unreachable, or not open within
    /// the no-progress timeout).
    Connect,
    /// The echo differs from what was sent, or more bytes came back than were sent.
    Mismatch,
    /// The server closed the connection (EOF) while the run still needed it.
    ShortRead,
    /// The connection was reset (ECONNRESET, EPIPE, ECONNABORTED).
    Reset,
    /// No byte moved for the no-progress timeout while an echo was owed.
    Timeout,
    /// Any other socket error.
    Other,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Mismatch,
        ErrorKind::ShortRead,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Other,
    ];

    /// The key used in the JSON report and the table.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::ShortRead => "short_read",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Other => "other",
        }
    }

    /// Position in [`ErrorKind::ALL`].
    fn index(self) -> usize {
        match self {
            ErrorKind::Mismatch => 0,
            ErrorKind::ShortRead => 1,
            ErrorKind::Reset => 2,
            ErrorKind::Timeout => 3,
            ErrorKind::Connect => 4,
            ErrorKind::Other => 5,
        }
    }

    /// Classifies a socket error seen on an open connection.
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
            K::UnexpectedEof => ErrorKind::ShortRead,
            K::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error counts by kind, with the first error of each kind described.
#[derive(Debug, Clone, Default)]
pub struct Errors {
    /// Count per kind, indexed like [`ErrorKind::ALL`].
    counts: [u64; 6],
    /// The first error of each kind, for the report.
    first: [Option<String>; 6],
}

impl Errors {
    /// Counts one error; `detail` is built only for the first of its kind.
    pub fn add(&mut self, kind: ErrorKind, detail: impl FnOnce() -> String) {
        let i = kind.index();
        self.counts[i] += 1;
        if self.first[i].is_none() {
            self.first[i] = Some(detail());
        }
    }

    /// How many errors of `kind`.
    pub fn count(&self, kind: ErrorKind) -> u64 {
        self.counts[kind.index()]
    }

    /// The first error of `kind`, described.
    pub fn first(&self, kind: ErrorKind) -> Option<&str> {
        self.first[kind.index()].as_deref()
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another worker's errors to these.
    pub fn merge(&mut self, other: Errors) {
        for (i, (count, first)) in other.counts.into_iter().zip(other.first).enumerate() {
            self.counts[i] += count;
            if self.first[i].is_none() {
                self.first[i] = first;
            }
        }
    }
}

/// Highest latency the histograms track exactly (one hour, in nanoseconds); longer
/// ones are recorded as this value.
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// What one worker (or, merged, the whole run) counted.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency in nanoseconds of every message completed in the measurement window.
    pub latency: Histogram<u64>,
    /// Messages whose echo completed in the measurement window.
    pub messages: u64,
    /// Connections that were established.
    pub connected: u64,
    /// Errors by kind, warmup included.
    pub errors: Errors,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, HIGHEST_NS, 3)
                .expect("constant histogram bounds are valid"),
            messages: 0,
            connected: 0,
            errors: Errors::default(),
        }
    }

    /// Records one message completed in the window.
    #[inline]
    pub fn record(&mut self, latency_ns: u64) {
        self.messages += 1;
        self.latency.saturating_record(latency_ns.max(1));
    }

    /// Adds another worker's tally to this one.
    pub fn merge(&mut self, other: Tally) {
        self.messages += other.messages;
        self.connected += other.connected;
        // Both histograms have the same bounds, so adding cannot fail; if it somehow
        // did, the counts above stay right and only the percentiles lose that worker.
        let _ = self.latency.add(&other.latency);
        self.errors.merge(other.errors);
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_and_keep_the_first_detail() {
        let mut a = Errors::default();
        a.add(ErrorKind::Reset, || "first".into());
        a.add(ErrorKind::Reset, || "second".into());
        let mut b = Errors::default();
        b.add(ErrorKind::Mismatch, || "m".into());
        b.add(ErrorKind::Reset, || "other worker".into());
        a.merge(b);
        assert_eq!(a.count(ErrorKind::Reset), 3);
        assert_eq!(a.count(ErrorKind::Mismatch), 1);
        assert_eq!(a.first(ErrorKind::Reset), Some("first"));
        assert_eq!(a.first(ErrorKind::Mismatch), Some("m"));
        assert_eq!(a.total(), 4);
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::new();
        a.record(1000);
        let mut b = Tally::new();
        b.record(3000);
        b.record(0);
        a.merge(b);
        assert_eq!(a.messages, 3);
        assert_eq!(a.latency.len(), 3);
        assert!(a.latency.max() >= 3000);
    }

    #[test]
    fn io_errors_classify() {
        use std::io::{Error, ErrorKind as K};
        assert_eq!(
            ErrorKind::of_io(&Error::from(K::ConnectionReset)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of_io(&Error::from(K::BrokenPipe)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of_io(&Error::from(K::PermissionDenied)),
            ErrorKind::Other
        );
    }
}
