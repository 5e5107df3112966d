//! Runs every example in `examples/` against its partner: the example client, the
//! seed's own Python client (copied into `tests/py/`), or a Rust client, so none
//! of them rots. Each server example prints `listening on ADDR` on stderr; it runs
//! on port 0 and is stopped with SIGTERM (and must exit 0).

use std::io::{BufRead, BufReader, Read};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(20);

/// The directory holding the built examples (`target/<profile>/examples`),
/// building them once if this test was built alone.
fn examples_dir() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    BUILD.call_once(|| {
        if !dir.join("unix_client").exists() {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "-p", "netkit", "--examples"]);
            if !cfg!(debug_assertions) {
                cmd.arg("--release");
            }
            assert!(cmd.status().unwrap().success(), "cannot build the examples");
        }
    });
    dir
}

fn example(name: &str) -> Command {
    Command::new(examples_dir().join(name))
}

/// A running server example, stopped by its PID on drop.
struct Running {
    child: Child,
    addr: String,
    stdout: Arc<Mutex<String>>,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = example(name)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.to_string());
                }
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let (mut out, sink) = (child.stdout.take().unwrap(), stdout.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let addr = match rx.recv_timeout(STEP) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} did not start");
            }
        };
        Running {
            child,
            addr,
            stdout,
        }
    }

    /// (host, port) of a TCP or UDP address.
    fn host_port(&self) -> (String, String) {
        let a = self.addr.trim_start_matches("udp://");
        let (h, p) = a.rsplit_once(':').unwrap();
        (h.to_string(), p.to_string())
    }

    /// Waits until the server printed `needle`.
    fn printed(&self, needle: &str) -> bool {
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            if self.stdout.lock().unwrap().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM; the example must exit 0.
    fn stop(mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // child, not yet waited for.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "exit {st}");
                return;
            }
            assert!(Instant::now() < deadline, "the example did not stop");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a client to completion (bounded); returns its stdout.
fn run(mut cmd: Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + STEP;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn client(name: &str, args: &[&str]) -> String {
    let mut c = example(name);
    c.args(args);
    run(c)
}

fn python(script: &str, args: &[&str]) -> String {
    let mut c = Command::new("python3");
    c.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/py")
            .join(script),
    )
    .args(args);
    run(c)
}

fn temp_sock(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nk-ex-{tag}-{}.sock", std::process::id()))
}

#[test]
fn small_server_with_small_client_and_the_seed_client() {
    let s = Running::start("small_server", &["127.0.0.1", "0"]);
    let (h, p) = s.host_port();
    assert_eq!(
        client("small_client", &[&h, &p]),
        "Thank you for connecting\n"
    );
    assert_eq!(
        python("small_client.py", &[&h, &p]),
        "Thank you for connecting\n"
    );
    assert!(s.printed("Got connection from 127.0.0.1:"));
    s.stop();
}

#[test]
fn threading_and_forking_servers_greet() {
    for name in ["threading_server", "forking_server"] {
        let s = Running::start(name, &["127.0.0.1", "0"]);
        let (h, p) = s.host_port();
        for _ in 0..3 {
            assert_eq!(
                client("small_client", &[&h, &p]),
                "Thank you for connecting\n",
                "{name}"
            );
        }
        assert!(s.printed("Got connection from 127.0.0.1:"), "{name}");
        s.stop();
    }
}

#[test]
fn thread_and_process_servers_say_hello_to_the_client_address() {
    for name in ["thread_server", "process_server"] {
        let s = Running::start(name, &["127.0.0.1", "0"]);
        let (h, p) = s.host_port();
        let out = python("small_client.py", &[&h, &p]);
        assert!(out.starts_with("Hello 127.0.0.1:"), "{name}: {out}");
        assert!(s.printed("Handling connection from 127.0.0.1:"), "{name}");
        s.stop();
    }
}

#[test]
fn socketserver_upper_with_both_clients_sequential_and_threading() {
    for flags in [&[][..], &["--threading"][..]] {
        let mut args = vec!["127.0.0.1", "0"];
        args.extend_from_slice(flags);
        let s = Running::start("socketserver_upper", &args);
        let (h, p) = s.host_port();
        let want = "Sent:     hello world\nReceived: HELLO WORLD\n";
        assert_eq!(
            client("socketserver_client", &[&h, &p, "hello", "world"]),
            want
        );
        assert_eq!(
            python("socketserver_client.py", &[&h, &p, "hello", "world"]),
            want
        );
        assert!(s.printed("wrote: \"hello world\""));
        s.stop();
    }
}

#[test]
fn echo_timeout_server_echoes_and_times_out_a_silent_client() {
    let s = Running::start("echo_timeout_server", &["127.0.0.1", "0", "1"]);
    let addr = s.addr.parse().unwrap();
    let c = netkit::net::connect(&addr, STEP).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.send_all(b"echo me").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    (&c).read_to_end(&mut back).unwrap();
    assert_eq!(back, b"echo me");
    let silent = netkit::net::connect(&addr, STEP).unwrap();
    silent.set_read_timeout(Some(STEP)).unwrap();
    let mut rest = Vec::new();
    (&silent).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(s.printed("Connection from: 127.0.0.1:"));
    assert!(s.printed("Connection timed out"));
    s.stop();
}

#[test]
fn select_and_poll_loggers_print_what_clients_send() {
    for name in ["select_logger", "poll_logger"] {
        let s = Running::start(name, &["127.0.0.1", "0"]);
        let addr = s.addr.parse().unwrap();
        let clients: Vec<_> = (0..3)
            .map(|_| netkit::net::connect(&addr, STEP).unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.send_all(format!("line from {name} {i}\n").as_bytes())
                .unwrap();
        }
        for i in 0..3 {
            assert!(s.printed(&format!("line from {name} {i}\n")), "{name}");
        }
        drop(clients);
        assert!(s.printed("Got connection from ('127.0.0.1', "), "{name}");
        assert!(s.printed(") disconnected"), "{name}");
        s.stop();
    }
}

#[test]
fn udp_server_with_udp_client_and_the_seed_client() {
    let s = Running::start("udp_server", &["127.0.0.1", "0"]);
    let (h, p) = s.host_port();
    let want = format!("Received b'Hi!' from server at ('127.0.0.1', {p})\n");
    assert_eq!(client("udp_client", &[&h, &p]), want);
    assert_eq!(python("udp_client.py", &[&h, &p]), want);
    assert!(s.printed("saying b'Hello World'"));
    s.stop();
}

#[test]
fn unix_server_with_unix_client_and_the_seed_client() {
    let path = temp_sock("unix");
    let s = Running::start("unix_server", &[path.to_str().unwrap()]);
    let p = path.to_str().unwrap();
    assert_eq!(
        client("unix_client", &[p]),
        "Received from server: b'Hello '\n"
    );
    assert_eq!(
        python("unix_client.py", &[p]),
        "Received from server: b'Hello '\n"
    );
    s.stop();
    assert!(!path.exists(), "socket file left behind");
}
