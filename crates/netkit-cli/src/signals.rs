//! SIGINT and SIGTERM for the commands that accept connections and run their own
//! loop (`serve` in reactor mode, `listen`, `relay`).
//!
//! The handlers are installed with [`install`] before the first `listening on`
//! line, so a signal sent as soon as a client sees it is never lost; [`watch`]
//! then starts a thread that waits for them. The first signal runs the command's
//! stop routine (a graceful drain, or the end of the process after cleaning up);
//! a second one during the drain aborts it, as nginx and most servers do: the
//! line `netkit: second signal (SIG): drain aborted` goes to stderr, the Unix
//! socket files the command bound are removed, and the process exits 1 at once.
//! The blocking server modes get the same behaviour from
//! `netkit::server::ServerBuilder::handle_signals`. Out of scope: what stopping
//! means for each command (the callers' routines).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::thread::JoinHandle;

use anyhow::Context;
use netkit::net::Address;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Installs the SIGINT and SIGTERM handlers; signals from now on are queued
/// for [`watch`].
pub fn install() -> anyhow::Result<Signals> {
    Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")
}

/// The signal-watching thread; dropping it stops the thread (without running
/// anything).
#[derive(Debug)]
pub struct Watch {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the thread: the first signal runs `stop`; a second one aborts (see
/// the module documentation), removing `files` first.
pub fn watch(
    mut signals: Signals,
    stop: impl FnOnce() + Send + 'static,
    files: SocketFiles,
) -> anyhow::Result<Watch> {
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("netkit-signals".into())
        .spawn(move || {
            let mut pending = signals.forever();
            let Some(first) = pending.next() else { return };
            stop();
            // Logged on a thread of its own: a stderr nobody reads (a full
            // pipe) must not keep this one from seeing a second signal.
            let _ = std::thread::Builder::new()
                .name("netkit-signal-log".into())
                .spawn(move || tracing::info!("signal {}: stopping gracefully", name(first)));
            if let Some(second) = pending.next() {
                abort(second, &files);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(Watch {
        handle,
        thread: Some(thread),
    })
}

/// Ends the process now with exit status 1, after saying so and removing the
/// socket files.
fn abort(sig: i32, files: &SocketFiles) -> ! {
    files.remove();
    crate::log::line_if_ready(format_args!(
        "netkit: second signal ({}): drain aborted",
        name(sig)
    ));
    std::process::exit(1)
}

/// The socket files of the Unix addresses a command bound, each with the
/// identity (device, inode) it had when recorded, so that a file a newer server
/// put at the same path is never removed.
#[derive(Debug, Clone, Default)]
pub struct SocketFiles(Vec<(PathBuf, (u64, u64))>);

impl SocketFiles {
    /// Records the files of the Unix addresses among `addrs` (call it right
    /// after binding them).
    pub fn of<'a>(addrs: impl IntoIterator<Item = &'a Address>) -> SocketFiles {
        let files = addrs
            .into_iter()
            .filter_map(|a| match a {
                Address::Unix(p) | Address::UnixDgram(p) => {
                    let m = std::fs::symlink_metadata(p).ok()?;
                    Some((p.clone(), (m.dev(), m.ino())))
                }
                _ => None,
            })
            .collect();
        SocketFiles(files)
    }

    /// Removes each file that is still the one recorded.
    pub fn remove(&self) {
        for (path, id) in &self.0 {
            if let Ok(m) = std::fs::symlink_metadata(path) {
                if (m.dev(), m.ino()) == *id {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// The signal's usual name.
fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// For commands with nothing to drain (`listen`, relays of one session per
/// thread): on SIGINT/SIGTERM, removes `files` and exits 0 (a session in
/// progress ends with the process).
pub fn exit_on_signal(signals: Signals, files: SocketFiles) -> anyhow::Result<Watch> {
    watch(
        signals,
        move || {
            files.remove();
            std::process::exit(0)
        },
        SocketFiles::default(),
    )
}
