//! The static file service on real sockets, against Python's `urllib.request` and
//! `http.client`, raw sockets for malformed and traversal requests, and (with the
//! `peers` feature) curl. Every test runs under each runner in `RUNNERS`.

mod http_util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_util::{python, raw, serve_with, status_of, tree, Runner, TestServer, Tree, RUNNERS};
use netkit::http::{AccessLog, HttpOptions, StaticFiles};

fn start(t: &Tree, runner: Runner) -> TestServer {
    serve_with(
        runner,
        StaticFiles::new(&t.root, HttpOptions::default()).unwrap(),
    )
}

const URLOPEN: &str = r#"
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=20) as r:
    body = r.read()
    print(r.status, r.headers.get("Content-Type"), r.headers.get("Content-Length"), len(body))
    sys.stdout.flush()
    sys.stdout.buffer.write(body)
"#;

#[test]
fn urllib_gets_files_and_listings() {
    for &runner in RUNNERS {
        let t = tree();
        let srv = start(&t, runner);
        let out = python(URLOPEN, &[&srv.url("/hello.txt")]);
        assert_eq!(out, "200 text/plain; charset=utf-8 12 12\nhello world\n");
        // urllib follows the directory redirect and gets the index.
        let out = python(URLOPEN, &[&srv.url("/site")]);
        assert!(out.starts_with("200 text/html; charset=utf-8 "), "{out}");
        assert!(out.contains("About</a>"));
        // A listing, with the names escaped and the links encoded.
        let out = python(URLOPEN, &[&srv.url("/sub%20dir/")]);
        assert!(
            out.contains("<a href=\"%3Cb%3E%26.txt\">&lt;b&gt;&amp;.txt</a>"),
            "{out}"
        );
        let out = python(URLOPEN, &[&srv.url("/")]);
        for name in ["hello.txt", "mid.bin", "site/", "sub dir/"] {
            assert!(out.contains(&format!(">{name}</a>")), "{name} in {out}");
        }
        // Symlinks that leave the root are served as 403, so they are not listed.
        assert!(
            !out.contains("escape.txt") && !out.contains("updir"),
            "{out}"
        );
    }
}

#[test]
fn urllib_sees_errors() {
    for &runner in RUNNERS {
        let t = tree();
        let srv = start(&t, runner);
        let script = r#"
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=20)
    print("no error")
except urllib.error.HTTPError as e:
    print(e.code)
"#;
        assert_eq!(python(script, &[&srv.url("/missing")]).trim(), "404");
        assert_eq!(python(script, &[&srv.url("/escape.txt")]).trim(), "403");
        assert_eq!(
            python(script, &[&srv.url("/updir/secret.txt")]).trim(),
            "403"
        );
    }
}

#[test]
fn http_client_keep_alive_conditional_range_and_head() {
    for &runner in RUNNERS {
        let t = tree();
        let srv = start(&t, runner);
        let script = r#"
import sys, http.client
host, port = sys.argv[1].split(":")
data = open(sys.argv[2], "rb").read()
c = http.client.HTTPConnection(host, int(port), timeout=20)
ports = set()
def req(method, path, headers={}):
    c.request(method, path, headers=headers)
    ports.add(c.sock.getsockname()[1])
    r = c.getresponse()
    return r, r.read()
r, b = req("GET", "/mid.bin")
print("full", r.status, len(b), b == data)
etag, lm = r.getheader("ETag"), r.getheader("Last-Modified")
r, b = req("GET", "/mid.bin", {"If-None-Match": etag})
print("inm", r.status, len(b))
r, b = req("GET", "/mid.bin", {"If-Modified-Since": lm})
print("ims", r.status, len(b))
r, b = req("GET", "/mid.bin", {"Range": "bytes=1000-1999"})
print("range", r.status, r.getheader("Content-Range"), b == data[1000:2000])
r, b = req("GET", "/mid.bin", {"Range": "bytes=-10"})
print("suffix", r.status, r.getheader("Content-Range"), len(b))
r, b = req("HEAD", "/mid.bin")
print("head", r.status, r.getheader("Content-Length"), len(b))
r, b = req("GET", "/hello.txt")
print("small", r.status, b)
r, b = req("GET", "/mid.bin", {"Range": "bytes=999999-"})
print("416", r.status, r.getheader("Content-Range"))
print("connections", len(ports))
"#;
        let mid = t.root.join("mid.bin");
        let out = python(script, &[&srv.addr.to_string(), mid.to_str().unwrap()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "full 200 300000 True");
        assert_eq!(lines[1], "inm 304 0");
        assert_eq!(lines[2], "ims 304 0");
        assert_eq!(lines[3], "range 206 bytes 1000-1999/300000 True");
        assert_eq!(lines[4], "suffix 206 bytes 299990-299999/300000 10");
        assert_eq!(lines[5], "head 200 300000 0");
        assert_eq!(lines[6], "small 200 b'hello world\\n'");
        assert_eq!(lines[7], "416 416 bytes */300000");
        // Everything went over one connection (closed after the 416).
        assert_eq!(lines[8], "connections 1", "{runner:?}");
    }
}

#[test]
fn pipelined_requests_on_one_socket() {
    for &runner in RUNNERS {
        let t = tree();
        let srv = start(&t, runner);
        let mut req = Vec::new();
        for _ in 0..3 {
            req.extend_from_slice(
            b"GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        }
        req.extend_from_slice(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let out = raw(srv.addr, &req);
        let mid = std::fs::read(t.root.join("mid.bin")).unwrap();
        let mut rest = &out[..];
        let mut count = 0;
        while !rest.is_empty() {
            let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = String::from_utf8_lossy(&rest[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            let body = &rest[end..end + len];
            if count % 2 == 0 && count < 6 {
                assert_eq!(body, &mid[..], "response {count}");
            } else {
                assert_eq!(body, b"hello world\n", "response {count}");
            }
            rest = &rest[end + len..];
            count += 1;
        }
        assert_eq!(count, 7);
    }
}

#[test]
fn a_100_mib_file_arrives_intact() {
    let t = tree();
    let big = t.root.join("big.iso");
    {
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(100 << 20).unwrap();
        // Mark a few places so a misplaced range would show.
        for (i, off) in [0u64, 4096, 50 << 20, (100 << 20) - 17].iter().enumerate() {
            use std::os::unix::fs::FileExt;
            f.write_at(format!("mark{i}").as_bytes(), *off).unwrap();
        }
    }
    for &runner in RUNNERS {
        let srv = start(&t, runner);
        let script = r#"
import sys, hashlib, urllib.request
h = hashlib.sha256()
n = 0
with urllib.request.urlopen(sys.argv[1], timeout=60) as r:
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
f = hashlib.sha256()
with open(sys.argv[2], "rb") as fh:
    while True:
        b = fh.read(1 << 20)
        if not b:
            break
        f.update(b)
print(n, h.hexdigest() == f.hexdigest())
"#;
        let out = python(script, &[&srv.url("/big.iso"), big.to_str().unwrap()]);
        assert_eq!(out.trim(), format!("{} True", 100u64 << 20), "{runner:?}");
    }
}

#[test]
fn every_traversal_attempt_is_refused() {
    for &runner in RUNNERS {
        let t = tree();
        let srv = start(&t, runner);
        for target in [
            "/../secret.txt",
            "/../../../../etc/passwd",
            "/%2e%2e/secret.txt",
            "/%2E%2e/secret.txt",
            "/.%2e/secret.txt",
            "/site/../../secret.txt",
            "/site/%2e%2e/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/site%2f..%2f..%2fsecret.txt",
            "/%2e%2e%2fsecret.txt",
            "/..%5csecret.txt",
            "/..\\secret.txt",
            "/hello.txt%00",
            "/escape.txt",
            "/updir/secret.txt",
            "/updir/",
            "//etc/passwd",
            "/etc/passwd",
            "http://localhost/../secret.txt",
            "../secret.txt",
            "secret.txt",
        ] {
            let out = raw(
                srv.addr,
                format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            );
            let status = status_of(&out);
            assert!(matches!(status, 400 | 403 | 404), "{target}: {status}");
            let text = String::from_utf8_lossy(&out);
            assert!(
                !text.contains("top secret") && !text.contains("root:"),
                "{target}"
            );
        }
    }
}

#[test]
fn malformed_and_oversized_requests() {
    for &runner in RUNNERS {
        let t = tree();
        let srv = start(&t, runner);
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 405),
            (
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
                405,
            ),
            (
                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(),
                400,
            ),
            (b"GET / HTTP/1.1\r\nHost: t\r\nHost x\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/9.9\r\n\r\n".to_vec(), 505),
            (
                format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(10_000)).into_bytes(),
                414,
            ),
            (
                format!(
                    "GET / HTTP/1.1\r\nHost: t\r\nCookie: {}\r\n\r\n",
                    "c".repeat(10_000)
                )
                .into_bytes(),
                431,
            ),
            (
                format!(
                    "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
                    "X: y\r\n".repeat(200)
                )
                .into_bytes(),
                431,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n".to_vec(),
                413,
            ),
        ];
        for (req, want) in cases {
            let out = raw(srv.addr, &req);
            assert_eq!(
                status_of(&out),
                want,
                "{}",
                String::from_utf8_lossy(&req[..req.len().min(40)])
            );
            assert!(String::from_utf8_lossy(&out).contains("Connection: close"));
        }
    }
}

#[test]
fn a_slow_client_times_out_and_others_are_served() {
    for &runner in RUNNERS {
        let t = tree();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let opts = HttpOptions {
            header_timeout: Duration::from_millis(500),
            access_log: AccessLog::to_fn(move |r| sink.lock().unwrap().push(r.to_string())),
            ..HttpOptions::default()
        };
        let srv = serve_with(runner, StaticFiles::new(&t.root, opts).unwrap());
        let mut slow = TcpStream::connect(srv.addr).unwrap();
        slow.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: slo")
            .unwrap();
        // Another client is served while the slow one dawdles.
        let out = python(URLOPEN, &[&srv.url("/hello.txt")]);
        assert!(out.ends_with("hello world\n"));
        slow.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut got = Vec::new();
        slow.read_to_end(&mut got).unwrap();
        assert_eq!(status_of(&got), 408);
        let lines = log.lock().unwrap().clone();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"GET /hello.txt HTTP/1.1\" 200 12 ")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains(" 408 ")), "{lines:?}");
    }
}

#[cfg(feature = "peers")]
mod curl {
    use super::*;
    use std::process::Command;

    fn curl(args: &[&str]) -> (String, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "-D", "-"])
            .args(args)
            .output()
            .expect("curl is installed (peers feature)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let end = out
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        (
            String::from_utf8_lossy(&out.stdout[..end]).to_string(),
            out.stdout[end..].to_vec(),
        )
    }

    #[test]
    fn curl_files_ranges_head_and_keep_alive() {
        for &runner in RUNNERS {
            let t = tree();
            let srv = start(&t, runner);
            let mid = std::fs::read(t.root.join("mid.bin")).unwrap();
            let (head, body) = curl(&[&srv.url("/mid.bin")]);
            assert!(head.starts_with("HTTP/1.1 200 OK"));
            assert_eq!(body, mid);
            let (head, body) = curl(&["-r", "10-19", &srv.url("/mid.bin")]);
            assert!(head.starts_with("HTTP/1.1 206"), "{head}");
            assert_eq!(body, &mid[10..20]);
            let out = Command::new("curl")
                .args(["-sS", "-I", &srv.url("/mid.bin")])
                .output()
                .unwrap();
            let head = String::from_utf8_lossy(&out.stdout);
            assert!(head.contains("Content-Length: 300000"), "{head}");
            assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
            // Two URLs on one curl command reuse the connection.
            let out = Command::new("curl")
                .args([
                    "-sS",
                    "-w",
                    "%{num_connects}\\n",
                    "-o",
                    "/dev/null",
                    "-o",
                    "/dev/null",
                ])
                .args([srv.url("/hello.txt"), srv.url("/mid.bin")])
                .output()
                .unwrap();
            assert!(out.status.success());
            assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n0\n", "{runner:?}");
            let (head, _) = curl(&["--path-as-is", &srv.url("/../secret.txt")]);
            assert!(head.starts_with("HTTP/1.1 403"), "{head}");
        }
    }
}
