//! `chat`: every line from one client goes to every other client.
//!
//! Each line arrives at the others as `ADDR: line\n` (a `"\r"` before the newline is
//! dropped); joins and departures are announced to the others as `* ADDR joined` and
//! `* ADDR left`. The members live in the [`ChatFactory`] (so
//! [`shares_state`](Factory::shares_state) is true and a process-per-connection
//! runner refuses it); each connection registers its [`Mailbox`] when it is made and
//! unregisters when it is lost, and lines are delivered by posting to the others'
//! mailboxes, written out by their default `message_received`. A member whose mailbox
//! is full (a peer that does not read) is skipped: its runner closes it. A line longer
//! than `max_line` closes the sender's connection with a warning naming the peer.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use crate::protocol::{CloseReason, ConnInfo, Factory, Mailbox, PeerAddr, Transport};

use crate::protocol::DEFAULT_MAX_LINE;

struct Member {
    id: u64,
    mailbox: Mailbox,
}

/// The members of one chat room.
#[derive(Default)]
struct Room {
    members: Mutex<Vec<Member>>,
    next_id: AtomicU64,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, Vec<Member>> {
        // A panic while holding the lock leaves a list of mailboxes: still usable.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn join(&self, id: u64, mailbox: Mailbox) {
        self.lock().push(Member { id, mailbox });
    }

    fn leave(&self, id: u64) {
        self.lock().retain(|m| m.id != id);
    }

    /// Posts `msg` to every member but `from`. Mailboxes are collected first and
    /// posted to outside the lock, so a runner's wake-up never runs under it.
    fn broadcast(&self, from: u64, msg: Bytes) {
        let others: Vec<Mailbox> = self
            .lock()
            .iter()
            .filter(|m| m.id != from)
            .map(|m| m.mailbox.clone())
            .collect();
        for mailbox in others {
            // Closed: that member is leaving. Full: its runner closes it.
            let _ = mailbox.post(msg.clone());
        }
    }
}

/// The chat room: makes one [`Chat`] per connection, all sharing its members. A clone
/// is the same room.
///
/// ```
/// use netkit::protocol::Factory;
/// use netkit::services::ChatFactory;
///
/// let room = ChatFactory::new(64 * 1024);
/// assert!(room.shares_state());
/// assert_eq!(room.members(), 0);
/// ```
#[derive(Clone)]
pub struct ChatFactory {
    room: Arc<Room>,
    max_line: usize,
}

impl fmt::Debug for ChatFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatFactory")
            .field("members", &self.members())
            .field("max_line", &self.max_line)
            .finish()
    }
}

impl Default for ChatFactory {
    /// An empty room with 64 KiB lines.
    fn default() -> Self {
        ChatFactory::new(DEFAULT_MAX_LINE)
    }
}

impl ChatFactory {
    /// An empty room whose members may send lines of up to `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        ChatFactory {
            room: Arc::new(Room::default()),
            max_line,
        }
    }

    /// How many connections are in the room.
    pub fn members(&self) -> usize {
        self.room.lock().len()
    }
}

impl Factory for ChatFactory {
    type Proto = LineReceiver<Chat>;

    fn build(&self, conn: &ConnInfo) -> LineReceiver<Chat> {
        let id = self.room.next_id.fetch_add(1, Ordering::Relaxed);
        let name = match &conn.peer {
            // Unnamed Unix clients all look alike: tell them apart by member number.
            PeerAddr::Unix(None) => format!("{}#{id}", conn.peer),
            peer => peer.to_string(),
        };
        let chat = Chat {
            room: self.room.clone(),
            id,
            name,
            joined: false,
        };
        LineReceiver::new(chat)
            .with_delimiter(b"\n")
            .with_max_length(self.max_line)
    }

    fn shares_state(&self) -> bool {
        true
    }
}

/// One member of a chat room, made by [`ChatFactory`].
pub struct Chat {
    room: Arc<Room>,
    id: u64,
    name: String,
    joined: bool,
}

impl fmt::Debug for Chat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chat")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("joined", &self.joined)
            .finish()
    }
}

impl Chat {
    fn announce(&self, what: &str) {
        let msg = format!("* {} {what}\n", self.name);
        self.room.broadcast(self.id, Bytes::from(msg));
    }
}

impl LineProtocol for Chat {
    fn connection_made(&mut self, t: &mut LineTransport<'_>) {
        self.room.join(self.id, t.mailbox());
        self.joined = true;
        self.announce("joined");
    }

    fn line_received(&mut self, line: &[u8], _t: &mut LineTransport<'_>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut msg = Vec::with_capacity(self.name.len() + line.len() + 3);
        msg.extend_from_slice(self.name.as_bytes());
        msg.extend_from_slice(b": ");
        msg.extend_from_slice(line);
        msg.push(b'\n');
        self.room.broadcast(self.id, Bytes::from(msg));
    }

    fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
        tracing::warn!(
            peer = %t.peer_addr(),
            seen = partial.len(),
            "chat: line longer than the limit; closing the connection"
        );
        t.close();
    }

    fn connection_lost(&mut self, _reason: &CloseReason) {
        if std::mem::take(&mut self.joined) {
            self.room.leave(self.id);
            self.announce("left");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::FakeTransport;
    use crate::protocol::Protocol;

    /// One connection of the harness: its transport and protocol, until it is lost.
    struct Conn {
        t: FakeTransport,
        p: LineReceiver<Chat>,
    }

    /// Several connections on one factory, with mailboxes delivered like a runner does.
    struct Hub {
        factory: ChatFactory,
        conns: Vec<Option<Conn>>,
        /// Connections whose mailboxes are not drained (peers that do not read).
        stalled: Vec<usize>,
    }

    fn inet(port: u16) -> PeerAddr {
        PeerAddr::Inet(([127, 0, 0, 1], port).into())
    }

    impl Hub {
        fn new(max_line: usize) -> Self {
            Hub {
                factory: ChatFactory::new(max_line),
                conns: Vec::new(),
                stalled: Vec::new(),
            }
        }

        fn connect_from(&mut self, peer: PeerAddr) -> usize {
            let info = ConnInfo {
                peer: peer.clone(),
                local: inet(9000),
            };
            let mut p = self.factory.build(&info);
            let mut t = FakeTransport::new(peer, inet(9000));
            p.connection_made(&mut t);
            self.conns.push(Some(Conn { t, p }));
            self.pump();
            self.conns.len() - 1
        }

        fn connect(&mut self, port: u16) -> usize {
            self.connect_from(inet(port))
        }

        fn conn(&mut self, i: usize) -> &mut Conn {
            self.conns[i].as_mut().expect("connection is gone")
        }

        fn send(&mut self, i: usize, data: &[u8]) {
            let c = self.conn(i);
            c.p.data_received(data, &mut c.t);
            self.reap();
            self.pump();
        }

        fn disconnect(&mut self, i: usize) {
            let mut c = self.conns[i].take().expect("connection is gone");
            c.p.connection_lost(&CloseReason::Done);
            drop(c); // drops the mailbox receiver, closing the mailbox
            self.pump();
        }

        /// Loses every connection its protocol closed, as a runner would.
        fn reap(&mut self) {
            for i in 0..self.conns.len() {
                if self.conns[i].as_ref().is_some_and(|c| c.t.is_finished()) {
                    self.disconnect(i);
                }
            }
        }

        /// Delivers posted messages until none are left (bounded rounds).
        fn pump(&mut self) {
            for _ in 0..100 {
                let mut delivered = false;
                for i in 0..self.conns.len() {
                    if self.stalled.contains(&i) {
                        continue;
                    }
                    let Some(c) = self.conns[i].as_mut() else {
                        continue;
                    };
                    let mut msgs = Vec::new();
                    if let Some(rx) = c.t.mailbox_receiver() {
                        rx.drain(&mut msgs);
                    }
                    for m in msgs {
                        delivered = true;
                        c.p.message_received(m, &mut c.t);
                    }
                }
                if !delivered {
                    return;
                }
            }
            panic!("messages kept coming after 100 rounds");
        }

        fn take(&mut self, i: usize) -> String {
            String::from_utf8(self.conn(i).t.take_written()).unwrap()
        }
    }

    #[test]
    fn lines_go_to_everyone_else_prefixed_with_the_sender() {
        let mut hub = Hub::new(1024);
        let a = hub.connect(1001);
        let b = hub.connect(1002);
        let c = hub.connect(1003);
        assert_eq!(hub.factory.members(), 3);
        assert_eq!(
            hub.take(a),
            "* 127.0.0.1:1002 joined\n* 127.0.0.1:1003 joined\n"
        );
        assert_eq!(hub.take(b), "* 127.0.0.1:1003 joined\n");
        assert_eq!(hub.take(c), "");

        hub.send(a, b"hi all\n");
        assert_eq!(hub.take(a), "", "no echo to the sender");
        assert_eq!(hub.take(b), "127.0.0.1:1001: hi all\n");
        assert_eq!(hub.take(c), "127.0.0.1:1001: hi all\n");
    }

    #[test]
    fn lines_split_across_chunks_and_crlf_are_delivered_whole() {
        let mut hub = Hub::new(1024);
        let a = hub.connect(1001);
        let b = hub.connect(1002);
        hub.take(a);
        for &byte in b"one\r\ntwo\n" {
            hub.send(b, &[byte]);
        }
        assert_eq!(hub.take(a), "127.0.0.1:1002: one\n127.0.0.1:1002: two\n");
    }

    #[test]
    fn leaving_is_announced_and_unregisters() {
        let mut hub = Hub::new(1024);
        let a = hub.connect(1001);
        let b = hub.connect(1002);
        hub.take(a);
        hub.disconnect(b);
        assert_eq!(hub.factory.members(), 1);
        assert_eq!(hub.take(a), "* 127.0.0.1:1002 left\n");
        hub.send(a, b"anyone?\n");
        assert_eq!(hub.take(a), "");
        hub.disconnect(a);
        assert_eq!(hub.factory.members(), 0);
    }

    #[test]
    fn eof_closes_and_leaves() {
        let mut hub = Hub::new(1024);
        let a = hub.connect(1001);
        let b = hub.connect(1002);
        hub.take(a);
        let c = hub.conn(b);
        c.p.eof_received(&mut c.t);
        hub.reap();
        hub.pump();
        assert!(hub.conns[b].is_none());
        assert_eq!(hub.take(a), "* 127.0.0.1:1002 left\n");
    }

    #[test]
    fn over_long_line_closes_only_the_sender() {
        let mut hub = Hub::new(8);
        let a = hub.connect(1001);
        let b = hub.connect(1002);
        hub.take(a);
        hub.send(b, b"ok\n");
        hub.send(b, b"this line is far too long\n");
        assert!(hub.conns[b].is_none(), "the sender is closed");
        assert_eq!(hub.take(a), "127.0.0.1:1002: ok\n* 127.0.0.1:1002 left\n");
        assert_eq!(hub.factory.members(), 1);
    }

    #[test]
    fn a_full_mailbox_does_not_stop_the_others() {
        let mut hub = Hub::new(1 << 20);
        let a = hub.connect(1001);
        let slow = hub.connect(1002);
        let c = hub.connect(1003);
        hub.take(a);
        hub.stalled.push(slow);
        // FakeTransport mailboxes hold 1 MiB: 40 lines of 64 KiB overflow the stalled one.
        let mut line = vec![b'x'; 64 * 1024];
        line.push(b'\n');
        for _ in 0..40 {
            hub.send(a, &line);
        }
        let got = hub.take(c);
        assert_eq!(got.lines().count(), 40);
        assert!(hub.conn(slow).t.mailbox_receiver().unwrap().has_pending());
    }

    #[test]
    fn unnamed_unix_peers_are_told_apart() {
        let mut hub = Hub::new(1024);
        let a = hub.connect_from(PeerAddr::Unix(None));
        let b = hub.connect_from(PeerAddr::Unix(None));
        hub.send(b, b"hey\n");
        let got = hub.take(a);
        assert_eq!(got, "* unix:(unnamed)#1 joined\nunix:(unnamed)#1: hey\n");
        hub.send(a, b"yo\n");
        assert_eq!(hub.take(b), "unix:(unnamed)#0: yo\n");
    }

    #[test]
    fn rooms_are_separate_per_factory() {
        let mut one = Hub::new(1024);
        let mut two = Hub::new(1024);
        let a = one.connect(1001);
        let b = two.connect(1002);
        one.send(a, b"only here\n");
        assert_eq!(two.take(b), "");
        assert_eq!(one.factory.members(), 1);
        assert_eq!(two.factory.members(), 1);
    }
}
