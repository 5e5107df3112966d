//! The EOF model of `netkit connect`, `listen` and `relay`, as a sans-IO state machine.
//!
//! A session joins two sides, `A` and `B`, with one direction of data each way:
//! for `connect` and `listen`, A is stdin/stdout and B the socket; for `relay`, A is
//! the accepted connection and B the target. [`Pipe`] is told when a direction's
//! source reaches end-of-file ([`Pipe::eof`]), fails ([`Pipe::failed`]) or when time
//! passes ([`Pipe::tick`]), and answers with the [`Action`]s to take. It owns no
//! sockets and no clocks; the drivers ([`super::run`], [`super::reactor`]) do the I/O.
//!
//! The rules (also in `docs/eof.md`):
//! - `half` (default): EOF from one side half-closes the other side's write end;
//!   the session ends when both directions have ended.
//! - `close`: EOF from either side ends the session at once.
//! - `wait:DUR`: like `half`, but once one direction has ended the other has DUR
//!   to end too; then the session ends.
//! - A read or write error (reset, broken pipe) ends the session at once.
//! - `--send-only`: data from B is drained and dropped, and B's EOF is ignored; the
//!   session ends when A's direction ends. `--recv-only`: A is never read and B
//!   never half-closed; the session ends when B's direction ends.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::net::units::{parse_duration, UnitError};

/// One side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// stdin/stdout (`connect`, `listen`) or the accepted connection (`relay`).
    A,
    /// The socket (`connect`, `listen`) or the target connection (`relay`).
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// What to do when one direction reaches end-of-file (`--eof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EofPolicy {
    /// Half-close the other side; end when both directions have ended.
    Half,
    /// End the whole session at the first EOF.
    Close,
    /// Half-close the other side, then give the other direction this long.
    Wait(Duration),
}

/// Why an EOF policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EofPolicyError {
    /// Neither `half`, `close` nor `wait:DUR`.
    #[error("invalid EOF policy `{0}`: expected half, close or wait:DUR (e.g. wait:2s)")]
    Unknown(String),
    /// `wait:` with a bad duration.
    #[error(transparent)]
    Duration(#[from] UnitError),
}

impl FromStr for EofPolicy {
    type Err = EofPolicyError;

    fn from_str(s: &str) -> Result<EofPolicy, EofPolicyError> {
        match s {
            "half" => Ok(EofPolicy::Half),
            "close" => Ok(EofPolicy::Close),
            _ => match s.strip_prefix("wait:") {
                Some(d) => Ok(EofPolicy::Wait(parse_duration(d)?)),
                None => Err(EofPolicyError::Unknown(s.to_string())),
            },
        }
    }
}

impl fmt::Display for EofPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EofPolicy::Half => f.write_str("half"),
            EofPolicy::Close => f.write_str("close"),
            EofPolicy::Wait(d) => write!(f, "wait:{}ms", d.as_millis()),
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Shut down the write end of this side (TCP FIN; for stdout: flush).
    ShutdownWrite(Side),
    /// End the session: close both sides.
    Close,
}

/// The state of a session's two directions; see the module docs for the rules.
#[derive(Debug, Clone)]
pub struct Pipe {
    policy: EofPolicy,
    /// Whether the direction whose source is side `i` has ended.
    ended: [bool; 2],
    /// Whether the direction whose source is side `i` keeps the session open.
    counts: [bool; 2],
    deadline: Option<Instant>,
    closed: bool,
}

impl Pipe {
    /// A session with both directions open.
    pub fn new(policy: EofPolicy) -> Pipe {
        Pipe {
            policy,
            ended: [false; 2],
            counts: [true; 2],
            deadline: None,
            closed: false,
        }
    }

    /// `--send-only`: data from B is drained and does not keep the session open.
    pub fn send_only(mut self) -> Pipe {
        self.counts[Side::B.index()] = false;
        self
    }

    /// `--recv-only`: A is never read; the session lives on B's direction alone.
    pub fn recv_only(mut self) -> Pipe {
        self.counts[Side::A.index()] = false;
        self.ended[Side::A.index()] = true;
        self
    }

    /// Whether data from `from` should be read at all.
    pub fn reads(&self, from: Side) -> bool {
        !self.ended[from.index()] || self.counts[from.index()]
    }

    /// Whether data read from `from` is forwarded (not drained and dropped).
    pub fn forwards(&self, from: Side) -> bool {
        self.counts[from.index()]
    }

    /// When [`Pipe::tick`] must be called next, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        if self.closed {
            None
        } else {
            self.deadline
        }
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The source `from` reached end-of-file.
    pub fn eof(&mut self, from: Side, now: Instant) -> Vec<Action> {
        let i = from.index();
        if self.closed || self.ended[i] {
            return Vec::new();
        }
        self.ended[i] = true;
        if !self.counts[i] {
            return Vec::new();
        }
        let mut actions = vec![Action::ShutdownWrite(from.other())];
        let all_ended = (0..2).all(|j| self.ended[j] || !self.counts[j]);
        match self.policy {
            EofPolicy::Close => self.close(&mut actions),
            _ if all_ended => self.close(&mut actions),
            EofPolicy::Wait(d) if d.is_zero() => self.close(&mut actions),
            EofPolicy::Wait(d) => {
                if self.deadline.is_none() {
                    self.deadline = Some(now + d);
                }
            }
            EofPolicy::Half => {}
        }
        actions
    }

    /// Reading from `from`, or writing what was read to the other side, failed.
    pub fn failed(&mut self, from: Side) -> Vec<Action> {
        let _ = from;
        let mut actions = Vec::new();
        if !self.closed {
            self.close(&mut actions);
        }
        actions
    }

    /// Time has passed; ends the session once the `wait:` deadline is reached.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.closed && self.deadline.is_some_and(|d| now >= d) {
            self.close(&mut actions);
        }
        actions
    }

    fn close(&mut self, actions: &mut Vec<Action>) {
        self.closed = true;
        actions.push(Action::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Action::{Close, ShutdownWrite};
    use Side::{A, B};

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn policies_parse_and_print() {
        assert_eq!("half".parse::<EofPolicy>(), Ok(EofPolicy::Half));
        assert_eq!("close".parse::<EofPolicy>(), Ok(EofPolicy::Close));
        assert_eq!(
            "wait:2s".parse::<EofPolicy>(),
            Ok(EofPolicy::Wait(Duration::from_secs(2)))
        );
        assert!("wait:".parse::<EofPolicy>().is_err());
        assert!("later"
            .parse::<EofPolicy>()
            .unwrap_err()
            .to_string()
            .contains("wait:DUR"));
        assert_eq!(
            EofPolicy::Wait(Duration::from_millis(1500)).to_string(),
            "wait:1500ms"
        );
    }

    #[test]
    fn half_half_closes_then_ends_when_both_have_ended() {
        let now = t0();
        let mut p = Pipe::new(EofPolicy::Half);
        assert_eq!(p.eof(A, now), vec![ShutdownWrite(B)]);
        assert!(!p.is_closed());
        assert_eq!(p.deadline(), None);
        assert_eq!(p.tick(now + Duration::from_secs(3600)), vec![]);
        assert_eq!(p.eof(B, now), vec![ShutdownWrite(A), Close]);
        assert!(p.is_closed());
    }

    #[test]
    fn half_peer_first() {
        let now = t0();
        let mut p = Pipe::new(EofPolicy::Half);
        assert_eq!(p.eof(B, now), vec![ShutdownWrite(A)]);
        assert!(p.reads(A));
        assert_eq!(p.eof(A, now), vec![ShutdownWrite(B), Close]);
    }

    #[test]
    fn close_ends_at_the_first_eof_from_either_side() {
        for side in [A, B] {
            let mut p = Pipe::new(EofPolicy::Close);
            assert_eq!(p.eof(side, t0()), vec![ShutdownWrite(side.other()), Close]);
            assert!(p.is_closed());
            assert_eq!(p.eof(side.other(), t0()), vec![]);
        }
    }

    #[test]
    fn wait_gives_the_other_direction_a_deadline() {
        let now = t0();
        let d = Duration::from_millis(500);
        let mut p = Pipe::new(EofPolicy::Wait(d));
        assert_eq!(p.eof(A, now), vec![ShutdownWrite(B)]);
        assert_eq!(p.deadline(), Some(now + d));
        assert_eq!(p.tick(now + d / 2), vec![]);
        assert_eq!(p.tick(now + d), vec![Close]);
        assert!(p.is_closed());
        assert_eq!(p.deadline(), None);
        assert_eq!(p.tick(now + d * 2), vec![]);
    }

    #[test]
    fn wait_ends_early_when_the_other_direction_ends() {
        let now = t0();
        let mut p = Pipe::new(EofPolicy::Wait(Duration::from_secs(5)));
        p.eof(B, now);
        assert_eq!(p.eof(A, now), vec![ShutdownWrite(B), Close]);
    }

    #[test]
    fn wait_zero_is_close_after_half_close() {
        let mut p = Pipe::new(EofPolicy::Wait(Duration::ZERO));
        assert_eq!(p.eof(A, t0()), vec![ShutdownWrite(B), Close]);
    }

    #[test]
    fn failures_end_the_session_once() {
        let mut p = Pipe::new(EofPolicy::Half);
        assert_eq!(p.failed(B), vec![Close]);
        assert_eq!(p.failed(A), vec![]);
        assert_eq!(p.eof(A, t0()), vec![]);
    }

    #[test]
    fn send_only_ignores_the_peer_and_ends_with_stdin() {
        let now = t0();
        let mut p = Pipe::new(EofPolicy::Half).send_only();
        assert!(p.reads(B));
        assert!(!p.forwards(B));
        assert_eq!(p.eof(B, now), vec![]);
        assert!(!p.is_closed());
        assert_eq!(p.eof(A, now), vec![ShutdownWrite(B), Close]);
    }

    #[test]
    fn recv_only_never_reads_stdin_and_ends_with_the_peer() {
        let now = t0();
        let mut p = Pipe::new(EofPolicy::Half).recv_only();
        assert!(!p.reads(A));
        assert!(p.forwards(B));
        assert_eq!(p.eof(A, now), vec![]);
        assert_eq!(p.eof(B, now), vec![ShutdownWrite(A), Close]);
    }
}
