//! `netkit fetch` against real servers: Python's `http.server` (stdlib), a Python
//! server that dies mid-body, a TLS server with a CA made here (rcgen), and with the
//! `peers` feature, nginx.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// The test server: SimpleHTTPRequestHandler plus a few endpoints for redirects,
/// cookies, auth, headers, ranges and dying mid-body. Prints its port first.
const SERVER: &str = r#"
import base64, http.server, os, ssl, sys
root = sys.argv[1]
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, *a):
        pass
    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        p = self.path
        if p.startswith("/die/"):
            data = open(os.path.join(root, p[5:]), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            os._exit(1)
        if p.startswith("/range/"):
            data = open(os.path.join(root, p[7:]), "rb").read()
            rng = self.headers.get("Range")
            if rng:
                start = int(rng.split("=")[1].split("-")[0])
                return self.reply(206, data[start:], [("Content-Range", f"bytes {start}-{len(data)-1}/{len(data)}")])
            return self.reply(200, data)
        if p.startswith("/badrange/"):
            data = open(os.path.join(root, p[10:]), "rb").read()
            return self.reply(206, data[5:], [("Content-Range", f"bytes 5-{len(data)-1}/{len(data)}")])
        if p == "/redirect":
            return self.reply(302, headers=[("Location", "/set-cookie")])
        if p == "/set-cookie":
            return self.reply(302, headers=[("Location", "/need-cookie"), ("Set-Cookie", "flavour=oat; Max-Age=3600; Path=/")])
        if p == "/need-cookie":
            ok = "flavour=oat" in (self.headers.get("Cookie") or "")
            return self.reply(200 if ok else 403, b"cookie ok" if ok else b"no cookie")
        if p == "/auth":
            want = "Basic " + base64.b64encode(b"alice:s3cret").decode()
            ok = self.headers.get("Authorization") == want
            return self.reply(200 if ok else 401, b"auth ok" if ok else b"who?")
        if p == "/header":
            return self.reply(200, (self.headers.get("X-Test") or "none").encode())
        if p == "/loop":
            return self.reply(302, headers=[("Location", "/loop")])
        if p == "/disposition":
            return self.reply(200, b"disp", [("Content-Disposition", 'attachment; filename="../../evil name.txt"')])
        return super().do_GET()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// A child server process, killed (by its own handle) on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Starts the Python test server on `root` (TLS with `tls = Some((cert, key))`).
fn python_server(root: &Path, tls: Option<(&Path, &Path)>) -> Server {
    let mut cmd = Command::new("python3");
    cmd.arg("-u").arg("-c").arg(SERVER).arg(root);
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    spawn_with_port(cmd, |line| line.trim().parse().ok())
}

/// `python3 -m http.server` itself, on port 0.
fn stdlib_server(root: &Path) -> Server {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-u",
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        "--directory",
    ])
    .arg(root);
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    spawn_with_port(cmd, |line| {
        line.split(" port ").nth(1)?.split(' ').next()?.parse().ok()
    })
}

fn spawn_with_port(mut cmd: Command, port: impl Fn(&str) -> Option<u16>) -> Server {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 starts");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port = port(&line).unwrap_or_else(|| panic!("no port in {line:?}"));
    Server { child, port }
}

fn netkit(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("netkit")
        .unwrap()
        .current_dir(dir)
        .args(["fetch", "--timeout", "20s"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "netkit fetch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fails(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

struct Fixture {
    dir: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv");
    let work = dir.path().join("work");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(root.join("hello.txt"), "hello world\n").unwrap();
    std::fs::write(root.join("sub/page.html"), "<a href=\"/about\">about</a>\n").unwrap();
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    std::fs::write(root.join("data.bin"), data).unwrap();
    Fixture { dir, root, work }
}

fn same(a: &Path, b: &Path) {
    assert!(
        std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
        "{} != {}",
        a.display(),
        b.display()
    );
}

#[test]
fn downloads_from_python_http_server_byte_identical() {
    let f = fixture();
    let srv = stdlib_server(&f.root);
    for name in ["hello.txt", "data.bin"] {
        let out = netkit(&f.work, &["--quiet", &srv.url(&format!("/{name}"))]);
        ok(&out);
        same(&f.root.join(name), &f.work.join(name));
    }
    // -o names the file; the summary line goes to stderr.
    let out = netkit(&f.work, &["-o", "copy.html", &srv.url("/sub/page.html")]);
    ok(&out);
    same(&f.root.join("sub/page.html"), &f.work.join("copy.html"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("saved copy.html"));
    // A directory URL is saved as index.html.
    ok(&netkit(&f.work, &["-q", &srv.url("/sub/")]));
    assert!(std::fs::read_to_string(f.work.join("index.html"))
        .unwrap()
        .contains("page.html"));
    // -o - writes to stdout.
    let out = netkit(&f.work, &["-o", "-", &srv.url("/hello.txt")]);
    ok(&out);
    assert_eq!(out.stdout, b"hello world\n");
    // No .part file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&f.work)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_download_cut_off_leaves_no_file_and_continue_completes_it() {
    let f = fixture();
    let srv = python_server(&f.root, None);
    let out = netkit(
        &f.work,
        &["-q", "-o", "data.bin", &srv.url("/die/data.bin")],
    );
    let err = fails(&out);
    assert!(err.contains("/die/data.bin"), "{err}");
    drop(srv);
    assert!(
        !f.work.join("data.bin").exists(),
        "no target after a failed download"
    );
    let part = f.work.join("data.bin.part");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < 3_000_000, "{kept}");
    // A new server, which honours Range: --continue fetches only the rest.
    let srv = python_server(&f.root, None);
    let out = netkit(
        &f.work,
        &["--continue", "-o", "data.bin", &srv.url("/range/data.bin")],
    );
    ok(&out);
    same(&f.root.join("data.bin"), &f.work.join("data.bin"));
    assert!(!part.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("resumed at {kept}")));
}

#[test]
fn continue_restarts_when_the_server_ignores_range() {
    let f = fixture();
    std::fs::write(
        f.work.join("data.bin.part"),
        b"garbage that is not the start",
    )
    .unwrap();
    let srv = stdlib_server(&f.root);
    ok(&netkit(
        &f.work,
        &["-q", "--continue", &srv.url("/data.bin")],
    ));
    same(&f.root.join("data.bin"), &f.work.join("data.bin"));
}

#[test]
fn continue_refuses_a_mismatched_range() {
    let f = fixture();
    std::fs::write(f.work.join("data.bin.part"), b"0123456789").unwrap();
    let srv = python_server(&f.root, None);
    let err = fails(&netkit(
        &f.work,
        &["-q", "-c", "-o", "data.bin", &srv.url("/badrange/data.bin")],
    ));
    assert!(err.contains("Content-Range"), "{err}");
    assert!(!f.work.join("data.bin").exists());
}

#[test]
fn a_failed_download_never_truncates_an_existing_file() {
    let f = fixture();
    std::fs::write(f.work.join("data.bin"), "precious").unwrap();
    let srv = python_server(&f.root, None);
    fails(&netkit(
        &f.work,
        &["-q", "-o", "data.bin", &srv.url("/die/data.bin")],
    ));
    assert_eq!(
        std::fs::read_to_string(f.work.join("data.bin")).unwrap(),
        "precious"
    );
    let srv = python_server(&f.root, None);
    let err = fails(&netkit(
        &f.work,
        &["-q", "-o", "data.bin", &srv.url("/missing")],
    ));
    assert!(
        err.contains("HTTP 404") && err.contains("/missing"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(f.work.join("data.bin")).unwrap(),
        "precious"
    );
}

#[test]
fn clear_errors() {
    let f = fixture();
    // Refused: a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/x");
    let err = fails(&netkit(&f.work, &["-q", &url]));
    assert!(err.contains(&url) && err.contains("refused"), "{err}");
    let err = fails(&netkit(&f.work, &["-q", "http://no-such-host.invalid/x"]));
    assert!(
        err.contains("no-such-host.invalid") && err.contains("resolve"),
        "{err}"
    );
    let err = fails(&netkit(&f.work, &["-q", "gopher://x/"]));
    assert!(err.contains("unsupported scheme"), "{err}");
    let srv = python_server(&f.root, None);
    let err = fails(&netkit(&f.work, &["-q", &srv.url("/loop")]));
    assert!(err.contains("too many redirects"), "{err}");
    let err = fails(&netkit(
        &f.work,
        &["-q", "--max-redirects", "0", &srv.url("/redirect")],
    ));
    assert!(err.contains("/redirect"), "{err}");
    assert!(!f.work.join("loop").exists() && !f.work.join("redirect").exists());
}

#[test]
fn redirects_cookies_auth_and_headers() {
    let f = fixture();
    let srv = python_server(&f.root, None);
    let jar = f.work.join("cookies.json");
    let jar_s = jar.to_str().unwrap();
    // The cookie set during a redirect is sent on the next hop.
    let out = netkit(
        &f.work,
        &["-o", "-", "--cookie-jar", jar_s, &srv.url("/redirect")],
    );
    ok(&out);
    assert_eq!(out.stdout, b"cookie ok");
    // ... and kept in the jar for the next run.
    let out = netkit(
        &f.work,
        &["-o", "-", "--cookie-jar", jar_s, &srv.url("/need-cookie")],
    );
    ok(&out);
    assert_eq!(out.stdout, b"cookie ok");
    fails(&netkit(&f.work, &["-o", "-", &srv.url("/need-cookie")]));
    // Basic auth from the URL or --user.
    let authed = format!("http://alice:s3cret@127.0.0.1:{}/auth", srv.port);
    let out = netkit(&f.work, &["-o", "-", &authed]);
    ok(&out);
    assert_eq!(out.stdout, b"auth ok");
    let out = netkit(
        &f.work,
        &["-o", "-", "--user", "alice:s3cret", &srv.url("/auth")],
    );
    assert_eq!(out.stdout, b"auth ok");
    let err = fails(&netkit(
        &f.work,
        &["-o", "-", "--user", "alice:wrong", &srv.url("/auth")],
    ));
    assert!(err.contains("401"), "{err}");
    // Custom headers.
    let out = netkit(
        &f.work,
        &["-o", "-", "-H", "X-Test: forty two", &srv.url("/header")],
    );
    assert_eq!(out.stdout, b"forty two");
    // A Content-Disposition name is sanitized into the current directory.
    ok(&netkit(&f.work, &["-q", &srv.url("/disposition")]));
    assert_eq!(
        std::fs::read(f.work.join("evil name.txt")).unwrap(),
        b"disp"
    );
    assert!(!f.dir.path().join("evil name.txt").exists());
}

#[test]
fn file_urls() {
    let f = fixture();
    let url = format!("file://{}", f.root.join("data.bin").display());
    ok(&netkit(&f.work, &["-q", &url]));
    same(&f.root.join("data.bin"), &f.work.join("data.bin"));
    let err = fails(&netkit(&f.work, &["-q", "file:///definitely/not/here"]));
    assert!(err.contains("/definitely/not/here"), "{err}");
}

#[test]
fn https_with_a_private_ca() {
    let f = fixture();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "netkit test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (ca_pem, cert_pem, key_pem) = (
        f.dir.path().join("ca.pem"),
        f.dir.path().join("cert.pem"),
        f.dir.path().join("key.pem"),
    );
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    let srv = python_server(&f.root, Some((&cert_pem, &key_pem)));
    let ca = ca_pem.to_str().unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/data.bin", srv.port);
        let out = netkit(&f.work, &["-q", "--cacert", ca, "-o", host, &url]);
        ok(&out);
        same(&f.root.join("data.bin"), &f.work.join(host));
    }
    // Without the CA the certificate is not trusted.
    let url = format!("https://localhost:{}/hello.txt", srv.port);
    let err = fails(&netkit(&f.work, &["-q", &url]));
    assert!(err.contains("TLS") && err.contains(&url), "{err}");
    assert!(!f.work.join("hello.txt").exists());
    let err = fails(&netkit(
        &f.work,
        &["-q", "--cacert", key_pem.to_str().unwrap(), &url],
    ));
    assert!(err.contains("CA file"), "{err}");
}

#[cfg(feature = "peers")]
#[test]
fn nginx_download_and_resume() {
    let f = fixture();
    let prefix = f.dir.path().join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!(
        "daemon off; master_process off; pid {p}/nginx.pid; error_log {p}/logs/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {p}; proxy_temp_path {p}; fastcgi_temp_path {p}; uwsgi_temp_path {p}; scgi_temp_path {p};\n\
         server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
        p = prefix.display(),
        root = f.root.display()
    );
    std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is installed (peers feature)");
    let srv = Server { child, port };
    // Wait (bounded) for nginx to listen.
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(up, "nginx did not start");
    ok(&netkit(&f.work, &["-q", &srv.url("/data.bin")]));
    same(&f.root.join("data.bin"), &f.work.join("data.bin"));
    let data = std::fs::read(f.root.join("data.bin")).unwrap();
    std::fs::write(f.work.join("again.part"), &data[..1_000_000]).unwrap();
    let out = netkit(&f.work, &["-c", "-o", "again", &srv.url("/data.bin")]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("resumed at 1000000"));
    same(&f.root.join("data.bin"), &f.work.join("again"));
}
