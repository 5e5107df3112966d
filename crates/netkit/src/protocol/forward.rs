//! Transport plumbing shared by the Protocol wrappers: [`pass_through!`] writes
//! the `Transport` methods a wrapper hands straight to the transport it wraps
//! (grouped: output, ending, flow, addresses, timers, mailbox), so each wrapper
//! spells out only what it changes; [`forward_transport!`] is the whole impl for
//! the framing wrappers ([`LineTransport`](super::line::LineTransport),
//! [`Int32Transport`](super::int32::Int32Transport)), whose `close`/`abort`/
//! `pause_reading`/`resume_reading` are also noted in the wrapper's `ctl` so its
//! receiver stops or resumes delivering.

/// Inside an `impl Transport`, passes the named method groups to `self.$t`
/// (a `&mut dyn Transport` field): `output` (write, write_file, buffered),
/// `ending` (close, abort, shutdown_write), `flow` (pause_reading,
/// resume_reading), `addresses`, `timers`, `mailbox`.
macro_rules! pass_through {
    ($t:ident: output) => {
        fn write(&mut self, data: &[u8]) {
            self.$t.write(data);
        }
        fn write_file(&mut self, file: ::std::sync::Arc<::std::fs::File>, offset: u64, len: u64) {
            self.$t.write_file(file, offset, len);
        }
        fn buffered(&self) -> usize {
            self.$t.buffered()
        }
    };
    ($t:ident: ending) => {
        fn close(&mut self) {
            self.$t.close();
        }
        fn abort(&mut self) {
            self.$t.abort();
        }
        fn shutdown_write(&mut self) {
            self.$t.shutdown_write();
        }
    };
    ($t:ident: flow) => {
        fn pause_reading(&mut self) {
            self.$t.pause_reading();
        }
        fn resume_reading(&mut self) {
            self.$t.resume_reading();
        }
    };
    ($t:ident: addresses) => {
        fn peer_addr(&self) -> &$crate::protocol::PeerAddr {
            self.$t.peer_addr()
        }
        fn local_addr(&self) -> &$crate::protocol::PeerAddr {
            self.$t.local_addr()
        }
    };
    ($t:ident: timers) => {
        fn call_later(&mut self, delay: ::std::time::Duration) -> $crate::protocol::TimerId {
            self.$t.call_later(delay)
        }
        fn cancel_timer(&mut self, id: $crate::protocol::TimerId) {
            self.$t.cancel_timer(id);
        }
    };
    ($t:ident: mailbox) => {
        fn mailbox(&mut self) -> $crate::protocol::Mailbox {
            self.$t.mailbox()
        }
    };
    ($t:ident: $($group:ident),+) => {
        $( $crate::protocol::forward::pass_through!($t: $group); )+
    };
}

/// Implements `Transport` for `$ty<'_>`, a struct with an `inner: &mut dyn
/// Transport` and a `ctl` with `closing` and `paused` flags.
macro_rules! forward_transport {
    ($ty:ident) => {
        impl $crate::protocol::Transport for $ty<'_> {
            $crate::protocol::forward::pass_through!(inner: output, addresses, timers, mailbox);

            fn close(&mut self) {
                self.ctl.closing = true;
                self.inner.close();
            }
            fn abort(&mut self) {
                self.ctl.closing = true;
                self.inner.abort();
            }
            fn shutdown_write(&mut self) {
                self.inner.shutdown_write();
            }
            fn pause_reading(&mut self) {
                self.ctl.paused = true;
                self.inner.pause_reading();
            }
            fn resume_reading(&mut self) {
                self.ctl.paused = false;
                self.inner.resume_reading();
            }
        }
    };
}

pub(crate) use forward_transport;
pub(crate) use pass_through;
