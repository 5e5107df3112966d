//! Regressions in fetch: bad URLs, bodies cut short, credentials on redirects,
//! whole-transfer limits, self-signed certificates, output directories, cookie
//! files and the summary line. The servers are written here on std sockets (and
//! rustls for TLS), each serving a bounded number of connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{self, TempDir};

/// Runs `netkit fetch ARGS` in `dir`, killed after 30 s.
fn fetch(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(util::netkit());
    cmd.current_dir(dir).arg("fetch").args(args);
    util::run_bounded(cmd, b"", Duration::from_secs(30))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn exits(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    err
}

/// A request head as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    head: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Reads one request head (bounded: 64 KiB, 10 s).
fn read_head(conn: &TcpStream) -> Option<Seen> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn.take(64 * 1024));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    let path = head.split_whitespace().nth(1)?.to_string();
    Some(Seen { path, head })
}

/// A server on 127.0.0.1 that answers up to `conns` connections with `reply`
/// (one request each) on a thread, recording every request.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(conns: usize, reply: impl Fn(&Seen, TcpStream) + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming().take(conns) {
                let Ok(conn) = conn else { continue };
                let Some(req) = read_head(&conn) else {
                    continue;
                };
                log.lock().unwrap().push(req.clone());
                reply(&req, conn);
            }
        });
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Closes `conn` with a TCP reset (SO_LINGER 0).
fn reset(conn: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `conn` owns a valid socket; the option value is a properly
    // initialised `linger` whose size is passed alongside it.
    let rc = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(conn);
}

fn reply(mut conn: &TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

#[test]
fn fetch_bad_port_is_a_usage_error() {
    let dir = TempDir::new("fetch-port");
    for url in [
        "http://127.0.0.1:99999/x",
        "http://127.0.0.1:65536/x",
        "http://127.0.0.1:abc/x",
        "http://[::1/x",
    ] {
        let err = exits(&fetch(&dir.0, &["-q", url]), 2);
        assert!(err.starts_with("netkit: ") && err.contains(url), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A bad option value is a usage error too; a failed download exits 1.
    let err = exits(
        &fetch(&dir.0, &["-q", "-H", "no colon", "http://127.0.0.1:1/"]),
        2,
    );
    assert!(err.contains("Name: value"), "{err}");
    let err = exits(
        &fetch(&dir.0, &["-q", "--max-time", "soon", "http://127.0.0.1:1/"]),
        2,
    );
    assert!(err.contains("soon"), "{err}");
    exits(&fetch(&dir.0, &["-q", "http://127.0.0.1:1/x"]), 1);
}

#[test]
fn fetch_reset_after_a_body_without_length_is_an_error() {
    let dir = TempDir::new("fetch-reset");
    std::fs::write(dir.path("data.bin"), "precious").unwrap();
    let srv = Server::start(1, |_, mut conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let _ = conn.write_all(&[b'x'; 100_000]);
        thread::sleep(Duration::from_millis(200));
        reset(conn);
    });
    let err = exits(
        &fetch(&dir.0, &["-o", "data.bin", &srv.url("/data.bin")]),
        1,
    );
    assert!(err.contains("reset"), "{err}");
    assert!(
        err.contains("bytes arrived") && err.contains("--continue"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path("data.bin")).unwrap(),
        "precious",
        "the target is untouched"
    );
    let kept = std::fs::metadata(dir.path("data.bin.part")).unwrap().len();
    assert!(kept <= 100_000, "{kept}");

    // The same body ended by a clean FIN is a whole file.
    let srv = Server::start(1, |_, mut conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let _ = conn.write_all(&[b'x'; 100_000]);
    });
    let out = fetch(&dir.0, &["-q", "-o", "data.bin", &srv.url("/data.bin")]);
    exits(&out, 0);
    assert_eq!(std::fs::read(dir.path("data.bin")).unwrap().len(), 100_000);
    assert!(!dir.path("data.bin.part").exists());
}

#[test]
fn fetch_cut_short_says_how_many_bytes_arrived() {
    let dir = TempDir::new("fetch-cut");
    let srv = Server::start(1, |_, mut conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        let _ = conn.write_all(&[b'y'; 400]);
    });
    let err = exits(&fetch(&dir.0, &["-q", &srv.url("/f.bin")]), 1);
    assert!(err.contains("400 of 1000 bytes"), "{err}");
    assert!(err.contains("closed the connection"), "{err}");
    assert!(
        err.contains("--continue") && err.contains("f.bin.part"),
        "{err}"
    );
    assert!(!err.contains("Peer disconnected"), "{err}");
}

/// Server A redirects to server B (same host, another port); B records whether
/// `Authorization` arrived.
fn auth_redirect(dir: &Path, args: &[&str], with_creds_in_url: bool) -> Option<String> {
    let b = Server::start(1, |_, conn| reply(&conn, "200 OK", &[], b"from b"));
    let location = b.url("/landing");
    let a = Server::start(1, move |_, conn| {
        reply(&conn, "302 Found", &[("Location", &location)], b"")
    });
    let url = if with_creds_in_url {
        format!("http://alice:s3cret@127.0.0.1:{}/start", a.port)
    } else {
        a.url("/start")
    };
    let mut all = vec!["-o", "-"];
    all.extend_from_slice(args);
    all.push(&url);
    let out = fetch(dir, &all);
    assert_eq!(exits(&out, 0), "");
    assert_eq!(out.stdout, b"from b");
    assert!(a.seen()[0].header("authorization").is_some());
    b.seen()[0].header("authorization")
}

#[test]
fn fetch_drops_authorization_on_redirect_to_another_port() {
    let dir = TempDir::new("fetch-auth");
    assert_eq!(
        auth_redirect(&dir.0, &["--user", "alice:s3cret"], false),
        None
    );
    assert_eq!(auth_redirect(&dir.0, &[], true), None);
    assert_eq!(
        auth_redirect(&dir.0, &["-H", "Authorization: Bearer t0ken"], false),
        None
    );
    // --location-trusted opts in, as curl's does.
    assert!(auth_redirect(
        &dir.0,
        &["--user", "alice:s3cret", "--location-trusted"],
        false
    )
    .is_some_and(|v| v.starts_with("Basic ")));
}

/// Sends a head, then one byte every 100 ms for at most 20 s.
fn drip(conn: TcpStream, length: bool) {
    let mut conn = conn;
    let head = if length {
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    } else {
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    };
    let _ = conn.write_all(head.as_bytes());
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if conn.write_all(b"z").is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn fetch_max_time_bounds_a_dripping_body() {
    let dir = TempDir::new("fetch-drip");
    let srv = Server::start(1, |_, conn| drip(conn, true));
    let started = Instant::now();
    let err = exits(
        &fetch(&dir.0, &["-q", "--max-time", "1500ms", &srv.url("/slow")]),
        1,
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(err.contains("maximum time of 1.5s"), "{err}");
    assert!(err.contains("of 100000 bytes"), "{err}");
    assert!(dir.path("slow.part").exists() && !dir.path("slow").exists());

    let srv = Server::start(1, |_, conn| drip(conn, false));
    let err = exits(
        &fetch(
            &dir.0,
            &[
                "-q",
                "--speed-limit",
                "1000",
                "--speed-time",
                "1s",
                &srv.url("/slow"),
            ],
        ),
        1,
    );
    assert!(err.contains("slower than 1000 bytes/s for 1s"), "{err}");

    // Streaming to stdout is bounded the same way.
    let srv = Server::start(1, |_, conn| drip(conn, false));
    let out = fetch(&dir.0, &["-o", "-", "-m", "1s", &srv.url("/slow")]);
    let err = exits(&out, 1);
    assert!(
        err.contains("maximum time of 1s") && !err.contains(".part"),
        "{err}"
    );
    assert!(!out.stdout.is_empty() && out.stdout.iter().all(|&b| b == b'z'));
}

#[test]
fn fetch_max_filesize_stops_an_endless_body() {
    let dir = TempDir::new("fetch-endless");
    let srv = Server::start(1, |_, mut conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![b'e'; 64 * 1024];
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && conn.write_all(&chunk).is_ok() {}
    });
    let err = exits(
        &fetch(
            &dir.0,
            &["-q", "--max-filesize", "1MiB", &srv.url("/endless")],
        ),
        1,
    );
    assert!(
        err.contains("larger than the limit of 1048576 bytes"),
        "{err}"
    );
    let kept = std::fs::metadata(dir.path("endless.part")).unwrap().len();
    assert!(kept <= 1_048_576 + 64 * 1024, "{kept}");
    assert!(!dir.path("endless").exists());
    // A known size over the limit is refused before any byte is written.
    let srv = Server::start(1, |_, conn| reply(&conn, "200 OK", &[], &[0; 5000]));
    let err = exits(
        &fetch(&dir.0, &["-q", "--max-filesize", "4000", &srv.url("/big")]),
        1,
    );
    assert!(err.contains("(5000 bytes)"), "{err}");
    assert!(!dir.path("big").exists() && !dir.path("big.part").exists());
}

/// A TLS server with this certificate and key, answering `conns` connections.
/// With `close_notify` false, the body has no length and ends with a bare FIN.
fn tls_server(cert: &str, key: &str, conns: usize, close_notify: bool) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for tcp in listener.incoming().take(conns) {
            let Ok(tcp) = tcp else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if !head.ends_with(b"\r\n\r\n") {
                continue;
            }
            if close_notify {
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret");
                tls.conn.send_close_notify();
            } else {
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ntruncat");
            }
            let _ = tls.flush();
            let _ = tls.sock.shutdown(std::net::Shutdown::Write);
            thread::sleep(Duration::from_millis(100));
        }
    });
    port
}

/// Checks one self-signed `CA:TRUE` certificate for `localhost` against
/// `--cacert`, a wrong name, and `-k`.
fn self_signed_checks(dir: &TempDir, cert_pem: &str, key_pem: &str) {
    let ca = dir.path("cert.pem");
    std::fs::write(&ca, cert_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let port = tls_server(cert_pem, key_pem, 4, true);
    let out = fetch(
        &dir.0,
        &[
            "-o",
            "-",
            "--cacert",
            ca,
            &format!("https://localhost:{port}/"),
        ],
    );
    exits(&out, 0);
    assert_eq!(out.stdout, b"secret");
    // The name is still checked for a pinned certificate...
    let err = exits(
        &fetch(
            &dir.0,
            &[
                "-o",
                "-",
                "--cacert",
                ca,
                &format!("https://127.0.0.1:{port}/"),
            ],
        ),
        1,
    );
    assert!(err.contains("TLS") && err.contains("127.0.0.1"), "{err}");
    // ... and not trusted without --cacert.
    exits(
        &fetch(&dir.0, &["-o", "-", &format!("https://localhost:{port}/")]),
        1,
    );
    // -k accepts anything.
    let out = fetch(
        &dir.0,
        &["-o", "-", "-k", &format!("https://127.0.0.1:{port}/")],
    );
    exits(&out, 0);
    assert_eq!(out.stdout, b"secret");
}

#[test]
fn fetch_accepts_a_self_signed_ca_cert_named_with_cacert() {
    let dir = TempDir::new("fetch-selfsigned");
    // What `openssl req -x509 -addext subjectAltName=DNS:localhost` makes:
    // self-signed, basicConstraints CA:TRUE.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = params.self_signed(&key).unwrap();
    self_signed_checks(&dir, &cert.pem(), &key.serialize_pem());
}

#[cfg(feature = "peers")]
#[test]
fn fetch_accepts_an_openssl_req_x509_cert_named_with_cacert() {
    let dir = TempDir::new("fetch-openssl");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
        ])
        .arg(dir.path("key.pem"))
        .arg("-out")
        .arg(dir.path("gen.pem"))
        .output()
        .expect("openssl is installed (peers feature)");
    assert!(status.status.success(), "{}", stderr(&status));
    let cert = std::fs::read_to_string(dir.path("gen.pem")).unwrap();
    let key = std::fs::read_to_string(dir.path("key.pem")).unwrap();
    self_signed_checks(&dir, &cert, &key);
}

#[test]
fn fetch_over_tls_without_close_notify_is_an_error() {
    let dir = TempDir::new("fetch-notify");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let port = tls_server(&ck.cert.pem(), &ck.signing_key.serialize_pem(), 1, false);
    let url = format!("https://localhost:{port}/t.txt");
    let err = exits(&fetch(&dir.0, &["-q", "-k", &url]), 1);
    assert!(err.contains("close_notify"), "{err}");
    assert!(!dir.path("t.txt").exists() && dir.path("t.txt.part").exists());
}

#[test]
fn fetch_into_an_existing_directory_uses_the_url_name() {
    let dir = TempDir::new("fetch-dir");
    std::fs::create_dir(dir.path("out")).unwrap();
    let srv = Server::start(2, |_, conn| reply(&conn, "200 OK", &[], b"into the dir"));
    for o in ["out/", "out"] {
        exits(&fetch(&dir.0, &["-q", "-o", o, &srv.url("/a/name.txt")]), 0);
        assert_eq!(
            std::fs::read(dir.path("out/name.txt")).unwrap(),
            b"into the dir"
        );
        std::fs::remove_file(dir.path("out/name.txt")).unwrap();
    }
}

#[test]
fn fetch_cookie_jar_keeps_session_cookies_in_netscape_format() {
    let dir = TempDir::new("fetch-jar");
    let srv = Server::start(4, |req, conn| match req.path.as_str() {
        "/login" => reply(
            &conn,
            "302 Found",
            &[
                ("Location", "/home"),
                ("Set-Cookie", "sid=abc123; Path=/; HttpOnly"),
            ],
            b"",
        ),
        _ => {
            let ok = req
                .header("cookie")
                .is_some_and(|c| c.contains("sid=abc123"));
            reply(
                &conn,
                if ok { "200 OK" } else { "403 Forbidden" },
                &[],
                b"home",
            )
        }
    });
    let jar = dir.path("cookies.txt");
    let jar_s = jar.to_str().unwrap();
    exits(
        &fetch(
            &dir.0,
            &["-o", "-", "--cookie-jar", jar_s, &srv.url("/login")],
        ),
        0,
    );
    let text = std::fs::read_to_string(&jar).unwrap();
    assert!(text.starts_with("# Netscape HTTP Cookie File"), "{text}");
    assert!(
        text.contains("#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tabc123"),
        "{text}"
    );
    // The next run sends it again from the file.
    exits(
        &fetch(
            &dir.0,
            &["-o", "-", "--cookie-jar", jar_s, &srv.url("/home")],
        ),
        0,
    );
    // A file written by curl is read.
    std::fs::write(
        &jar,
        "# Netscape HTTP Cookie File\n\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tabc123\n",
    )
    .unwrap();
    exits(
        &fetch(
            &dir.0,
            &["-o", "-", "--cookie-jar", jar_s, &srv.url("/home")],
        ),
        0,
    );
    // A malformed one is a clear error.
    std::fs::write(&jar, "127.0.0.1\tFALSE\n").unwrap();
    let err = exits(
        &fetch(
            &dir.0,
            &["-o", "-", "--cookie-jar", jar_s, &srv.url("/home")],
        ),
        1,
    );
    assert!(
        err.contains("cookie jar") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn fetch_ends_with_size_time_and_speed_and_no_bar_off_a_terminal() {
    let dir = TempDir::new("fetch-summary");
    let srv = Server::start(2, |_, conn| reply(&conn, "200 OK", &[], &[7; 300_000]));
    let err = exits(&fetch(&dir.0, &[&srv.url("/s.bin")]), 0);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err:?}");
    let line = lines[0];
    assert!(
        line.starts_with("saved ") && line.contains("s.bin"),
        "{line}"
    );
    assert!(line.contains("300000 bytes (292.97 KiB)"), "{line}");
    assert!(line.contains(" in ") && line.ends_with("/s"), "{line}");
    assert!(!err.contains('\r') && !err.contains('%'), "{err:?}");
    // --quiet: nothing at all.
    assert_eq!(
        exits(
            &fetch(&dir.0, &["-q", "-o", "t.bin", &srv.url("/s.bin")]),
            0
        ),
        ""
    );
}

/// Runs a command with stderr on a pseudo-terminal (python's `pty`); prints
/// what the terminal showed.
const ON_A_PTY: &str = r#"
import os, pty, subprocess, sys
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
out = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
p.wait()
sys.stdout.buffer.write(out)
sys.exit(p.returncode)
"#;

#[test]
fn fetch_progress_bar_shows_name_and_percentage_on_a_terminal() {
    let dir = TempDir::new("fetch-pty");
    let srv = Server::start(1, |_, mut conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n");
        for _ in 0..10 {
            if conn.write_all(&[b'p'; 20_000]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(150));
        }
    });
    let mut cmd = Command::new("python3");
    cmd.current_dir(&dir.0)
        .args(["-c", ON_A_PTY])
        .arg(util::netkit())
        .args(["fetch", &srv.url("/p.bin")]);
    let out = util::run_bounded(cmd, b"", Duration::from_secs(30));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("p.bin") && shown.contains('%'), "{shown:?}");
    assert!(shown.contains("195.31 KiB"), "{shown:?}");
    assert!(shown.contains("saved p.bin: 200000 bytes"), "{shown:?}");
}
