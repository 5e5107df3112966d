//! `netkit listen --exec CMD`: a program per connection, inetd style. The socket itself becomes
//! the child's stdin and stdout (no copying through netkit); stderr is inherited.
//! The child gets `NETKIT_PEER_ADDR` and `NETKIT_PEER_PORT` (empty for Unix
//! peers) and is reaped by a thread that logs how it exited.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};

use crate::net::{PeerAddr, StdStream, Stream};

/// Starts `sh -c CMD` with `stream` as its stdin and stdout.
pub fn spawn(cmd: &str, stream: Stream, peer: &PeerAddr) -> io::Result<Child> {
    let fd: OwnedFd = match stream.into_std() {
        StdStream::Tcp(s) => s.into(),
        StdStream::Unix(s) => s.into(),
    };
    let out = fd.try_clone()?;
    let (addr, port) = match peer {
        PeerAddr::Inet(a) => (a.ip().to_string(), a.port().to_string()),
        PeerAddr::Unix(_) => (peer.to_string(), String::new()),
    };
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
