//! Mailboxes: how one connection (or any thread) sends messages to another.
//!
//! A runner makes a [`MailboxReceiver`] for a connection when its Protocol first asks
//! for [`Transport::mailbox`](super::Transport::mailbox), with a [`Wake`] that rouses
//! whatever thread or loop owns the connection. Posting never blocks; a mailbox has a
//! byte bound, and a post that would pass it fails with [`MailboxError::Full`] and
//! marks the mailbox overflowed, which the owning runner treats as a peer too slow
//! to keep (it closes that connection).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

/// Rouses the thread or event loop that owns a connection.
pub trait Wake: Send + Sync {
    /// Called when a mailbox goes from empty to non-empty.
    fn wake(&self);
}

/// Why [`Mailbox::post`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailboxError {
    /// The connection is gone.
    #[error("the connection is closed")]
    Closed,
    /// The connection's mailbox is over its byte bound: its peer is not reading.
    #[error("the connection's mailbox is full")]
    Full,
}

#[derive(Default)]
struct State {
    msgs: VecDeque<Bytes>,
    bytes: usize,
    closed: bool,
    overflowed: bool,
}

struct Inner {
    state: Mutex<State>,
    limit: usize,
    wake: Arc<dyn Wake>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only a queue of bytes behind: usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side of a connection's mailbox; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Mailbox {
    inner: Arc<Inner>,
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("limit", &self.inner.limit)
            .finish()
    }
}

impl Mailbox {
    /// Makes a mailbox holding at most `limit` bytes of undelivered messages.
    pub fn channel(limit: usize, wake: Arc<dyn Wake>) -> (Mailbox, MailboxReceiver) {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            limit,
            wake,
        });
        (
            Mailbox {
                inner: inner.clone(),
            },
            MailboxReceiver { inner },
        )
    }

    /// Posts a message for the connection's [`Protocol::message_received`](super::Protocol::message_received).
    pub fn post(&self, msg: Bytes) -> Result<(), MailboxError> {
        let was_empty = {
            let mut st = self.inner.lock();
            if st.closed {
                return Err(MailboxError::Closed);
            }
            if st.bytes + msg.len() > self.inner.limit {
                let first = !st.overflowed;
                st.overflowed = true;
                drop(st);
                if first {
                    self.inner.wake.wake();
                }
                return Err(MailboxError::Full);
            }
            let was_empty = st.msgs.is_empty();
            st.bytes += msg.len();
            st.msgs.push_back(msg);
            was_empty
        };
        if was_empty {
            self.inner.wake.wake();
        }
        Ok(())
    }

    /// Whether the connection has gone away.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Whether two handles reach the same connection.
    pub fn same(&self, other: &Mailbox) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// The owning runner's side of a mailbox. Dropping it closes the mailbox.
pub struct MailboxReceiver {
    inner: Arc<Inner>,
}

impl fmt::Debug for MailboxReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxReceiver").finish_non_exhaustive()
    }
}

impl MailboxReceiver {
    /// A sending handle for this mailbox.
    pub fn mailbox(&self) -> Mailbox {
        Mailbox {
            inner: self.inner.clone(),
        }
    }

    /// Moves every waiting message into `out`. Returns `true` when a post was
    /// refused for lack of room since the last call (the peer is too slow).
    pub fn drain(&self, out: &mut Vec<Bytes>) -> bool {
        let mut st = self.inner.lock();
        out.extend(st.msgs.drain(..));
        st.bytes = 0;
        std::mem::take(&mut st.overflowed)
    }

    /// Whether messages are waiting.
    pub fn has_pending(&self) -> bool {
        let st = self.inner.lock();
        !st.msgs.is_empty() || st.overflowed
    }

    /// Closes the mailbox: later posts fail with [`MailboxError::Closed`].
    pub fn close(&self) {
        let mut st = self.inner.lock();
        st.closed = true;
        st.msgs.clear();
        st.bytes = 0;
    }
}

impl Drop for MailboxReceiver {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_once_per_empty_to_full_and_bounds_bytes() {
        let w = Arc::new(Count(AtomicUsize::new(0)));
        let (tx, rx) = Mailbox::channel(8, w.clone());
        tx.post(Bytes::from_static(b"abc")).unwrap();
        tx.post(Bytes::from_static(b"def")).unwrap();
        assert_eq!(w.0.load(Ordering::SeqCst), 1);
        assert_eq!(tx.post(Bytes::from_static(b"ghi")), Err(MailboxError::Full));
        let mut out = Vec::new();
        assert!(rx.drain(&mut out));
        assert_eq!(out.len(), 2);
        assert!(!rx.drain(&mut out));
        drop(rx);
        assert_eq!(tx.post(Bytes::from_static(b"x")), Err(MailboxError::Closed));
        assert!(tx.is_closed());
    }
}
