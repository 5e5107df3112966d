//! One HTTP connection of the static file service, as a [`Protocol`].
//!
//! Bytes accumulate in a bounded buffer; each complete request head is answered in
//! order (pipelining), file bodies queued with [`Transport::write_file`] behind the
//! head. While more than `max_queued` bytes wait for the peer, further requests
//! wait and reading pauses; the runner then asks for more through
//! [`Protocol::resume_producing`] once the queue is below its low watermark. Every
//! error response closes the connection. A
//! request head must arrive within the header timeout, which also closes an idle
//! keep-alive connection.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::log::AccessRecord;
use super::path::{parse_target, resolve_parsed, Refusal};
use super::range::{parse_range, RangeSpec};
use super::request::{self, Head, Parsed};
use super::response::{self, Persist};
use super::{listing, mime, sys, Shared};
use crate::protocol::{PeerAddr, Protocol, TimerId, Transport};

/// The Protocol [`StaticFiles`](super::StaticFiles) builds for each connection.
pub struct HttpConn {
    shared: Arc<Shared>,
    client: String,
    buf: Vec<u8>,
    /// Request body bytes still to read and drop.
    discard: u64,
    /// The header timer armed in the runner, and the deadline it was set for.
    /// It is re-armed lazily: between keep-alive requests only `deadline`
    /// moves, and when the timer fires for an older deadline it is set again
    /// for the rest.
    timer: Option<(TimerId, Instant)>,
    /// When the awaited request head is due, if one is awaited.
    deadline: Option<Instant>,
    /// Paused because the write queue is over the bound.
    waiting: bool,
    /// The peer half-closed; close once the buffered requests are answered.
    eof: bool,
    /// The connection was closed; nothing more is done.
    done: bool,
}

impl std::fmt::Debug for HttpConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConn")
            .field("client", &self.client)
            .field("buffered", &self.buf.len())
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

/// What is known about the request being answered, for its log line.
struct Ctx {
    request_line: String,
    started: Instant,
    head_only: bool,
    persist: Persist,
}

impl HttpConn {
    pub(crate) fn new(shared: Arc<Shared>, peer: &PeerAddr) -> HttpConn {
        let client = match peer {
            PeerAddr::Inet(a) => a.ip().to_string(),
            other => other.to_string(),
        };
        HttpConn {
            shared,
            client,
            buf: Vec::new(),
            discard: 0,
            timer: None,
            deadline: None,
            waiting: false,
            eof: false,
            done: false,
        }
    }

    /// Starts waiting for a request head, due within the header timeout.
    fn arm_timer(&mut self, t: &mut dyn Transport) {
        if self.deadline.is_some() {
            return;
        }
        let timeout = self.shared.opts.header_timeout;
        let deadline = Instant::now() + timeout;
        self.deadline = Some(deadline);
        if self.timer.is_none() {
            self.timer = Some((t.call_later(timeout), deadline));
        }
    }

    /// A request head arrived: nothing is due (the runner's timer stays, and is
    /// ignored or moved when it fires).
    fn disarm_timer(&mut self) {
        self.deadline = None;
    }

    fn close(&mut self, t: &mut dyn Transport) {
        self.deadline = None;
        if let Some((id, _)) = self.timer.take() {
            t.cancel_timer(id);
        }
        self.done = true;
        t.close();
    }

    /// Answers every complete request in the buffer, in order.
    fn process(&mut self, t: &mut dyn Transport) {
        loop {
            if self.done {
                return;
            }
            if self.discard > 0 {
                let n =
                    usize::try_from(self.discard).map_or(self.buf.len(), |d| d.min(self.buf.len()));
                self.buf.drain(..n);
                self.discard -= n as u64;
                if self.discard > 0 {
                    if self.eof {
                        // The body will never be complete.
                        self.close(t);
                    } else {
                        // The rest of the body is due within the header timeout too.
                        self.arm_timer(t);
                    }
                    return;
                }
            }
            if self.buf.is_empty() {
                if self.eof {
                    self.close(t);
                } else {
                    self.arm_timer(t);
                }
                return;
            }
            if t.buffered() > self.shared.opts.max_queued {
                self.waiting = true;
                t.pause_reading();
                return;
            }
            match request::parse(&self.buf, &self.shared.opts) {
                Parsed::Partial if self.eof => {
                    self.close(t);
                    return;
                }
                Parsed::Partial => {
                    self.arm_timer(t);
                    return;
                }
                Parsed::Error(status, why) => {
                    let line = first_line(&self.buf);
                    tracing::warn!("http: {}: {why}: {}", self.client, line.escape_default());
                    let ctx = Ctx {
                        request_line: line,
                        started: Instant::now(),
                        head_only: false,
                        persist: Persist::Close,
                    };
                    self.error(t, &ctx, status, why, &[]);
                    return;
                }
                Parsed::Complete(head, n) => {
                    self.buf.drain(..n);
                    self.disarm_timer();
                    self.handle(head, t);
                }
            }
        }
    }

    /// Answers one request.
    fn handle(&mut self, head: Head, t: &mut dyn Transport) {
        let mut ctx = Ctx {
            request_line: head.request_line(),
            started: Instant::now(),
            head_only: head.method == "HEAD",
            persist: if head.keep_alive {
                Persist::KeepAlive {
                    http10: head.minor == 0,
                }
            } else {
                Persist::Close
            },
        };
        if head.method != "GET" && head.method != "HEAD" {
            let allow = [("Allow", "GET, HEAD")];
            return self.error(t, &ctx, 405, "Method not allowed", &allow);
        }
        if head.content_length > 0 {
            if head.content_length > self.shared.opts.max_discard_body {
                return self.error(t, &ctx, 413, "Request body too large", &[]);
            }
            self.discard = head.content_length;
            if head.expect {
                // The client may hold its body back for a 100 that never comes.
                ctx.persist = Persist::Close;
            }
        }
        let target = match parse_target(&head.target) {
            Ok(target) => target,
            Err(refusal) => return self.refuse(t, &ctx, &head, refusal),
        };
        // The common case, a regular file whose path stays beneath the root, costs
        // one openat2 and one fstat; anything else takes the canonicalizing path.
        if let Some(root_fd) = &self.shared.root_fd {
            match sys::open_beneath(root_fd.as_fd(), &target.rel) {
                Ok(file) => {
                    if let Ok(meta) = file.metadata() {
                        if meta.is_file() {
                            return self.serve_file(t, &ctx, &head, &target.rel, file, &meta);
                        }
                    }
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    return self.error(t, &ctx, 404, "File not found", &[]);
                }
                Err(_) => {}
            }
        }
        let resolved = match resolve_parsed(&self.shared.root, target) {
            Ok(r) => r,
            Err(refusal) => return self.refuse(t, &ctx, &head, refusal),
        };
        let Some((file, meta)) = open(&resolved.fs_path) else {
            return self.error(t, &ctx, 404, "File not found", &[]);
        };
        if meta.is_dir() {
            if !resolved.raw_path.ends_with('/') {
                let mut location = format!("{}/", resolved.raw_path);
                if let Some(q) = &resolved.query {
                    location.push('?');
                    location.push_str(q);
                }
                let extra = [("Location", location.as_str())];
                return self.send(t, &ctx, 301, &extra, Body::Bytes(b""));
            }
            let index = resolved.fs_path.join("index.html");
            let index = std::fs::canonicalize(&index)
                .ok()
                .filter(|p| p.starts_with(&self.shared.root))
                .and_then(|p| open(&p).map(|(f, m)| (p, f, m)))
                .filter(|(_, _, m)| m.is_file());
            if let Some((p, f, m)) = index {
                return self.serve_file(t, &ctx, &head, &p, f, &m);
            }
            return match listing::render(&resolved.url_path, &resolved.fs_path) {
                Ok(page) => self.send(t, &ctx, 200, &[("Content-Type", HTML)], Body::Bytes(&page)),
                Err(_) => self.error(t, &ctx, 403, "No permission to list directory", &[]),
            };
        }
        if !meta.is_file() {
            return self.error(t, &ctx, 403, "Not a regular file", &[]);
        }
        self.serve_file(t, &ctx, &head, &resolved.fs_path, file, &meta)
    }

    /// Answers a refused target with 400, 403 (logged) or 404.
    fn refuse(&mut self, t: &mut dyn Transport, ctx: &Ctx, head: &Head, refusal: Refusal) {
        match refusal {
            Refusal::BadTarget => self.error(t, ctx, 400, "Bad request target", &[]),
            Refusal::NotFound => self.error(t, ctx, 404, "File not found", &[]),
            Refusal::Forbidden(why) => {
                tracing::warn!(
                    "http: {}: refused {}: {why}",
                    self.client,
                    head.target.escape_default()
                );
                self.error(t, ctx, 403, "Forbidden", &[])
            }
        }
    }

    /// Answers with a file: 200, 206, 304 or 416.
    fn serve_file(
        &mut self,
        t: &mut dyn Transport,
        ctx: &Ctx,
        head: &Head,
        path: &Path,
        file: File,
        meta: &std::fs::Metadata,
    ) {
        let size = meta.len();
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let mtime_secs = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut etag = String::with_capacity(36);
        etag.push('"');
        response::push_hex(&mut etag, mtime_secs);
        etag.push('-');
        response::push_hex(&mut etag, size);
        etag.push('"');
        let last_modified = response::http_date(mtime_secs);
        let validators = [
            ("ETag", etag.as_str()),
            ("Last-Modified", last_modified.as_str()),
        ];
        if not_modified(head, &etag, mtime_secs) {
            return self.send(t, ctx, 304, &validators, Body::None);
        }
        let ctype = mime::content_type(path);
        let range_applies = match &head.if_range {
            None => true,
            Some(v) => v.trim() == etag || v.trim() == last_modified,
        };
        let spec = match &head.range {
            Some(r) if range_applies => parse_range(r, size),
            _ => RangeSpec::Full,
        };
        let (status, start, len, content_range) = match spec {
            RangeSpec::Full => (200, 0, size, None),
            RangeSpec::Part { start, len } => {
                let cr = format!("bytes {start}-{}/{size}", start + len - 1);
                (206, start, len, Some(cr))
            }
            RangeSpec::Unsatisfiable => {
                let cr = format!("bytes */{size}");
                let extra = [("Content-Range", cr.as_str())];
                return self.error(t, ctx, 416, "Requested range not satisfiable", &extra);
            }
        };
        let extra = [
            ("Content-Type", ctype),
            ("Accept-Ranges", "bytes"),
            validators[0],
            validators[1],
            (
                "Content-Range",
                content_range.as_deref().unwrap_or_default(),
            ),
        ];
        let n = if content_range.is_some() { 5 } else { 4 };
        let extra = extra.get(..n).unwrap_or_default();
        self.send(t, ctx, status, extra, Body::File { file, start, len });
    }

    /// Sends an error response and closes the connection.
    fn error(
        &mut self,
        t: &mut dyn Transport,
        ctx: &Ctx,
        status: u16,
        msg: &str,
        extra: &[(&str, &str)],
    ) {
        let body = response::error_page(status, msg);
        let mut headers = vec![("Content-Type", HTML)];
        headers.extend_from_slice(extra);
        let ctx = Ctx {
            persist: Persist::Close,
            request_line: ctx.request_line.clone(),
            ..*ctx
        };
        self.send(t, &ctx, status, &headers, Body::Bytes(&body));
    }

    /// Writes a response, logs it, and closes the connection unless it persists.
    fn send(
        &mut self,
        t: &mut dyn Transport,
        ctx: &Ctx,
        status: u16,
        extra: &[(&str, &str)],
        body: Body<'_>,
    ) {
        let mut persist = ctx.persist;
        let mut sent = 0;
        match body {
            Body::None => t.write(&response::head(status, 0, extra, persist, 0)),
            Body::Bytes(b) => {
                let mut out = response::head(status, b.len() as u64, extra, persist, b.len());
                if !ctx.head_only {
                    out.extend_from_slice(b);
                    sent = b.len() as u64;
                }
                t.write(&out);
            }
            Body::File { file, start, len } => {
                let small = len <= self.shared.opts.small_file;
                let inline = if small && !ctx.head_only {
                    usize::try_from(len).unwrap_or(0)
                } else {
                    0
                };
                let mut out = response::head(status, len, extra, persist, inline);
                if ctx.head_only {
                    t.write(&out);
                } else if small {
                    let at = out.len();
                    out.resize(at + usize::try_from(len).unwrap_or(0), 0);
                    let read = out
                        .get_mut(at..)
                        .map(|tail| file.read_exact_at(tail, start));
                    if !matches!(read, Some(Ok(()))) {
                        return self.error(t, ctx, 500, "File changed while being read", &[]);
                    }
                    t.write(&out);
                    sent = len;
                } else {
                    t.write(&out);
                    t.write_file(Arc::new(file), start, len);
                    sent = len;
                }
            }
        }
        self.shared.opts.access_log.log(&AccessRecord {
            client: self.client.clone(),
            request_line: ctx.request_line.clone(),
            status,
            bytes: sent,
            duration: ctx.started.elapsed(),
            time: SystemTime::now(),
        });
        if status >= 400 {
            persist = Persist::Close;
        }
        if persist == Persist::Close {
            self.close(t);
        }
    }
}

const HTML: &str = "text/html; charset=utf-8";

/// A response body.
enum Body<'a> {
    /// No body and no `Content-Length` (304).
    None,
    /// Bytes written with the head.
    Bytes(&'a [u8]),
    /// A file range: small ones read and written with the head, large ones sent by `write_file`.
    File { file: File, start: u64, len: u64 },
}

/// Opens a path without following a final symlink and without blocking on FIFOs.
fn open(path: &Path) -> Option<(File, std::fs::Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    Some((file, meta))
}

/// `If-None-Match` (which wins when present) or `If-Modified-Since` says the
/// client's copy is current.
fn not_modified(head: &Head, etag: &str, mtime_secs: u64) -> bool {
    if let Some(inm) = &head.if_none_match {
        return response::etag_matches(inm, etag);
    }
    let Some(ims) = head.if_modified_since.as_deref() else {
        return false;
    };
    httpdate::parse_http_date(ims)
        .ok()
        .and_then(|d| d.duration_since(UNIX_EPOCH).ok())
        .is_some_and(|d| mtime_secs <= d.as_secs())
}

/// The first line of `buf`, lossy and bounded, for logging a refused request.
fn first_line(buf: &[u8]) -> String {
    let end = memchr::memchr(b'\n', buf).unwrap_or(buf.len()).min(200);
    String::from_utf8_lossy(buf.get(..end).unwrap_or(buf))
        .trim_end()
        .to_string()
}

impl Protocol for HttpConn {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        self.arm_timer(t);
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        if self.done {
            return;
        }
        self.buf.extend_from_slice(data);
        self.process(t);
    }

    fn eof_received(&mut self, t: &mut dyn Transport) {
        self.eof = true;
        if !self.waiting {
            self.process(t);
        }
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        let Some((armed, set_for)) = self.timer else {
            return;
        };
        if armed != id || self.done {
            return;
        }
        self.timer = None;
        let Some(deadline) = self.deadline else {
            return; // nothing was due any more
        };
        if deadline != set_for {
            // A later head is awaited than the one this timer was set for.
            let rest = deadline.saturating_duration_since(Instant::now());
            if !rest.is_zero() {
                self.timer = Some((t.call_later(rest), deadline));
                return;
            }
        }
        self.deadline = None;
        if self.buf.is_empty() {
            if t.buffered() > 0 {
                // Still sending the last response: the client is not idle yet.
                self.arm_timer(t);
            } else {
                // An idle keep-alive connection: close quietly.
                self.close(t);
            }
            return;
        }
        let line = first_line(&self.buf);
        tracing::warn!("http: {}: request head not received in time", self.client);
        let ctx = Ctx {
            request_line: line,
            started: Instant::now(),
            head_only: false,
            persist: Persist::Close,
        };
        self.error(t, &ctx, 408, "Request timeout", &[]);
    }

    fn is_producer(&self) -> bool {
        self.waiting
    }

    fn resume_producing(&mut self, t: &mut dyn Transport) {
        if !self.waiting || t.buffered() > self.shared.opts.max_queued {
            return;
        }
        self.waiting = false;
        t.resume_reading();
        self.process(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HttpOptions, StaticFiles};
    use crate::protocol::testing::FakeTransport;
    use crate::protocol::{ConnInfo, Factory, Mailbox};
    use std::time::Duration;

    /// A transport whose write queue reports `queued` bytes.
    struct Busy {
        inner: FakeTransport,
        queued: usize,
        timers: Vec<TimerId>,
    }

    impl Transport for Busy {
        fn write(&mut self, data: &[u8]) {
            self.inner.write(data)
        }
        fn write_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
            self.inner.write_file(file, offset, len)
        }
        fn buffered(&self) -> usize {
            self.queued
        }
        fn close(&mut self) {
            self.inner.close()
        }
        fn abort(&mut self) {
            self.inner.abort()
        }
        fn shutdown_write(&mut self) {
            self.inner.shutdown_write()
        }
        fn pause_reading(&mut self) {
            self.inner.pause_reading()
        }
        fn resume_reading(&mut self) {
            self.inner.resume_reading()
        }
        fn peer_addr(&self) -> &PeerAddr {
            self.inner.peer_addr()
        }
        fn local_addr(&self) -> &PeerAddr {
            self.inner.local_addr()
        }
        fn call_later(&mut self, delay: Duration) -> TimerId {
            let id = self.inner.call_later(delay);
            self.timers.push(id);
            id
        }
        fn cancel_timer(&mut self, id: TimerId) {
            self.timers.retain(|t| *t != id);
            self.inner.cancel_timer(id)
        }
        fn mailbox(&mut self) -> Mailbox {
            self.inner.mailbox()
        }
    }

    fn conn() -> (tempfile::TempDir, HttpConn, Busy) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "aaaa").unwrap();
        let files = StaticFiles::new(dir.path(), HttpOptions::default()).unwrap();
        let peer = PeerAddr::Inet(([127, 0, 0, 1], 1).into());
        let info = ConnInfo {
            peer: peer.clone(),
            local: peer.clone(),
        };
        let t = Busy {
            inner: FakeTransport::new(peer.clone(), peer),
            queued: 0,
            timers: Vec::new(),
        };
        (dir, files.build(&info), t)
    }

    #[test]
    fn pipelined_requests_wait_while_the_queue_is_full() {
        let (_d, mut c, mut t) = conn();
        c.connection_made(&mut t);
        t.queued = 1 << 20;
        c.data_received(
            b"GET /a.txt HTTP/1.1\r\n\r\nGET /a.txt HTTP/1.1\r\n\r\n",
            &mut t,
        );
        // Nothing answered while the queue is over the bound; reading paused.
        assert!(t.inner.outcome().written.is_empty());
        assert!(t.inner.outcome().paused && c.is_producer());
        // Still full: resume_producing does nothing.
        c.resume_producing(&mut t);
        assert!(t.inner.outcome().written.is_empty());
        t.queued = 0;
        c.resume_producing(&mut t);
        let text = String::from_utf8(t.inner.take_written()).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2);
        assert!(!t.inner.outcome().paused && !c.is_producer());
    }

    #[test]
    fn the_idle_timer_waits_for_the_last_response_to_go_out() {
        let (_d, mut c, mut t) = conn();
        c.connection_made(&mut t);
        c.data_received(b"GET /a.txt HTTP/1.1\r\n\r\n", &mut t);
        t.queued = 100;
        let id = *t.timers.last().unwrap();
        c.timer_fired(id, &mut t);
        assert!(!t.inner.is_finished(), "still sending: not idle");
        assert_eq!(t.timers.len(), 2, "re-armed");
        t.queued = 0;
        let id = *t.timers.last().unwrap();
        c.timer_fired(id, &mut t);
        assert!(t.inner.is_finished());
    }
}
