//! `--dump hex|text [--dump-file F]` on `connect`, `listen`, `relay` and `serve`: every
//! chunk with a timestamp, connection id and direction; hex in `hexdump -C`'s
//! layout. The dumps are parsed back and must give exactly the bytes that flowed.

mod util;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;

use util::{run_bounded, Served, TempDir, STEP};

/// The bytes of each (connection, direction) in a hex dump, checking every row's
/// layout and ASCII column on the way.
fn parse_hex(dump: &str) -> BTreeMap<(u64, String), Vec<u8>> {
    let mut flows: BTreeMap<(u64, String), Vec<u8>> = BTreeMap::new();
    let mut current: Option<((u64, String), usize)> = None;
    for line in dump.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        if words.len() == 6 && words[1] == "conn" && words[5] == "bytes" {
            assert!(words[0].ends_with('Z') && words[0].contains('T'), "{line}");
            let key = (words[2].parse().unwrap(), words[3].to_string());
            current = Some((key, words[4].parse().unwrap()));
            continue;
        }
        if words.len() >= 3 && words[1] == "conn" {
            continue; // a note: accepted, connected, closed
        }
        let Some((key, len)) = &current else {
            panic!("row before a header: {line:?}")
        };
        if line.len() == 8 {
            // The closing offset: the chunk's length.
            assert_eq!(usize::from_str_radix(line, 16).unwrap(), *len, "{line}");
            continue;
        }
        let (hex, ascii) = line[10..].split_once(" |").unwrap();
        assert_eq!(line.len(), 10 + 50 + ascii.len() + 1, "{line:?}");
        let bytes: Vec<u8> = hex
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        let shown: String = bytes
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        assert_eq!(format!("{shown}|"), ascii, "{line:?}");
        flows.entry(key.clone()).or_default().extend(bytes);
    }
    flows
}

#[test]
fn connect_dumps_hex_to_a_file() {
    let dir = TempDir::new("dump-connect");
    let file = dir.path("dump.txt");
    let served = Served::start(&["upper", "--listen", "127.0.0.1:0"]);
    let mut cmd = Command::new(util::netkit());
    cmd.arg("connect")
        .arg(served.addr("tcp"))
        .args(["--dump", "hex", "--dump-file"])
        .arg(&file);
    let input = b"hello, dump\nbinary \x00\x01\x7f\xff and more than sixteen bytes\n";
    let out = run_bounded(cmd, input, STEP);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "dump went to stderr");
    let dump = std::fs::read_to_string(&file).unwrap();
    let flows = parse_hex(&dump);
    assert_eq!(flows[&(1, ">".to_string())], input);
    assert_eq!(flows[&(1, "<".to_string())], out.stdout);
    assert!(dump.contains("conn 1 connected to"), "{dump}");
    assert!(
        dump.contains("00000000  68 65 6c 6c 6f 2c 20 64  75 6d 70 0a"),
        "{dump}"
    );
}

#[test]
fn listen_dumps_text_to_stderr() {
    let dir = TempDir::new("dump-listen");
    let input = dir.path("in");
    std::fs::write(&input, b"reply\r\n").unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" listen 127.0.0.1:0 --dump text < \"$NK_STDIN\"")
        .arg(util::netkit())
        .env("NK_STDIN", &input);
    let mut served = Served::spawn(cmd, 1);
    let mut c = TcpStream::connect(served.addr("tcp")).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"tab\there\x01\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"reply\r\n");
    assert!(served.wait_exit(STEP).success());
    assert!(served.wait_log("closed", STEP));
    let log = served.log();
    assert!(log.contains("conn 1 accepted from 127.0.0.1:"), "{log}");
    assert!(
        log.contains("conn 1 < 10 bytes\ntab\\there\\x01\\n\n"),
        "{log}"
    );
    assert!(log.contains("conn 1 > 7 bytes\nreply\\r\\n\n"), "{log}");
}

#[test]
fn relay_dumps_each_connection_with_its_own_id() {
    let echo = Served::start(&["upper", "--listen", "127.0.0.1:0"]);
    let mut cmd = Command::new(util::netkit());
    cmd.arg("relay")
        .arg("127.0.0.1:0")
        .arg(echo.addr("tcp"))
        .args(["--dump", "hex"]);
    let relay = Served::spawn(cmd, 1);
    for word in ["first\n", "second\n"] {
        let mut c = TcpStream::connect(relay.addr("tcp")).unwrap();
        c.set_read_timeout(Some(STEP)).unwrap();
        c.write_all(word.as_bytes()).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, word.to_uppercase());
    }
    assert!(relay.wait_log("conn 2 closed", STEP), "{}", relay.log());
    let log = relay.log();
    let dump: String = log
        .lines()
        .filter(|l| !l.starts_with("listening on"))
        .map(|l| format!("{l}\n"))
        .collect();
    let flows = parse_hex(&dump);
    assert_eq!(flows[&(1, ">".to_string())], b"first\n");
    assert_eq!(flows[&(1, "<".to_string())], b"FIRST\n");
    assert_eq!(flows[&(2, ">".to_string())], b"second\n");
    assert_eq!(flows[&(2, "<".to_string())], b"SECOND\n");
}

#[test]
fn serve_dumps_each_connection_in_every_mode_and_plaintext_under_tls() {
    let dir = TempDir::new("dump-serve");
    for (i, mode) in util::MODES.iter().enumerate() {
        let file = dir.path(&format!("serve-{mode}.dump"));
        let mut args = vec![
            "upper",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--dump",
            "hex",
            "--dump-file",
            file.to_str().unwrap(),
        ];
        if i == 0 || *mode == "reactor" {
            args.push("--tls-self-signed");
        }
        let tls = args.contains(&"--tls-self-signed");
        let mut served = Served::start(&args);
        let port = served.host_port().1;
        for n in 0..2 {
            let line = format!("client {n} of {mode}\n");
            let out = if tls {
                let mut cmd = Command::new(util::netkit());
                cmd.args(["connect", &format!("tls://localhost:{port}"), "--insecure"]);
                run_bounded(cmd, line.as_bytes(), STEP).stdout
            } else {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(STEP)).unwrap();
                c.write_all(line.as_bytes()).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut got = Vec::new();
                c.read_to_end(&mut got).unwrap();
                got
            };
            assert_eq!(out, line.to_uppercase().as_bytes(), "{mode}");
        }
        served.signal(libc::SIGINT);
        assert!(served.wait_exit(STEP).success(), "{}", served.log());
        let dump = std::fs::read_to_string(&file).unwrap();
        if *mode == "fork" {
            // Each child numbers its own connections: both are connection 1.
            let flows = parse_hex(&dump);
            let got = String::from_utf8(flows[&(1, "<".to_string())].clone()).unwrap();
            assert_eq!(got, format!("client 0 of {mode}\nclient 1 of {mode}\n"));
            continue;
        }
        let flows = parse_hex(&dump);
        for n in 0..2u64 {
            let line = format!("client {n} of {mode}\n");
            assert_eq!(flows[&(n + 1, "<".to_string())], line.as_bytes(), "{mode}");
            let upper = line.to_uppercase();
            assert_eq!(flows[&(n + 1, ">".to_string())], upper.as_bytes(), "{mode}");
            assert!(dump.contains(&format!("conn {} accepted from 127.0.0.1:", n + 1)));
            assert!(dump.contains(&format!("conn {} closed", n + 1)), "{dump}");
        }
    }
}
