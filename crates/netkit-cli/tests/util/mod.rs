//! Shared helpers for the `netkit serve` / `netkit connect` tests: start a server
//! process on port 0, learn its addresses from its `listening on` lines, run
//! Python clients, all bounded in time.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The modes every test runs in.
pub const MODES: &[&str] = &["sequential", "threads", "pool", "fork", "reactor"];

/// Modes that serve many connections at once.
pub const CONCURRENT_MODES: &[&str] = &["threads", "pool", "fork", "reactor"];

/// How long any single step may take before a test fails.
pub const STEP: Duration = Duration::from_secs(20);

/// The `netkit` binary under test.
pub fn netkit() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netkit"))
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("nk-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `netkit serve`, killed (by its PID) on drop.
pub struct Served {
    pub child: Child,
    pub addrs: Vec<String>,
    pub stderr: Arc<Mutex<String>>,
    pub stdout: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `netkit serve ARGS...` and waits for one `listening on` line per
    /// `--listen` (at least one).
    pub fn start(args: &[&str]) -> Served {
        let want = args.iter().filter(|a| **a == "--listen").count().max(1);
        let mut cmd = Command::new(netkit());
        cmd.arg("serve").args(args);
        Served::spawn(cmd, want)
    }

    /// Starts a server command and waits for `want` `listening on` lines.
    pub fn spawn(mut cmd: Command, want: usize) -> Served {
        let mut child = cmd
            .env("NETKIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err_pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.to_string());
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut out_pipe = child.stdout.take().unwrap();
        let out = stdout.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut addrs = Vec::new();
        let deadline = Instant::now() + STEP;
        while addrs.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(a) => addrs.push(a),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{cmd:?} did not start: {}", stderr.lock().unwrap());
                }
            }
        }
        Served {
            child,
            addrs,
            stderr,
            stdout,
        }
    }

    /// The first address of a kind: "tcp", "udp", "unix", "unix-dgram".
    pub fn addr(&self, kind: &str) -> String {
        self.addrs
            .iter()
            .find(|a| match kind {
                "tcp" => !a.contains("://"),
                _ => a.starts_with(&format!("{kind}://")),
            })
            .unwrap_or_else(|| panic!("no {kind} address in {:?}", self.addrs))
            .clone()
    }

    /// The TCP address as (host, port).
    pub fn host_port(&self) -> (String, u16) {
        let a = self.addr("tcp");
        let (h, p) = a.rsplit_once(':').unwrap();
        (h.trim_matches(['[', ']']).to_string(), p.parse().unwrap())
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the server process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child,
        // not yet waited for.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("server did not exit; stderr:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the server's stderr contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// What each open descriptor of the server process points to.
    pub fn fd_list(&self) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .flatten()
            .map(|e| {
                let target = std::fs::read_link(e.path()).unwrap_or_default();
                format!("{}->{}", e.file_name().to_string_lossy(), target.display())
            })
            .collect()
    }

    /// Open file descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The CLI tests' own Python scripts.
pub fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py")
}

/// The seeds' Python clients, kept once in the library's tests and shared.
pub fn seed_py_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../netkit/tests/py")).to_path_buf()
}

/// Where `script` lives: the CLI's own `tests/py/`, else the shared seed clients.
pub fn py_script(script: &str) -> PathBuf {
    let own = py_dir().join(script);
    if own.exists() {
        own
    } else {
        seed_py_dir().join(script)
    }
}

/// Runs `python3 SCRIPT ARGS...` (found by [`py_script`]), failing the test on a
/// non-zero exit or after `limit`.
pub fn python(script: &str, args: &[&str], limit: Duration) -> Output {
    python_stdin(script, args, b"", limit)
}

/// Like [`python`], with bytes for its stdin.
pub fn python_stdin(script: &str, args: &[&str], stdin: &[u8], limit: Duration) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg(py_script(script)).args(args);
    let out = run_bounded(cmd, stdin, limit);
    assert!(
        out.status.success(),
        "python3 {script} {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command with `stdin`, killing it after `limit`.
pub fn run_bounded(mut cmd: Command, stdin: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let collect = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = collect(Box::new(child.stdout.take().unwrap()));
    let err = collect(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} took longer than {limit:?}; stderr: {}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `netkit serve ARGS` with `listener` as descriptor 3 and `LISTEN_FDS=1`,
/// `LISTEN_PID` its own pid (set by the shell that execs it), as systemd's
/// socket activation passes it; waits for `want` `listening on` lines.
pub fn activated(listener: &std::net::TcpListener, args: &[&str], want: usize) -> Served {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" serve \"$@\"")
        .arg(netkit())
        .args(args);
    // SAFETY: between fork and exec only async-signal-safe calls: dup2 and
    // fcntl on descriptors this process owns (the listener stays open in the
    // parent for the whole call).
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto itself keeps close-on-exec: clear it.
            let flags = libc::fcntl(3, libc::F_GETFD);
            if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Served::spawn(cmd, want)
}
