//! The [`Transport`](super::Transport) impl shared by the framing wrappers
//! ([`LineTransport`](super::line::LineTransport),
//! [`Int32Transport`](super::int32::Int32Transport)): every call goes to the inner
//! transport, and `close`/`abort`/`pause_reading`/`resume_reading` are also noted in
//! the wrapper's `ctl` so its receiver stops or resumes delivering. The wrappers'
//! own methods (sending a line or a string, switching modes) are not here.

/// Implements `Transport` for `$ty<'_>`, a struct with an `inner: &mut dyn
/// Transport` and a `ctl` with `closing` and `paused` flags.
macro_rules! forward_transport {
    ($ty:ident) => {
        impl $crate::protocol::Transport for $ty<'_> {
            fn write(&mut self, data: &[u8]) {
                self.inner.write(data);
            }
            fn write_file(
                &mut self,
                file: ::std::sync::Arc<::std::fs::File>,
                offset: u64,
                len: u64,
            ) {
                self.inner.write_file(file, offset, len)
            }
            fn buffered(&self) -> usize {
                self.inner.buffered()
            }
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
            fn peer_addr(&self) -> &$crate::protocol::PeerAddr {
                self.inner.peer_addr()
            }
            fn local_addr(&self) -> &$crate::protocol::PeerAddr {
                self.inner.local_addr()
            }
            fn call_later(&mut self, delay: ::std::time::Duration) -> $crate::protocol::TimerId {
                self.inner.call_later(delay)
            }
            fn cancel_timer(&mut self, id: $crate::protocol::TimerId) {
                self.inner.cancel_timer(id);
            }
            fn mailbox(&mut self) -> $crate::protocol::Mailbox {
                self.inner.mailbox()
            }
        }
    };
}

pub(crate) use forward_transport;
