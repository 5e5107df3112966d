//! `netkit listen`: stdin/stdout joined to an accepted connection over TCP and
//! Unix sockets, `--keep-open` one connection after another, `--exec` per
//! connection (also on `serve`), and clear errors.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use util::{run_bounded, Served, TempDir, STEP};

/// Starts `netkit listen ARGS...` with stdin from a file holding `stdin`.
fn listen(args: &[&str], stdin: &[u8], dir: &TempDir) -> Served {
    let input = dir.path("stdin");
    std::fs::write(&input, stdin).unwrap();
    // `exec` keeps the PID, so the harness still stops the right process.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" listen \"$@\" < \"$NK_STDIN\"")
        .arg(util::netkit())
        .args(args)
        .env("NK_STDIN", input);
    Served::spawn(cmd, 1)
}

fn wait_stdout(s: &Served, want: &str) {
    let deadline = Instant::now() + STEP;
    while !s.stdout.lock().unwrap().contains(want) {
        assert!(
            Instant::now() < deadline,
            "stdout {:?} lacks {want:?}; stderr: {}",
            s.stdout.lock().unwrap(),
            s.log()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tcp_connection_joins_stdin_and_stdout() {
    let dir = TempDir::new("listen-tcp");
    let mut served = listen(&["127.0.0.1:0"], b"greetings\n", &dir);
    let mut c = TcpStream::connect(served.addr("tcp")).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"hello listener\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"greetings\n");
    assert!(served.wait_exit(STEP).success());
    wait_stdout(&served, "hello listener\n");
}

#[test]
fn unix_socket_and_its_file_is_removed() {
    let dir = TempDir::new("listen-unix");
    let path = dir.path("l.sock");
    let addr = format!("unix://{}", path.display());
    let mut served = listen(&[&addr], b"over unix\n", &dir);
    assert_eq!(served.addrs, vec![addr.clone()]);
    let mut c = UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"from client").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"over unix\n");
    assert!(served.wait_exit(STEP).success());
    wait_stdout(&served, "from client");
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn keep_open_serves_connections_one_after_another() {
    let dir = TempDir::new("listen-k");
    let served = listen(&["127.0.0.1:0", "--keep-open", "--recv-only"], b"", &dir);
    for i in 0..3 {
        let mut c = TcpStream::connect(served.addr("tcp")).unwrap();
        c.write_all(format!("client {i}\n").as_bytes()).unwrap();
        drop(c);
        wait_stdout(&served, &format!("client {i}\n"));
    }
    assert_eq!(
        *served.stdout.lock().unwrap(),
        "client 0\nclient 1\nclient 2\n"
    );
}

#[test]
fn exec_runs_a_program_per_connection_with_the_peer_in_its_environment() {
    let dir = TempDir::new("listen-exec");
    let mut served = listen(
        &[
            "127.0.0.1:0",
            "--exec",
            "echo \"$NETKIT_PEER_ADDR $NETKIT_PEER_PORT\"; tr a-z A-Z; exit 3",
        ],
        b"",
        &dir,
    );
    let mut c = TcpStream::connect(served.addr("tcp")).unwrap();
    let port = c.local_addr().unwrap().port();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"shout this\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, format!("127.0.0.1 {port}\nSHOUT THIS\n"));
    assert!(served.wait_exit(STEP).success());
    assert!(
        served.log().contains("ended with exit status 3"),
        "{}",
        served.log()
    );
}

#[test]
fn exec_with_keep_open_runs_children_concurrently() {
    let dir = TempDir::new("listen-exec-k");
    let served = listen(&["127.0.0.1:0", "-k", "--exec", "cat"], b"", &dir);
    let addr = served.addr("tcp");
    // The first client stays connected while the second is served.
    let mut first = TcpStream::connect(&addr).unwrap();
    first.set_read_timeout(Some(STEP)).unwrap();
    first.write_all(b"one").unwrap();
    let mut buf = [0u8; 3];
    first.read_exact(&mut buf).unwrap();
    let mut second = TcpStream::connect(&addr).unwrap();
    second.set_read_timeout(Some(STEP)).unwrap();
    second.write_all(b"two").unwrap();
    second.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    second.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"two");
    first.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).unwrap();
    assert!(served.wait_log("connection 2 from", STEP));
    assert!(served.wait_log("ended with exit status 0", STEP));
}

#[test]
fn serve_exec_runs_a_program_per_connection() {
    let dir = TempDir::new("serve-exec");
    let unix = format!("unix://{}", dir.path("e.sock").display());
    let served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &unix,
        "--exec",
        "printf 'peer=%s\\n' \"$NETKIT_PEER_ADDR\"; wc -c",
    ]);
    let mut c = TcpStream::connect(served.addr("tcp")).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"12345").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(
        got.split_whitespace().collect::<Vec<_>>(),
        ["peer=127.0.0.1", "5"]
    );
    let mut u = UnixStream::connect(dir.path("e.sock")).unwrap();
    u.set_read_timeout(Some(STEP)).unwrap();
    u.write_all(b"abc").unwrap();
    u.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    u.read_to_string(&mut got).unwrap();
    assert!(got.ends_with("3\n"), "{got:?}");
    assert!(served.wait_log("ended with exit status 0", STEP));
}

#[test]
fn errors_are_clear() {
    let run = |args: &[&str]| {
        let mut cmd = Command::new(util::netkit());
        cmd.arg("listen").args(args);
        run_bounded(cmd, b"", STEP)
    };
    let out = run(&["udp://127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stream address"));
    let out = run(&["nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid address"));
    let out = run(&["127.0.0.1:0", "--eof", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wait:DUR"));
    let out = run(&["127.0.0.1:0", "--send-only", "--recv-only"]);
    assert_eq!(out.status.code(), Some(2));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&[&addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

#[test]
fn keep_open_hands_stdin_on_from_one_connection_to_the_next() {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = Command::new(util::netkit())
        .args([
            "listen",
            "127.0.0.1:0",
            "-k",
            "--eof",
            "close",
            "--dump",
            "text",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let mut stdin = child.stdin.take().unwrap();
    for (conn, word) in [(1, "one\n"), (2, "two\n")] {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(STEP)).unwrap();
        stdin.write_all(word.as_bytes()).unwrap();
        let mut got = vec![0u8; word.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, word.as_bytes());
        // The client leaves; under --eof close its end ends the session. Stdin
        // written after that belongs to the next connection.
        drop(c);
        let closed = format!("conn {conn} closed");
        assert!(lines.by_ref().any(|l| l.unwrap().ends_with(&closed)));
    }
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    drop(stdin);
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
    let _ = child.kill();
    let _ = child.wait();
}
