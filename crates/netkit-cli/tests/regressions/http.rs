//! Regressions in http.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use std::process::Command;

use crate::util::{run_bounded, Served, TempDir, STEP};

/// The modes the `serve http` regressions run in: the event loop (one worker, so
/// a stall shows) and a thread per connection.
const MODES: &[&[&str]] = &[
    &["--mode", "reactor", "--workers", "1"],
    &["--mode", "threads"],
];

/// Entries in the huge directory.
const HUGE: usize = 100_000;

/// `serve http --root ROOT` on 127.0.0.1:0 with `extra` arguments.
fn serve_http(root: &TempDir, extra: &[&str]) -> Served {
    let root = root.0.to_str().unwrap();
    let mut args = vec!["http", "--root", root, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Served::start(&args)
}

/// A root with `small.txt` and `big/` holding [`HUGE`] empty files.
fn huge_root(tag: &str) -> TempDir {
    let root = TempDir::new(tag);
    std::fs::write(root.path("small.txt"), "small\n").unwrap();
    let big = root.path("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..HUGE {
        std::fs::File::create(big.join(format!("f{i:06}"))).unwrap();
    }
    root
}

fn connect(srv: &Served) -> TcpStream {
    let s = TcpStream::connect(srv.addr("tcp")).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s
}

/// Sends `req` on a new connection and reads until the server closes.
fn exchange(srv: &Served, req: &[u8]) -> String {
    let mut s = connect(srv);
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The server's resident memory, in KiB.
fn rss_kib(srv: &Served) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn serve_http_answers_a_small_get_promptly_while_listing_a_huge_directory() {
    let root = huge_root("http-stall");
    for mode in MODES {
        let srv = serve_http(&root, mode);
        assert!(exchange(&srv, b"GET /small.txt HTTP/1.0\r\n\r\n").ends_with("small\n"));
        let mut lister = connect(&srv);
        lister.write_all(b"GET /big/ HTTP/1.0\r\n\r\n").unwrap();
        // While the listing is under way, small requests on other connections
        // are answered without waiting for it (it used to stall the loop 1-2 s).
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let t0 = Instant::now();
            let out = exchange(&srv, b"GET /small.txt HTTP/1.0\r\n\r\n");
            slowest = slowest.max(t0.elapsed());
            assert!(out.ends_with("small\n"), "{mode:?}: {out}");
        }
        assert!(
            slowest < Duration::from_millis(500),
            "{mode:?}: a small GET waited {slowest:?}"
        );
        // The listing itself is whole: every entry, and the end of the page.
        let mut page = Vec::new();
        lister.read_to_end(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.ends_with("</html>\n"), "{mode:?}");
        assert_eq!(
            page.matches("<tr><td><a href=\"f").count(),
            HUGE,
            "{mode:?}"
        );
    }
}

#[test]
fn serve_http_listing_to_a_client_that_never_reads_holds_bounded_memory() {
    let root = huge_root("http-rss");
    for mode in MODES {
        let srv = serve_http(&root, mode);
        assert!(exchange(&srv, b"GET /small.txt HTTP/1.0\r\n\r\n").ends_with("small\n"));
        let before = rss_kib(&srv);
        // Four clients ask for the listing and never read a byte.
        let mut idle = Vec::new();
        for _ in 0..4 {
            let mut s = connect(&srv);
            s.write_all(b"GET /big/ HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            idle.push(s);
        }
        // Give the server time to produce all it will, then watch its memory.
        let mut peak = before;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            assert!(exchange(&srv, b"GET /small.txt HTTP/1.0\r\n\r\n").ends_with("small\n"));
            peak = peak.max(rss_kib(&srv));
            std::thread::sleep(Duration::from_millis(100));
        }
        // Each used to hold the whole ~13 MB page; now the write-queue bound and
        // the names kept for sorting.
        let grown = peak.saturating_sub(before);
        assert!(
            grown < 10 * 1024,
            "{mode:?}: RSS grew {grown} KiB for 4 clients that never read"
        );
        drop(idle);
    }
}

#[test]
fn serve_http_show_hidden_lists_dotfiles() {
    let root = TempDir::new("http-hidden");
    std::fs::write(root.path(".env"), "x").unwrap();
    std::fs::write(root.path("seen.txt"), "x").unwrap();
    for mode in MODES {
        let srv = serve_http(&root, mode);
        let page = exchange(&srv, b"GET / HTTP/1.0\r\n\r\n");
        assert!(
            page.contains(">seen.txt</a>") && !page.contains(".env"),
            "{page}"
        );
        // Still served by name, as nginx serves them.
        assert!(exchange(&srv, b"GET /.env HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 "));
        let mut args = mode.to_vec();
        args.push("--show-hidden");
        let srv = serve_http(&root, &args);
        let page = exchange(&srv, b"GET / HTTP/1.0\r\n\r\n");
        assert!(page.contains("<a href=\".env\">.env</a>"), "{page}");
    }
}

#[test]
fn serve_http_answers_400_to_http11_without_host_and_redirects_double_slash_to_this_host() {
    let root = TempDir::new("http-host");
    std::fs::create_dir(root.path("sub")).unwrap();
    std::fs::write(root.path("a.txt"), "a").unwrap();
    for mode in MODES {
        let srv = serve_http(&root, mode);
        let out = exchange(&srv, b"GET /a.txt HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400 "), "{mode:?}: {out}");
        let out = exchange(
            &srv,
            b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 200 "), "{mode:?}: {out}");
        let out = exchange(
            &srv,
            b"GET //sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 301 "), "{mode:?}: {out}");
        assert!(out.contains("\r\nLocation: /sub/\r\n"), "{mode:?}: {out}");
    }
}

/// A unix-socket client whose own socket path forges a log line, sending a
/// request with control characters in it.
const FORGER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[2])
s.connect(sys.argv[1])
s.sendall(sys.argv[3].encode("latin-1"))
s.settimeout(20)
while s.recv(65536):
    pass
"#;

#[test]
fn serve_http_log_lines_cannot_be_forged_by_control_characters() {
    let dir = TempDir::new("http-forge");
    std::fs::write(dir.path("a.txt"), "a").unwrap();
    // No `/` in it: it is a file name.
    let forged = "1.2.3.4 - - [x] \"GET forged\" 200 1 0.1ms";
    for (i, mode) in MODES.iter().enumerate() {
        let sock = dir.path(&format!("s{i}.sock"));
        let listen = format!("unix://{}", sock.display());
        let mut args = mode.to_vec();
        args.extend(["--listen", &listen]);
        let root = dir.0.to_str().unwrap();
        let mut all = vec!["http", "--root", root];
        all.extend(args);
        let srv = Served::start(&all);
        for (j, req) in [
            "GET /a.txt\r HTTP/1.0\r\n\r\n",
            "GET /\x1b[2J\x07 HTTP/1.0\r\n\r\n",
            "GET /a.txt HTTP/1.0\r\n\r\n",
        ]
        .iter()
        .enumerate()
        {
            let client = dir.path(&format!("c{i}{j}\n{forged}"));
            let mut cmd = Command::new("python3");
            cmd.args([
                "-c",
                FORGER,
                sock.to_str().unwrap(),
                client.to_str().unwrap(),
                req,
            ]);
            let out = run_bounded(cmd, b"", STEP);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            srv.wait_log("GET /a.txt HTTP/1.0\" 200", STEP),
            "{}",
            srv.log()
        );
        let log = srv.log();
        for line in log.lines() {
            assert!(
                !line.starts_with("1.2.3.4"),
                "{mode:?}: a forged line: {line}"
            );
            assert!(!line.contains(['\x1b', '\x07', '\r']), "{mode:?}: {line:?}");
        }
        assert!(log.contains("\\x0a1.2.3.4 - - "), "{log}");
        assert!(log.contains("\\x1b[2J\\x07"), "{log}");
    }
}
