//! `netkit connect`: stdin to the socket and the socket to stdout over every kind
//! of address, half-close on stdin's end, datagram replies, and clear errors.

mod util;

use std::io::{Read, Write};
use std::process::Command;
use std::thread;
use std::time::Duration;

use netkit::net::{Address, ListenOptions, Listener};

use util::{run_bounded, Served, TempDir, STEP};

fn connect(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut cmd = Command::new(util::netkit());
    cmd.arg("connect").args(args);
    run_bounded(cmd, stdin, STEP)
}

#[test]
fn streams_and_datagrams_through_netkit_serve() {
    let dir = TempDir::new("connect");
    let unix = format!("unix://{}", dir.path("s.sock").display());
    let udgram = format!("unix-dgram://{}", dir.path("d.sock").display());
    let served = Served::start(&[
        "upper",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &unix,
        "--listen",
        "udp://127.0.0.1:0",
        "--listen",
        &udgram,
    ]);
    for kind in ["tcp", "unix"] {
        let out = connect(&[&served.addr(kind)], b"hello\nworld\n");
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"HELLO\nWORLD\n", "{kind}");
    }
    for kind in ["udp", "unix-dgram"] {
        let out = connect(&[&served.addr(kind), "--wait", "500ms"], b"one\ntwo\n");
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // Datagrams may be reordered or (rarely) dropped; each reply is one line.
        for line in text.lines() {
            assert!(line == "ONE" || line == "TWO", "{kind}: {text:?}");
        }
        assert!(!text.is_empty(), "{kind}: no reply");
    }
}

#[test]
fn a_mebibyte_goes_through_echo_and_comes_back_whole() {
    let served = Served::start(&["echo", "--listen", "127.0.0.1:0"]);
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    let out = connect(&[&served.addr("tcp")], &data);
    assert!(out.status.success());
    assert!(out.stdout == data, "got {} bytes back", out.stdout.len());
}

#[test]
fn stdin_end_half_closes_and_the_reply_is_still_read() {
    // A server that answers only after the client's end-of-file.
    let l = Listener::bind(
        &"127.0.0.1:0".parse::<Address>().unwrap(),
        &ListenOptions::default(),
    )
    .unwrap();
    let addr = l.local_address().to_string();
    let t = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        thread::sleep(Duration::from_millis(100));
        s.write_all(format!("got {} bytes", got.len()).as_bytes())
            .unwrap();
    });
    let out = connect(&[&addr], &[b'x'; 12345]);
    t.join().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got 12345 bytes");
}

#[test]
fn errors_are_clear() {
    // Nothing listens on a port we bound and closed.
    let l = Listener::bind(
        &"127.0.0.1:0".parse::<Address>().unwrap(),
        &ListenOptions::default(),
    )
    .unwrap();
    let addr = l.local_address().to_string();
    drop(l);
    let out = connect(&[&addr, "--timeout", "2s"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));

    let out = connect(&["not an address"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid address"));

    let out = connect(&["127.0.0.1:1", "--timeout", "soon"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("500ms"));
}
