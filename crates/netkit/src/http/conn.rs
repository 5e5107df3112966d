//! One HTTP connection of the static file service, as a [`Protocol`].
//!
//! Bytes accumulate in a bounded buffer; each complete request head is answered in
//! order (pipelining). Small bodies go out with the head. A large file and a
//! directory listing are *streams*: the connection is a producer
//! ([`Protocol::resume_producing`]) that queues the next piece only when the runner
//! asks, below its low watermark — a file one [`FILE_CHUNK`] range at a time
//! (sent with [`Transport::write_file`]), a listing one bounded step of
//! [`Listing`] at a time (chunked for HTTP/1.1, ended by closing for HTTP/1.0).
//! While a stream is going, or more than `max_queued` bytes wait for the peer,
//! further requests wait and reading pauses. Every error response closes the
//! connection. A request head must arrive within the header timeout, which also
//! closes an idle keep-alive connection.
//!
//! The access log line of a streamed body is written once its last byte has gone
//! to the kernel, or when the connection ends, with the bytes actually sent: the
//! connection counts what it queued and reads [`Transport::buffered`] to learn
//! what left, and a file that shrank mid-transfer is measured again.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::listing::Listing;
use super::log::AccessRecord;
use super::path::{dir_location, parse_target, resolve_parsed, Refusal, Resolved};
use super::range::{parse_range, RangeSpec};
use super::request::{self, Head, Parsed};
use super::response::{self, Persist};
use super::{mime, sys, Shared};
use crate::net::escape_log;
use crate::protocol::{CloseReason, PeerAddr, Protocol, TimerId, Transport};

/// A large file body is queued this much at a time, each range once the one
/// before it has gone to the kernel.
pub(crate) const FILE_CHUNK: u64 = 1 << 20;

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
    /// The body being streamed, which holds back further requests.
    stream: Option<Stream>,
    /// A zero-delay timer that continues a stream which had nothing to write.
    resume_timer: Option<TimerId>,
    /// Bytes handed to the transport so far.
    queued: u64,
    /// Of those, how many had left the queue when last looked.
    flushed: u64,
    /// Access log lines waiting for their bodies to go out, oldest first.
    pending: VecDeque<PendingLog>,
}

impl std::fmt::Debug for HttpConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConn")
            .field("client", &self.client)
            .field("buffered", &self.buf.len())
            .field("waiting", &self.waiting)
            .field("streaming", &self.stream.is_some())
            .field("pending_logs", &self.pending.len())
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

/// A body produced piece by piece.
struct Stream {
    kind: StreamKind,
    /// How the connection goes on once the body is complete.
    persist: Persist,
}

enum StreamKind {
    /// A file range: `next..end` is still to be queued.
    File {
        file: Arc<File>,
        next: u64,
        end: u64,
    },
    /// A directory listing, in chunked encoding or ended by closing.
    Listing { listing: Listing, chunked: bool },
}

/// An access log line whose body may not have gone out yet.
struct PendingLog {
    request_line: String,
    status: u16,
    started: Instant,
    /// `HttpConn::queued` where the body starts.
    body_start: u64,
    /// Where it ends, once it is queued whole.
    body_end: Option<u64>,
    /// For a file body, what it takes to measure what was sent if it fails.
    file: Option<FileTrack>,
}

/// The file of a streamed file body and the range in flight.
struct FileTrack {
    file: Arc<File>,
    /// The file offset the body starts at.
    start: u64,
    /// The file range queued last (empty before the first).
    chunk: (u64, u64),
    /// `HttpConn::queued` at the end of that range.
    chunk_mark: u64,
}

impl PendingLog {
    /// Body bytes sent, told the connection ended for `reason` after `flushed`
    /// bytes were seen to leave and `queued` were queued in all.
    fn sent_at_end(&self, reason: &CloseReason, flushed: u64, queued: u64) -> u64 {
        let queued_body = self.body_end.unwrap_or(queued) - self.body_start;
        if *reason == CloseReason::Done {
            // An orderly close comes only after the queue drained.
            return queued_body;
        }
        let seen = flushed.saturating_sub(self.body_start).min(queued_body);
        let Some(f) = &self.file else {
            return seen;
        };
        let (at, end) = f.chunk;
        let size = f.file.metadata().map_or(u64::MAX, |m| m.len());
        if at < end && size < end {
            // The file shrank under the range in flight: everything before that
            // range had gone out, and sending stopped where the file now ends.
            (size.max(at) - f.start).max(seen).min(queued_body)
        } else {
            seen
        }
    }
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
            stream: None,
            resume_timer: None,
            queued: 0,
            flushed: 0,
            pending: VecDeque::new(),
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
        if let Some(id) = self.resume_timer.take() {
            t.cancel_timer(id);
        }
        self.done = true;
        t.close();
    }

    /// Queues bytes, counting them.
    fn put(&mut self, t: &mut dyn Transport, data: &[u8]) {
        self.queued += data.len() as u64;
        t.write(data);
    }

    /// Queues a file range, counting it.
    fn put_file(&mut self, t: &mut dyn Transport, file: Arc<File>, offset: u64, len: u64) {
        self.queued += len;
        t.write_file(file, offset, len);
    }

    /// Learns how much has left the queue, and writes the log lines of the
    /// bodies that have gone out whole.
    fn observe(&mut self, t: &dyn Transport) {
        let buffered = u64::try_from(t.buffered()).unwrap_or(u64::MAX);
        self.flushed = self.flushed.max(self.queued.saturating_sub(buffered));
        while let Some(p) = self.pending.front() {
            match p.body_end {
                Some(end) if self.flushed >= end => {
                    let bytes = end - p.body_start;
                    if let Some(p) = self.pending.pop_front() {
                        self.log(&p.request_line, p.status, bytes, p.started);
                    }
                }
                _ => break,
            }
        }
    }

    fn log(&self, request_line: &str, status: u16, bytes: u64, started: Instant) {
        self.shared.opts.access_log.log(&AccessRecord {
            client: self.client.clone(),
            request_line: request_line.to_string(),
            status,
            bytes,
            duration: started.elapsed(),
            time: SystemTime::now(),
        });
    }

    /// Logs a response queued whole with `bytes` of body: at once, or after the
    /// log lines still waiting, to keep their order.
    fn record(&mut self, ctx: &Ctx, status: u16, bytes: u64) {
        if self.pending.is_empty() {
            return self.log(&ctx.request_line, status, bytes, ctx.started);
        }
        self.pending.push_back(PendingLog {
            request_line: ctx.request_line.clone(),
            status,
            started: ctx.started,
            body_start: self.queued - bytes,
            body_end: Some(self.queued),
            file: None,
        });
    }

    /// Answers every complete request in the buffer, in order.
    fn process(&mut self, t: &mut dyn Transport) {
        loop {
            if self.done || self.stream.is_some() {
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
                    tracing::warn!(
                        "http: {}: {why}: {}",
                        escape_log(&self.client),
                        escape_log(&line)
                    );
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
                let location = dir_location(&resolved.raw_path, resolved.query.as_deref());
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
            return self.list(t, &ctx, &resolved);
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
                    escape_log(&self.client),
                    escape_log(&head.target)
                );
                self.error(t, ctx, 403, "Forbidden", &[])
            }
        }
    }

    /// Answers with a directory listing, streamed: chunked to an HTTP/1.1 client
    /// that keeps the connection, otherwise ended by closing the connection.
    fn list(&mut self, t: &mut dyn Transport, ctx: &Ctx, resolved: &Resolved) {
        let opened = Listing::open(
            &resolved.fs_path,
            &self.shared.root,
            &resolved.url_path,
            self.shared.opts.show_hidden,
        );
        let Ok(listing) = opened else {
            return self.error(t, ctx, 403, "No permission to list directory", &[]);
        };
        let chunked = ctx.persist == Persist::KeepAlive { http10: false };
        let persist = if chunked { ctx.persist } else { Persist::Close };
        let mut extra = vec![("Content-Type", HTML)];
        if chunked {
            extra.push(("Transfer-Encoding", "chunked"));
        }
        let head = response::head_streamed(200, &extra, persist);
        self.put(t, &head);
        if ctx.head_only {
            self.record(ctx, 200, 0);
            if persist == Persist::Close {
                self.close(t);
            }
            return;
        }
        self.begin(
            t,
            ctx,
            200,
            Stream {
                kind: StreamKind::Listing { listing, chunked },
                persist,
            },
            None,
        );
    }

    /// Starts streaming a body whose head is queued.
    fn begin(
        &mut self,
        t: &mut dyn Transport,
        ctx: &Ctx,
        status: u16,
        stream: Stream,
        file: Option<FileTrack>,
    ) {
        self.pending.push_back(PendingLog {
            request_line: ctx.request_line.clone(),
            status,
            started: ctx.started,
            body_start: self.queued,
            body_end: None,
            file,
        });
        self.stream = Some(stream);
        t.pause_reading();
        self.pump(t);
    }

    /// Queues the stream's next piece, if the queue has room for it.
    fn pump(&mut self, t: &mut dyn Transport) {
        if self.done {
            return;
        }
        self.observe(t);
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let finished = match &mut stream.kind {
            StreamKind::File { file, next, end } => {
                let (file, next, end) = (file.clone(), next, *end);
                let step = self.pump_file(t, &file, *next, end);
                match step {
                    FileStep::Wait => false,
                    FileStep::Queued(to) => {
                        *next = to;
                        to >= end
                    }
                    FileStep::Shrank(to) => {
                        tracing::warn!(
                            "http: {}: {}: the file shrank while being sent",
                            escape_log(&self.client),
                            escape_log(self.pending.back().map_or("", |p| &p.request_line))
                        );
                        *next = to;
                        stream.persist = Persist::Close;
                        true
                    }
                }
            }
            StreamKind::Listing { listing, chunked } => {
                let mut html = String::new();
                let done = listing.step(&mut html);
                let chunked = *chunked;
                if !html.is_empty() {
                    let mut piece = Vec::with_capacity(html.len() + 16);
                    if chunked {
                        piece.extend_from_slice(format!("{:x}\r\n", html.len()).as_bytes());
                    }
                    piece.extend_from_slice(html.as_bytes());
                    if chunked {
                        piece.extend_from_slice(b"\r\n");
                    }
                    self.put(t, &piece);
                } else if !done && self.resume_timer.is_none() {
                    // Nothing to write yet (names are being read): continue on the
                    // next turn, since the runner asks producers again only after
                    // they write.
                    self.resume_timer = Some(t.call_later(Duration::ZERO));
                }
                if done && chunked {
                    self.put(t, b"0\r\n\r\n");
                }
                done
            }
        };
        if !finished {
            self.stream = Some(stream);
            return;
        }
        if let Some(p) = self.pending.back_mut() {
            p.body_end = Some(self.queued);
        }
        if let Some(id) = self.resume_timer.take() {
            t.cancel_timer(id);
        }
        t.resume_reading();
        self.observe(t);
        if stream.persist == Persist::Close {
            self.close(t);
        } else {
            self.process(t);
        }
    }

    /// Queues the next range of a file body: only once the range before it has
    /// gone to the kernel, so that what was sent can be told if the file shrinks.
    fn pump_file(
        &mut self,
        t: &mut dyn Transport,
        file: &Arc<File>,
        next: u64,
        end: u64,
    ) -> FileStep {
        let Some(track) = self.pending.back().and_then(|p| p.file.as_ref()) else {
            return FileStep::Shrank(next);
        };
        if track.chunk.0 < track.chunk.1 && self.flushed < track.chunk_mark {
            return FileStep::Wait;
        }
        let size = file.metadata().map_or(0, |m| m.len());
        let want = end.min(next.saturating_add(FILE_CHUNK));
        let to = want.min(size.max(next));
        if to > next {
            self.put_file(t, file.clone(), next, to - next);
            let mark = self.queued;
            if let Some(track) = self.pending.back_mut().and_then(|p| p.file.as_mut()) {
                track.chunk = (next, to);
                track.chunk_mark = mark;
            }
        }
        if to < want {
            FileStep::Shrank(to)
        } else {
            FileStep::Queued(to)
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
    /// A large file body is streamed instead, and logged once sent.
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
            Body::None => self.put(t, &response::head(status, 0, extra, persist, 0)),
            Body::Bytes(b) => {
                let mut out = response::head(status, b.len() as u64, extra, persist, b.len());
                if !ctx.head_only {
                    out.extend_from_slice(b);
                    sent = b.len() as u64;
                }
                self.put(t, &out);
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
                    self.put(t, &out);
                } else if small {
                    let at = out.len();
                    out.resize(at + usize::try_from(len).unwrap_or(0), 0);
                    let read = out
                        .get_mut(at..)
                        .map(|tail| file.read_exact_at(tail, start));
                    if !matches!(read, Some(Ok(()))) {
                        return self.error(t, ctx, 500, "File changed while being read", &[]);
                    }
                    self.put(t, &out);
                    sent = len;
                } else {
                    self.put(t, &out);
                    let file = Arc::new(file);
                    let track = FileTrack {
                        file: file.clone(),
                        start,
                        chunk: (start, start),
                        chunk_mark: self.queued,
                    };
                    let kind = StreamKind::File {
                        file,
                        next: start,
                        end: start + len,
                    };
                    let stream = Stream { kind, persist };
                    return self.begin(t, ctx, status, stream, Some(track));
                }
            }
        }
        self.record(ctx, status, sent);
        if status >= 400 {
            persist = Persist::Close;
        }
        if persist == Persist::Close {
            self.close(t);
        }
    }
}

/// What queuing a file range came to.
enum FileStep {
    /// The range before is still going out.
    Wait,
    /// Queued up to this offset.
    Queued(u64),
    /// The file now ends before the body does; queued up to this offset.
    Shrank(u64),
}

const HTML: &str = "text/html; charset=utf-8";

/// A response body.
enum Body<'a> {
    /// No body and no `Content-Length` (304).
    None,
    /// Bytes written with the head.
    Bytes(&'a [u8]),
    /// A file range: small ones read and written with the head, large ones streamed.
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

    fn connection_lost(&mut self, reason: &CloseReason) {
        while let Some(p) = self.pending.pop_front() {
            let bytes = p.sent_at_end(reason, self.flushed, self.queued);
            self.log(&p.request_line, p.status, bytes, p.started);
        }
    }

    fn timer_fired(&mut self, id: TimerId, t: &mut dyn Transport) {
        if self.resume_timer == Some(id) {
            self.resume_timer = None;
            if t.buffered() <= self.shared.opts.max_queued {
                self.pump(t);
            }
            return;
        }
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
        tracing::warn!(
            "http: {}: request head not received in time",
            escape_log(&self.client)
        );
        let ctx = Ctx {
            request_line: line,
            started: Instant::now(),
            head_only: false,
            persist: Persist::Close,
        };
        self.error(t, &ctx, 408, "Request timeout", &[]);
    }

    fn is_producer(&self) -> bool {
        self.waiting || self.stream.is_some() || !self.pending.is_empty()
    }

    fn resume_producing(&mut self, t: &mut dyn Transport) {
        if self.stream.is_some() {
            return self.pump(t);
        }
        self.observe(t);
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
            b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n",
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
        c.data_received(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n", &mut t);
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
