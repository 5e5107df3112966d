//! A socket-free runner that drives a Protocol from a script of events and records
//! what it does, so every service is unit-tested without a network.
//!
//! The runner keeps the same contract as the real ones: after the Protocol closes or
//! aborts, no further event but `connection_lost` is delivered; data is not delivered
//! while reading is paused (it is held and delivered on resume); `connection_lost` is
//! always the last call.
//!
//! ```
//! use netkit::protocol::{Protocol, Transport, testing::Script};
//! struct Hello;
//! impl Protocol for Hello {
//!     fn connection_made(&mut self, t: &mut dyn Transport) {
//!         t.write(b"Thank you for connecting");
//!         t.close();
//!     }
//!     fn data_received(&mut self, _: &[u8], _: &mut dyn Transport) {}
//! }
//! let out = Script::new().data(b"ignored").run(Hello);
//! assert_eq!(out.written, b"Thank you for connecting");
//! assert!(out.closed);
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{CloseReason, Mailbox, MailboxReceiver, PeerAddr, Protocol, TimerId, Transport, Wake};

/// One scripted event.
#[derive(Debug, Clone)]
pub enum Event {
    /// Bytes from the peer.
    Data(Vec<u8>),
    /// The peer half-closed.
    Eof,
    /// Every pending timer fires, earliest deadline first.
    FireTimers,
    /// A message arrives in the connection's mailbox.
    Message(Vec<u8>),
    /// The runner asks a producer for output this many times (the peer reads everything).
    Produce(usize),
}

/// A script of events for one connection.
#[derive(Debug, Clone)]
pub struct Script {
    events: Vec<Event>,
    peer: PeerAddr,
    local: PeerAddr,
}

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

impl Script {
    /// An empty script from peer `127.0.0.1:50000` to local `127.0.0.1:9000`.
    pub fn new() -> Self {
        Script {
            events: Vec::new(),
            peer: PeerAddr::Inet(([127, 0, 0, 1], 50000).into()),
            local: PeerAddr::Inet(([127, 0, 0, 1], 9000).into()),
        }
    }

    /// Sets the peer address the Protocol sees.
    pub fn peer(mut self, peer: PeerAddr) -> Self {
        self.peer = peer;
        self
    }

    /// Adds bytes from the peer.
    pub fn data(mut self, bytes: &[u8]) -> Self {
        self.events.push(Event::Data(bytes.to_vec()));
        self
    }

    /// Adds the peer's half-close.
    pub fn eof(mut self) -> Self {
        self.events.push(Event::Eof);
        self
    }

    /// Fires every pending timer.
    pub fn fire_timers(mut self) -> Self {
        self.events.push(Event::FireTimers);
        self
    }

    /// Delivers a mailbox message.
    pub fn message(mut self, bytes: &[u8]) -> Self {
        self.events.push(Event::Message(bytes.to_vec()));
        self
    }

    /// Asks a producer for output `n` times.
    pub fn produce(mut self, n: usize) -> Self {
        self.events.push(Event::Produce(n));
        self
    }

    /// Adds an arbitrary event.
    pub fn event(mut self, e: Event) -> Self {
        self.events.push(e);
        self
    }

    /// Runs the script against `proto` and reports what it did.
    pub fn run<P: Protocol>(self, mut proto: P) -> Outcome {
        let mut t = FakeTransport::new(self.peer, self.local);
        proto.connection_made(&mut t);
        for ev in self.events {
            if t.is_finished() {
                break;
            }
            match ev {
                Event::Data(d) => {
                    if t.out.paused {
                        t.held.push(d);
                    } else {
                        proto.data_received(&d, &mut t);
                    }
                }
                Event::Eof => {
                    t.out.eof_delivered = true;
                    proto.eof_received(&mut t);
                }
                Event::FireTimers => {
                    let due: Vec<TimerId> = t.timers.keys().copied().collect();
                    t.timers.clear();
                    for id in due {
                        if t.is_finished() {
                            break;
                        }
                        t.out.timers_fired.push(id);
                        proto.timer_fired(id, &mut t);
                    }
                }
                Event::Message(m) => proto.message_received(Bytes::from(m), &mut t),
                Event::Produce(n) => {
                    for _ in 0..n {
                        if t.is_finished() || !proto.is_producer() {
                            break;
                        }
                        t.out.produce_calls += 1;
                        proto.resume_producing(&mut t);
                    }
                }
            }
            // Data held while paused is delivered once reading resumes.
            while !t.out.paused && !t.held.is_empty() && !t.is_finished() {
                let d = t.held.remove(0);
                proto.data_received(&d, &mut t);
            }
        }
        let reason = if t.out.aborted {
            CloseReason::Aborted
        } else {
            CloseReason::Done
        };
        proto.connection_lost(&reason);
        t.out.lost = Some(reason);
        t.out.pending_timers = t.timers.values().copied().collect();
        t.out
    }
}

/// What a Protocol did during a [`Script`].
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every byte written, in order (up to a close; after an abort, nothing more).
    pub written: Vec<u8>,
    /// Each `write` call's bytes, to check message boundaries.
    pub writes: Vec<Vec<u8>>,
    /// The Protocol called `close`.
    pub closed: bool,
    /// The Protocol called `abort`.
    pub aborted: bool,
    /// The Protocol called `shutdown_write`.
    pub write_shut: bool,
    /// Reading was paused at the end.
    pub paused: bool,
    /// The EOF event was delivered.
    pub eof_delivered: bool,
    /// Timers that fired, in order.
    pub timers_fired: Vec<TimerId>,
    /// Delays of timers still pending at the end.
    pub pending_timers: Vec<Duration>,
    /// How many times `resume_producing` was called.
    pub produce_calls: usize,
    /// The reason given to `connection_lost`.
    pub lost: Option<CloseReason>,
}

impl Outcome {
    /// The written bytes as UTF-8 (lossy), for readable assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.written).into_owned()
    }
}

struct NoWake;
impl Wake for NoWake {
    fn wake(&self) {}
}

/// The recording transport behind [`Script`]; public so other harnesses can reuse it.
pub struct FakeTransport {
    out: Outcome,
    peer: PeerAddr,
    local: PeerAddr,
    timers: BTreeMap<TimerId, Duration>,
    next_timer: u64,
    held: Vec<Vec<u8>>,
    mailbox: Option<MailboxReceiver>,
}

impl std::fmt::Debug for FakeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTransport")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl FakeTransport {
    /// A transport between `peer` and `local` that records everything.
    pub fn new(peer: PeerAddr, local: PeerAddr) -> Self {
        FakeTransport {
            out: Outcome::default(),
            peer,
            local,
            timers: BTreeMap::new(),
            next_timer: 0,
            held: Vec::new(),
            mailbox: None,
        }
    }

    /// Whether the Protocol closed or aborted.
    pub fn is_finished(&self) -> bool {
        self.out.closed || self.out.aborted
    }

    /// What has been recorded so far.
    pub fn outcome(&self) -> &Outcome {
        &self.out
    }

    /// Takes the bytes written so far, leaving the record empty.
    pub fn take_written(&mut self) -> Vec<u8> {
        self.out.writes.clear();
        std::mem::take(&mut self.out.written)
    }

    /// The connection's mailbox receiver, if the Protocol asked for a mailbox.
    pub fn mailbox_receiver(&self) -> Option<&MailboxReceiver> {
        self.mailbox.as_ref()
    }
}

impl Transport for FakeTransport {
    fn write(&mut self, data: &[u8]) {
        if self.is_finished() || self.out.write_shut {
            return;
        }
        self.out.written.extend_from_slice(data);
        self.out.writes.push(data.to_vec());
    }
    fn write_file(&mut self, file: Arc<std::fs::File>, offset: u64, len: u64) {
        use std::os::unix::fs::FileExt;
        if self.is_finished() || self.out.write_shut {
            return;
        }
        let mut data = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
        match file.read_exact_at(&mut data, offset) {
            Ok(()) => self.write(&data),
            Err(_) => self.out.aborted = true,
        }
    }
    fn buffered(&self) -> usize {
        0
    }
    fn close(&mut self) {
        self.out.closed = true;
    }
    fn abort(&mut self) {
        self.out.aborted = true;
    }
    fn shutdown_write(&mut self) {
        self.out.write_shut = true;
    }
    fn pause_reading(&mut self) {
        self.out.paused = true;
    }
    fn resume_reading(&mut self) {
        self.out.paused = false;
    }
    fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }
    fn local_addr(&self) -> &PeerAddr {
        &self.local
    }
    fn call_later(&mut self, delay: Duration) -> TimerId {
        self.next_timer += 1;
        let id = TimerId(self.next_timer);
        self.timers.insert(id, delay);
        id
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.timers.remove(&id);
    }
    fn mailbox(&mut self) -> Mailbox {
        self.mailbox
            .get_or_insert_with(|| Mailbox::channel(1 << 20, Arc::new(NoWake)).1)
            .mailbox()
    }
}
