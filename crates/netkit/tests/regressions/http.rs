//! Regressions in http.

#[path = "../http_util/mod.rs"]
mod http_util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_util::{serve_with, Runner};
use netkit::http::{AccessLog, AccessRecord, HttpOptions, StaticFiles};
use netkit::protocol::testing::{Outcome, Script};
use netkit::protocol::{ConnInfo, Factory, PeerAddr};
use netkit::server::Mode;

type Log = Arc<Mutex<Vec<AccessRecord>>>;

/// A service on `root` whose access log lines are kept.
fn files(root: &Path, mut opts: HttpOptions) -> (StaticFiles, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    opts.access_log = AccessLog::to_fn(move |r| sink.lock().unwrap().push(r.clone()));
    (StaticFiles::new(root, opts).unwrap(), log)
}

fn run(files: &StaticFiles, script: Script) -> Outcome {
    let info = ConnInfo {
        peer: PeerAddr::Inet(([127, 0, 0, 1], 50000).into()),
        local: PeerAddr::Inet(([127, 0, 0, 1], 8000).into()),
    };
    script.run(files.build(&info))
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = text.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn a_double_slash_directory_redirect_stays_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let (files, _) = files(dir.path(), HttpOptions::default());
    for (target, want) in [
        ("//sub", "/sub/"),
        ("//sub?q=1", "/sub/?q=1"),
        ("/.//sub", "/sub/"),
        ("http://h//sub", "/sub/"),
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        let out = run(&files, Script::new().data(req.as_bytes())).text();
        assert!(out.starts_with("HTTP/1.1 301 "), "{target}: {out}");
        assert_eq!(header(&out, "location"), Some(want), "{target}");
    }
}

#[test]
fn an_http11_request_without_host_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let (files, log) = files(dir.path(), HttpOptions::default());
    for req in [
        &b"GET /a.txt HTTP/1.1\r\n\r\n"[..],
        b"GET /a.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /a.txt HTTP/1.1\r\nHost: a b\r\n\r\n",
    ] {
        let out = run(&files, Script::new().data(req));
        assert!(
            out.text().starts_with("HTTP/1.1 400 "),
            "{}",
            String::from_utf8_lossy(req)
        );
        assert!(out.closed);
    }
    // With one Host, and for HTTP/1.0 without one, the file is served.
    for req in [
        &b"GET /a.txt HTTP/1.1\r\nHost: localhost:8000\r\n\r\n"[..],
        b"GET /a.txt HTTP/1.0\r\n\r\n",
    ] {
        let out = run(&files, Script::new().data(req));
        assert!(out.text().starts_with("HTTP/1.1 200 "), "{}", out.text());
    }
    let statuses: Vec<u16> = log.lock().unwrap().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 400, 400, 200, 200]);
}

#[test]
fn a_huge_listing_is_written_in_bounded_steps() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..N {
        std::fs::write(big.join(format!("f{i:05}")), "").unwrap();
    }
    let (files, log) = files(dir.path(), HttpOptions::default());
    // The request alone writes the head and at most one step of the page.
    let out = run(&files, Script::new().data(b"GET /big/ HTTP/1.0\r\n\r\n"));
    assert!(out.text().starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        out.written.len() < 64 * 1024,
        "{} bytes written at once",
        out.written.len()
    );
    // Each turn of the runner (a timer while names are read, then a produce
    // call) adds a bounded piece, until the page is complete.
    let mut script = Script::new().data(b"GET /big/ HTTP/1.0\r\n\r\n");
    for _ in 0..2_000 {
        script = script.fire_timers().produce(1);
    }
    let out = run(&files, script);
    assert!(out.writes.iter().all(|w| w.len() < 64 * 1024));
    let page = out.text();
    assert!(page.ends_with("</html>\n"), "the page is complete");
    assert!(page.contains("More than 10,000 entries: listed in directory order."));
    assert_eq!(page.matches("<tr><td><a href=\"f").count(), N);
    assert!(out.closed);
    let log = log.lock().unwrap();
    let body = page.split_once("\r\n\r\n").unwrap().1.len() as u64;
    assert_eq!(log.last().unwrap().bytes, body);
}

#[test]
fn the_listing_shows_times_sizes_and_a_parent_link_and_hides_what_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    let sub = root.join("sub");
    std::fs::create_dir_all(sub.join("inner")).unwrap();
    std::fs::write(sub.join("big.bin"), vec![0u8; 3 * 1024 * 1024 + 400 * 1024]).unwrap();
    std::fs::write(sub.join(".secret"), "s").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "o").unwrap();
    symlink(dir.path().join("outside.txt"), sub.join("out-link")).unwrap();
    symlink(sub.join("nowhere"), sub.join("broken-link")).unwrap();
    symlink(sub.join("big.bin"), sub.join("in-link")).unwrap();
    let (hidden, _) = files(&root, HttpOptions::default());
    let page = run(&hidden, Script::new().data(b"GET /sub/ HTTP/1.0\r\n\r\n")).text();
    assert!(page.contains("<a href=\"../\">../</a>"), "{page}");
    assert!(page.contains("<a href=\"inner/\">inner/</a>"), "{page}");
    assert!(
        page.contains("<a href=\"big.bin\">big.bin</a></td><td class=\"m\">20"),
        "a modification time: {page}"
    );
    assert!(
        page.contains("title=\"3555328 bytes\">3.4 MiB</td>"),
        "{page}"
    );
    assert!(page.contains("<a href=\"in-link\">in-link@</a>"), "{page}");
    for absent in [".secret", "out-link", "broken-link", "outside"] {
        assert!(!page.contains(absent), "{absent} listed: {page}");
    }
    // Fetching what is not listed: the escaping link is refused.
    let out = run(
        &hidden,
        Script::new().data(b"GET /sub/out-link HTTP/1.0\r\n\r\n"),
    );
    assert!(out.text().starts_with("HTTP/1.1 403 "));
    // show_hidden lists dotfiles, and still not the escaping link.
    let opts = HttpOptions {
        show_hidden: true,
        ..HttpOptions::default()
    };
    let (shown, _) = files(&root, opts);
    let page = run(&shown, Script::new().data(b"GET /sub/ HTTP/1.0\r\n\r\n")).text();
    assert!(page.contains("<a href=\".secret\">.secret</a>"), "{page}");
    assert!(!page.contains("out-link"), "{page}");
}

#[test]
fn a_control_character_in_the_request_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let (files, log) = files(dir.path(), HttpOptions::default());
    let unix = PeerAddr::Unix(Some(
        "/tmp/c\n1.2.3.4 - - [x] \"GET /forged HTTP/1.1\" 200 1 0.1ms".into(),
    ));
    for req in [
        &b"GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /a%0a1.2.3.4%20-%20-%20x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\x1b[2J\x07 HTTP/1.0\r\n\r\n",
    ] {
        let out = Script::new()
            .peer(unix.clone())
            .data(req)
            .run(files.build(&ConnInfo {
                peer: unix.clone(),
                local: unix.clone(),
            }));
        assert!(out.closed || out.text().starts_with("HTTP/1.1 404 "));
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    for rec in log.iter() {
        let line = rec.to_string();
        assert!(!line.contains(['\n', '\r', '\x1b', '\x07']), "{line:?}");
        assert!(
            line.starts_with("/tmp/c\\x0a1.2.3.4 - - [x] \\x22GET"),
            "{line}"
        );
    }
    assert!(log[0].to_string().contains("\"GET /a\\x0db HTTP/1.1\" 400"));
    assert!(log[2]
        .to_string()
        .contains("\"GET /\\x1b[2J\\x07 HTTP/1.0\""));
}

/// Requests `/big.bin`, reads `before` bytes, lets `shrink` change the file,
/// and reads the rest; returns the body bytes received and the log line's.
fn shrink_while_sending(runner: Runner, shrink_to: u64) -> (u64, u64) {
    const SIZE: u64 = 200 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::File::create(&path).unwrap().set_len(SIZE).unwrap();
    let (files, log) = files(dir.path(), HttpOptions::default());
    let srv = serve_with(runner, files);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; 1 << 20];
    s.read_exact(&mut got).unwrap();
    let head_len = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_len]).to_string();
    assert!(head.contains("Content-Length: 209715200"), "{head}");
    // Let the server fill the socket buffers, then shrink the file.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(shrink_to)
        .unwrap();
    let mut total = got.len() as u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    let body = total - head_len as u64;
    assert!(body < SIZE, "the connection ends early: {body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(rec) = log.lock().unwrap().first() {
            assert_eq!(rec.status, 200);
            return (body, rec.bytes);
        }
        assert!(Instant::now() < deadline, "no log line");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_file_that_shrinks_while_being_sent_is_logged_with_the_bytes_sent() {
    for runner in [Runner::Reactor, Runner::Server(Mode::Threads)] {
        // Shrunk ahead of what was sent: sending stops exactly where it ends.
        let (received, logged) = shrink_while_sending(runner, 100 * 1024 * 1024);
        assert_eq!(received, 100 * 1024 * 1024, "{runner:?}");
        assert_eq!(logged, received, "{runner:?}");
        // Shrunk behind what was sent: the log counts what had surely gone out,
        // short by at most the range in flight (1 MiB).
        let (received, logged) = shrink_while_sending(runner, 0);
        assert!(
            logged <= received && received - logged <= 1 << 20,
            "{runner:?}: logged {logged}, received {received}"
        );
    }
}
