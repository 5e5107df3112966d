//! Programs per connection, inetd style: [`spawn`] makes the socket itself the
//! child's stdin and stdout (`netkit listen --exec CMD`, no copying through
//! netkit); [`ExecFactory`] runs the child as a Protocol with pipes, so the
//! server's modes and limits apply to it (`netkit serve --exec CMD`). Stderr is
//! inherited. The child gets `NETKIT_PEER_ADDR` and `NETKIT_PEER_PORT` (empty for
//! Unix peers) and is reaped by a thread that logs how it exited.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;

use super::Log;
use crate::net::{PeerAddr, StdStream, Stream};
use crate::protocol::{
    CloseReason, ConnInfo, Factory, Mailbox, Protocol, Transport, HIGH_WATER, LOW_WATER,
};

/// Starts `sh -c CMD` with `stream` as its stdin and stdout.
pub fn spawn(cmd: &str, stream: Stream, peer: &PeerAddr) -> io::Result<Child> {
    let fd: OwnedFd = match stream.into_std() {
        StdStream::Tcp(s) => s.into(),
        StdStream::Unix(s) => s.into(),
    };
    let out = fd.try_clone()?;
    let (addr, port) = peer_env(peer);
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::from(fd))
        .stdout(Stdio::from(out))
        .env("NETKIT_PEER_ADDR", addr)
        .env("NETKIT_PEER_PORT", port)
        .spawn()
}

/// How a child exited, for the log: `exit status 0`, `killed by signal 9`.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// Waits for `child` on a thread and hands its exit to `log`.
pub fn reap(
    mut child: Child,
    log: impl FnOnce(io::Result<ExitStatus>) + Send + 'static,
) -> JoinHandle<()> {
    thread::spawn(move || log(child.wait()))
}

/// Bytes the child's stdout is read in; also the step of its send window.
const OUT_CHUNK: usize = 16 * 1024;

/// The most child output read and not yet taken by the connection's write queue
/// (well under [`MAILBOX_LIMIT`](crate::protocol::MAILBOX_LIMIT), so a child
/// writing faster than its peer reads is slowed, never dropped).
const OUT_WINDOW: usize = 4 * OUT_CHUNK;

/// How often the stdout reader looks whether a child that closed its stdout has
/// exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// Mailbox message tags: child output, end of child output, stdin drained.
const TAG_DATA: u8 = b'd';
const TAG_EOF: u8 = b'e';
const TAG_WAKE: u8 = b'w';

/// Makes an [`Exec`] per connection: `netkit serve --exec CMD` as a Protocol,
/// so every mode, limit, TLS, PROXY header and dump of the server applies to it.
#[derive(Clone)]
pub struct ExecFactory {
    cmd: Arc<str>,
    log: Option<Log>,
    next: Arc<AtomicU64>,
}

impl fmt::Debug for ExecFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecFactory")
            .field("cmd", &self.cmd)
            .finish_non_exhaustive()
    }
}

impl ExecFactory {
    /// Runs `sh -c cmd` per connection.
    pub fn new(cmd: &str) -> ExecFactory {
        ExecFactory {
            cmd: cmd.into(),
            log: None,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reports each child's start and exit (and failures to start) to `log`:
    /// `connection 1 from ADDR: started pid 42`, `... pid 42 ended with exit status 0`.
    pub fn with_log(mut self, log: Log) -> ExecFactory {
        self.log = Some(log);
        self
    }
}

impl Factory for ExecFactory {
    type Proto = Exec;
    fn build(&self, conn: &ConnInfo) -> Exec {
        Exec {
            cmd: self.cmd.clone(),
            log: self.log.clone(),
            conn: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            peer: conn.peer.clone(),
            child: Arc::new(Mutex::new(None)),
            input: None,
            credit: None,
            held: 0,
        }
    }
}

/// Child output flow control: bytes the stdout reader may still read ahead.
struct Credit {
    state: Mutex<(usize, bool)>,
    cond: Condvar,
}

impl Credit {
    fn new(n: usize) -> Credit {
        Credit {
            state: Mutex::new((n, false)),
            cond: Condvar::new(),
        }
    }

    /// Waits for room for a chunk; `None` once the connection is gone.
    fn take(&self) -> Option<usize> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.1 {
                return None;
            }
            if st.0 > 0 {
                let n = st.0.min(OUT_CHUNK);
                st.0 -= n;
                return Some(n);
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn give(&self, n: usize) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += n;
        self.cond.notify_all();
    }

    fn close(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.1 = true;
        self.cond.notify_all();
    }
}

/// Data from the peer waiting for the child's stdin.
#[derive(Default)]
struct InputState {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The peer half-closed: close stdin once the queue is written.
    eof: bool,
    /// The connection is gone: drop everything.
    closed: bool,
    /// Reading from the peer is paused until the queue drains.
    paused: bool,
}

struct Input {
    state: Mutex<InputState>,
    cond: Condvar,
}

impl Input {
    fn lock(&self) -> MutexGuard<'_, InputState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's program: `sh -c CMD` with pipes for stdin and stdout (stderr
/// inherited). A writer thread feeds the peer's bytes to stdin (reading from the
/// peer pauses while [`HIGH_WATER`] bytes wait); a reader thread posts stdout to
/// the connection's mailbox within a fixed window that refills only as the
/// connection's write queue drains. The end of stdout closes the connection after
/// the queued output once the child has exited (as an inetd child's exit ends
/// its connection). A connection that ends first (the peer resets it, an idle
/// timeout, a shutdown) kills the child and its process group, and reaps it.
pub struct Exec {
    cmd: Arc<str>,
    log: Option<Log>,
    conn: u64,
    peer: PeerAddr,
    /// The running child, until the stdout reader or the end of the connection
    /// reaps it.
    child: Arc<Mutex<Option<Child>>>,
    input: Option<Arc<Input>>,
    credit: Option<Arc<Credit>>,
    /// Output bytes written while the write queue was full, credited back once
    /// it drains ([`Protocol::resume_producing`]).
    held: usize,
}

impl fmt::Debug for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exec")
            .field("cmd", &self.cmd)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Exec {
    fn say(&self, line: &str) {
        if let Some(log) = &self.log {
            log(line);
        }
    }

    fn prefix(&self) -> String {
        format!("connection {} from {}", self.conn, self.peer)
    }

    fn ended(&self, pid: u32, status: io::Result<ExitStatus>) {
        log_end(self.log.as_ref(), &self.prefix(), pid, status);
    }

    fn start(&mut self, t: &mut dyn Transport) -> io::Result<()> {
        let (addr, port) = peer_env(&self.peer);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&*self.cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .env("NETKIT_PEER_ADDR", addr)
            .env("NETKIT_PEER_PORT", port)
            // Its own process group, so ending the connection ends whatever
            // the shell started too.
            .process_group(0)
            .spawn()?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other("the child has no pipes"));
            }
        };
        let mailbox = t.mailbox();
        let input = Arc::new(Input {
            state: Mutex::new(InputState::default()),
            cond: Condvar::new(),
        });
        let credit = Arc::new(Credit::new(OUT_WINDOW));
        let (i, m) = (input.clone(), mailbox.clone());
        if let Err(e) = thread::Builder::new()
            .name("exec-stdin".into())
            .spawn(move || feed_stdin(stdin, &i, &m))
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        let pid = child.id();
        *lock(&self.child) = Some(child);
        let (c, slot, log, prefix) = (
            credit.clone(),
            self.child.clone(),
            self.log.clone(),
            self.prefix(),
        );
        if let Err(e) = thread::Builder::new()
            .name("exec-stdout".into())
            .spawn(move || {
                read_stdout(stdout, &c, &mailbox);
                await_exit(&slot, log.as_ref(), &prefix);
                let _ = mailbox.post(Bytes::from_static(&[TAG_EOF]));
            })
        {
            input.lock().closed = true;
            input.cond.notify_all();
            if let Some(mut child) = lock(&self.child).take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(e);
        }
        self.say(&format!("{}: started pid {pid}", self.prefix()));
        self.input = Some(input);
        self.credit = Some(credit);
        Ok(())
    }
}

/// The peer's address and port for the child's environment (`NETKIT_PEER_PORT`
/// is empty for Unix peers).
fn peer_env(peer: &PeerAddr) -> (String, String) {
    match peer {
        PeerAddr::Inet(a) => (a.ip().to_string(), a.port().to_string()),
        PeerAddr::Unix(_) => (peer.to_string(), String::new()),
    }
}

/// The writer thread: the peer's bytes to the child's stdin, until the peer's
/// end of file (stdin is closed), a write error, or the end of the connection.
fn feed_stdin(mut stdin: ChildStdin, input: &Input, mailbox: &Mailbox) {
    loop {
        let chunk = {
            let mut st = input.lock();
            loop {
                if st.closed {
                    return;
                }
                if let Some(c) = st.chunks.pop_front() {
                    st.bytes -= c.len();
                    if st.paused && st.bytes <= LOW_WATER {
                        st.paused = false;
                        let _ = mailbox.post(Bytes::from_static(&[TAG_WAKE]));
                    }
                    break c;
                }
                if st.eof {
                    return;
                }
                st = input.cond.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        if stdin.write_all(&chunk).is_err() {
            // The child stopped reading: what the peer sends now is dropped.
            let mut st = input.lock();
            st.closed = true;
            st.chunks.clear();
            st.bytes = 0;
            if st.paused {
                st.paused = false;
                let _ = mailbox.post(Bytes::from_static(&[TAG_WAKE]));
            }
            return;
        }
    }
}

/// The reader thread: the child's stdout to the connection's mailbox, a window's
/// worth at a time, until the child closes it or the connection ends.
fn read_stdout(mut stdout: ChildStdout, credit: &Credit, mailbox: &Mailbox) {
    loop {
        let Some(room) = credit.take() else { return };
        let mut buf = vec![0u8; room + 1];
        buf[0] = TAG_DATA;
        let n = loop {
            match stdout.read(&mut buf[1..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) => break n,
                Err(_) => break 0,
            }
        };
        if n == 0 {
            return;
        }
        credit.give(room - n);
        buf.truncate(n + 1);
        if mailbox.post(Bytes::from(buf)).is_err() {
            return;
        }
    }
}

/// Kills a child started by [`Exec`] and everything in its process group.
fn kill_group(child: &mut Child) {
    match libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // child leads (`process_group(0)`); it touches no memory.
        Ok(pid) if unsafe { libc::kill(-pid, libc::SIGKILL) } == 0 => {}
        _ => {
            let _ = child.kill();
        }
    }
}

/// Logs how a child ended.
fn log_end(log: Option<&Log>, prefix: &str, pid: u32, status: io::Result<ExitStatus>) {
    if let Some(log) = log {
        match status {
            Ok(s) => log(&format!("{prefix}: pid {pid} ended with {}", describe(s))),
            Err(e) => log(&format!("{prefix}: waiting for pid {pid}: {e}")),
        }
    }
}

/// Locks the child's slot (a panic elsewhere leaves only a handle behind: usable).
fn lock(slot: &Mutex<Option<Child>>) -> MutexGuard<'_, Option<Child>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// After the child closed its stdout: waits for it to exit, as the end of an
/// inetd child ends its connection, and reaps and logs it. Returns at once when
/// the connection's end took the child first.
fn await_exit(slot: &Mutex<Option<Child>>, log: Option<&Log>, prefix: &str) {
    loop {
        {
            let mut guard = lock(slot);
            let Some(child) = guard.as_mut() else { return };
            let status = match child.try_wait() {
                Ok(Some(s)) => Ok(s),
                Ok(None) => Err(None),
                Err(e) => Err(Some(e)),
            };
            match status {
                Err(None) => {}
                Ok(s) => {
                    let pid = child.id();
                    *guard = None;
                    drop(guard);
                    log_end(log, prefix, pid, Ok(s));
                    return;
                }
                Err(Some(e)) => {
                    let pid = child.id();
                    drop(guard);
                    log_end(log, prefix, pid, Err(e));
                    return;
                }
            }
        }
        thread::sleep(EXIT_POLL);
    }
}

impl Protocol for Exec {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        if let Err(e) = self.start(t) {
            self.say(&format!(
                "netkit: connection {} from {}: cannot run `{}`: {e}",
                self.conn, self.peer, self.cmd
            ));
            t.close();
        }
    }

    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        let Some(input) = &self.input else { return };
        let mut st = input.lock();
        if st.closed {
            return;
        }
        st.bytes += data.len();
        st.chunks.push_back(data.to_vec());
        if st.bytes > HIGH_WATER && !st.paused {
            st.paused = true;
            t.pause_reading();
        }
        input.cond.notify_all();
    }

    fn eof_received(&mut self, _t: &mut dyn Transport) {
        if let Some(input) = &self.input {
            input.lock().eof = true;
            input.cond.notify_all();
        }
    }

    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        match msg.first() {
            Some(&TAG_DATA) => {
                let data = msg.slice(1..);
                t.write(&data);
                if t.buffered() < HIGH_WATER {
                    if let Some(c) = &self.credit {
                        c.give(data.len());
                    }
                } else {
                    self.held += data.len();
                }
            }
            Some(&TAG_EOF) => t.close(),
            Some(&TAG_WAKE) => t.resume_reading(),
            _ => {}
        }
    }

    fn is_producer(&self) -> bool {
        self.held > 0
    }

    fn resume_producing(&mut self, _t: &mut dyn Transport) {
        if let Some(c) = &self.credit {
            c.give(std::mem::take(&mut self.held));
        }
    }

    fn connection_lost(&mut self, _reason: &CloseReason) {
        if let Some(input) = self.input.take() {
            input.lock().closed = true;
            input.cond.notify_all();
        }
        if let Some(c) = self.credit.take() {
            c.close();
        }
        let child = lock(&self.child).take();
        if let Some(mut child) = child {
            // Still running (or not yet reaped): it ends with its connection,
            // and is reaped before the server can exit.
            kill_group(&mut child);
            let status = child.wait();
            self.ended(child.id(), status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::FakeTransport;
    use std::time::Instant;

    fn local() -> PeerAddr {
        PeerAddr::Inet("127.0.0.1:9000".parse().unwrap())
    }

    /// An `Exec` for `cmd` whose log lines are collected.
    fn exec(cmd: &str) -> (Exec, FakeTransport, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let log: Log = Arc::new(move |s: &str| l.lock().unwrap().push(s.to_string()));
        let peer = PeerAddr::Inet("127.0.0.1:5000".parse().unwrap());
        let f = ExecFactory::new(cmd).with_log(log);
        let p = f.build(&ConnInfo {
            peer: peer.clone(),
            local: local(),
        });
        (p, FakeTransport::new(peer, local()), lines)
    }

    /// Delivers mailbox messages until the Protocol closes, within ten seconds.
    fn pump(p: &mut Exec, t: &mut FakeTransport) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !t.is_finished() {
            assert!(Instant::now() < deadline, "the child's output never ended");
            let mut msgs = Vec::new();
            t.mailbox_receiver().unwrap().drain(&mut msgs);
            if msgs.is_empty() {
                thread::sleep(Duration::from_millis(5));
            }
            for m in msgs {
                p.message_received(m, t);
            }
        }
    }

    #[test]
    fn child_filters_the_connection_and_is_reaped() {
        let (mut p, mut t, lines) =
            exec("tr a-z A-Z; echo \"$NETKIT_PEER_ADDR $NETKIT_PEER_PORT\"");
        p.connection_made(&mut t);
        p.data_received(b"hello ", &mut t);
        p.data_received(b"world\n", &mut t);
        p.eof_received(&mut t);
        pump(&mut p, &mut t);
        p.connection_lost(&CloseReason::Done);
        assert_eq!(t.outcome().text(), "HELLO WORLD\n127.0.0.1 5000\n");
        let lines = lines.lock().unwrap();
        assert!(lines[0].contains("started pid"), "{lines:?}");
        assert!(lines[1].ends_with("ended with exit status 0"), "{lines:?}");
    }

    #[test]
    fn connection_lost_kills_a_running_child() {
        let (mut p, mut t, lines) = exec("cat");
        p.connection_made(&mut t);
        p.connection_lost(&CloseReason::IdleTimeout);
        let lines = lines.lock().unwrap();
        assert!(lines[1].ends_with("killed by signal 9"), "{lines:?}");
    }
}
