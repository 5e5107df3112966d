//! The `twisted_logger` example (the seed's Twisted `SimpleLogger`) run as a
//! process: connect, send lines, and check what it prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The example's binary, built next to this test (`cargo test` builds examples;
/// when only this test was built, build the example now).
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join("twisted_logger");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "netkit", "--example", "twisted_logger"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn twisted_logger_prints_connections_and_lines() {
    let mut child = Killed(
        Command::new(example())
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let mut c = TcpStream::connect(&addr).unwrap();
    let port = c.local_addr().unwrap().port();
    c.write_all(b"first line\nsecond ").unwrap();
    c.write_all(b"line\r\n\xffbad utf8\n").unwrap();
    c.write_all(b"unterminated").unwrap();
    drop(c);

    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let want = [
        format!("Got connection from ('127.0.0.1', {port})"),
        "first line".to_string(),
        "second line\r".to_string(),
        "\u{fffd}bad utf8".to_string(),
        format!("('127.0.0.1', {port}) disconnected"),
    ];
    for w in want {
        let mut got = String::new();
        out.read_line(&mut got).unwrap();
        assert_eq!(got.trim_end_matches('\n'), w);
    }

    // SIGTERM stops it gracefully: exit status 0.
    let pid = child.0.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
}
