//! TLS endpoints: netkit against netkit with a CA made here by rcgen (verified by
//! default, wrong CAs and names refused with clear errors, `--insecure` only when
//! asked), `relay` in front of and behind TLS, `--exec` over TLS; and, with the
//! `peers` feature, `openssl s_client`, `curl` and `openssl s_server` as peers.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use util::{run_bounded, Served, TempDir, STEP};

/// A CA and a leaf certificate it signed, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &TempDir, tag: &str, names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("netkit test CA {tag}"));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let pki = Pki {
        ca: dir.path(&format!("{tag}-ca.pem")),
        cert: dir.path(&format!("{tag}-cert.pem")),
        key: dir.path(&format!("{tag}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, leaf.pem()).unwrap();
    std::fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
    pki
}

/// `netkit listen ADDR ARGS...` with `stdin` (a file) as its input.
fn listen_with(args: &[&str], stdin: &[u8], dir: &TempDir) -> Served {
    let input = dir.path("listen-stdin");
    std::fs::write(&input, stdin).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" listen 127.0.0.1:0 \"$@\" < \"$NK_STDIN\"")
        .arg(util::netkit())
        .args(args)
        .env("NK_STDIN", input);
    Served::spawn(cmd, 1)
}

fn port(s: &Served) -> u16 {
    s.host_port().1
}

fn connect(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(util::netkit());
    cmd.arg("connect").args(args);
    run_bounded(cmd, stdin, STEP)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn connect_and_listen_over_tls_with_a_private_ca() {
    let dir = TempDir::new("tls-ca");
    let pki = make_pki(&dir, "a", &["localhost", "127.0.0.1"]);
    for host in ["localhost", "127.0.0.1"] {
        let mut l = listen_with(
            &["--tls-cert", path(&pki.cert), "--tls-key", path(&pki.key)],
            b"from the TLS listener\n",
            &dir,
        );
        let out = connect(
            &[
                &format!("tls://{host}:{}", port(&l)),
                "--cacert",
                path(&pki.ca),
            ],
            b"from the TLS client\n",
        );
        assert!(out.status.success(), "{host}: {}", stderr(&out));
        assert_eq!(out.stdout, b"from the TLS listener\n");
        assert!(l.wait_exit(STEP).success(), "{}", l.log());
        assert_eq!(*l.stdout.lock().unwrap(), "from the TLS client\n");
    }
}

#[test]
fn a_mebibyte_each_way_with_half_close() {
    let dir = TempDir::new("tls-big");
    let pki = make_pki(&dir, "b", &["localhost"]);
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    // listen --exec cat over TLS: the child sees plaintext, and the client's
    // half-close reaches it as end-of-file.
    let l = listen_with(
        &[
            "--tls-cert",
            path(&pki.cert),
            "--tls-key",
            path(&pki.key),
            "--exec",
            "cat",
        ],
        b"",
        &dir,
    );
    let out = connect(
        &[
            &format!("tls://localhost:{}", port(&l)),
            "--cacert",
            path(&pki.ca),
        ],
        &data,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == data, "{} bytes back", out.stdout.len());
    assert!(l.wait_log("ended with exit status 0", STEP), "{}", l.log());
}

#[test]
fn wrong_certificates_are_refused_with_clear_errors() {
    let dir = TempDir::new("tls-wrong");
    let pki = make_pki(&dir, "c", &["localhost"]);
    let other = make_pki(&dir, "d", &["localhost"]);
    // Signed by a CA the client does not trust.
    let l = listen_with(
        &[
            "-k",
            "--tls-cert",
            path(&pki.cert),
            "--tls-key",
            path(&pki.key),
        ],
        b"",
        &dir,
    );
    let addr = format!("tls://localhost:{}", port(&l));
    let out = connect(&[&addr, "--cacert", path(&other.ca)], b"secret\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("TLS handshake with localhost failed"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    // The right CA, the wrong name (the certificate has no 127.0.0.1).
    let out = connect(
        &[
            &format!("tls://127.0.0.1:{}", port(&l)),
            "--cacert",
            path(&pki.ca),
        ],
        b"secret\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not valid for name"),
        "{}",
        stderr(&out)
    );
    // Not in the system roots either.
    let out = connect(&[&addr], b"secret\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid peer certificate"),
        "{}",
        stderr(&out)
    );
    // Nothing reached the listener's stdout, and it still serves a good client.
    let out = connect(&[&addr, "--cacert", path(&pki.ca)], b"welcome\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!l.stdout.lock().unwrap().contains("secret"));
    assert!(l.log().contains("TLS handshake failed"), "{}", l.log());
}

#[test]
fn self_signed_needs_insecure_and_prints_its_fingerprint() {
    let dir = TempDir::new("tls-self");
    let mut l = listen_with(&["--tls-self-signed"], b"hello\n", &dir);
    let log = l.log();
    let fp = log
        .lines()
        .find_map(|l| l.strip_prefix("tls certificate sha256 fingerprint "))
        .unwrap_or_else(|| panic!("no fingerprint in {log}"));
    assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
    assert!(fp
        .split(':')
        .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok()));
    let out = connect(
        &[
            &format!("tls://localhost:{}", port(&l)),
            "--insecure",
            "--alpn",
            "h2,http/1.1",
        ],
        b"hi\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello\n");
    // The listener offers no ALPN, so none is chosen.
    assert!(stderr(&out).contains("tls alpn (none)"), "{}", stderr(&out));
    assert!(l.wait_exit(STEP).success());
}

#[test]
fn relay_terminates_and_originates_tls() {
    let dir = TempDir::new("tls-relay");
    let pki = make_pki(&dir, "e", &["localhost"]);
    let upper = Served::start(&["upper", "--listen", "127.0.0.1:0"]);
    // TLS in front: clients speak TLS to the relay, which speaks plain TCP.
    let mut cmd = Command::new(util::netkit());
    cmd.args(["relay", "127.0.0.1:0", &upper.addr("tcp")])
        .args(["--tls-cert", path(&pki.cert), "--tls-key", path(&pki.key)]);
    let front = Served::spawn(cmd, 1);
    let out = connect(
        &[
            &format!("tls://localhost:{}", port(&front)),
            "--cacert",
            path(&pki.ca),
        ],
        b"through tls\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"THROUGH TLS\n");
    // TLS behind: plain clients, the relay connects with TLS to the front relay.
    let mut cmd = Command::new(util::netkit());
    cmd.args([
        "relay",
        "127.0.0.1:0",
        &format!("tls://localhost:{}", port(&front)),
        "--cacert",
        path(&pki.ca),
    ]);
    let back = Served::spawn(cmd, 1);
    let mut c = TcpStream::connect(back.addr("tcp")).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"plain in, plain out\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "PLAIN IN, PLAIN OUT\n");
    // Many sessions at once through both relays, each intact.
    let clients: Vec<_> = (0..40)
        .map(|i| {
            let addr = back.addr("tcp");
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(STEP)).unwrap();
                let line = format!("client {i} {}\n", "x".repeat(i * 1000));
                c.write_all(line.as_bytes()).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut got = String::new();
                c.read_to_string(&mut got).unwrap();
                assert_eq!(got, line.to_uppercase());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // A target whose certificate the relay does not trust: the client is
    // closed and the relay says why.
    let other = make_pki(&dir, "other", &["localhost"]);
    let mut cmd = Command::new(util::netkit());
    cmd.args([
        "relay",
        "127.0.0.1:0",
        &format!("tls://localhost:{}", port(&front)),
        "--cacert",
        path(&other.ca),
    ]);
    let distrust = Served::spawn(cmd, 1);
    let mut c = TcpStream::connect(distrust.addr("tcp")).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    let _ = c.write_all(b"never delivered\n");
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert!(got.is_empty());
    assert!(
        distrust.wait_log("TLS handshake failed: invalid peer certificate", STEP),
        "{}",
        distrust.log()
    );
}

/// A client written like the seeds', with Python's `ssl`: connects to
/// localhost:PORT verifying against CA, prints its own port, sends LINE and
/// closes (with close_notify).
const PY_TLS_CLIENT: &str = r#"
import socket, ssl, sys
port, ca, line = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        print(s.getsockname()[1])
        s.sendall(line.encode() + b"\n")
        s.unwrap()
"#;

#[test]
fn serve_runs_services_over_tls_in_every_mode_and_they_see_the_client() {
    let dir = TempDir::new("tls-serve");
    let pki = make_pki(&dir, "s", &["localhost"]);
    let tls = ["--tls-cert", path(&pki.cert), "--tls-key", path(&pki.key)];
    for mode in util::MODES {
        let mut args = vec!["upper", "--mode", mode, "--listen", "127.0.0.1:0"];
        args.extend(tls);
        let mut served = Served::start(&args);
        let addr = format!("tls://localhost:{}", port(&served));
        for i in 0..2 {
            let out = connect(
                &[&addr, "--cacert", path(&pki.ca)],
                format!("line {i}\n").as_bytes(),
            );
            assert!(out.status.success(), "{mode}: {}", stderr(&out));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("LINE {i}\n"),
                "{mode}"
            );
        }
        served.signal(libc::SIGINT);
        assert!(served.wait_exit(STEP).success(), "{}", served.log());
        if *mode == "fork" {
            continue; // logger shares one log across connections: not in fork mode
        }
        // logger, over TLS, logs the Python client's own address.
        let mut args = vec!["logger", "--mode", mode, "--listen", "127.0.0.1:0"];
        args.extend(tls);
        let mut served = Served::start(&args);
        let mut cmd = Command::new("python3");
        cmd.args(["-c", PY_TLS_CLIENT])
            .arg(port(&served).to_string())
            .arg(path(&pki.ca))
            .arg("hello from python");
        let out = run_bounded(cmd, b"", STEP);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let client_port = text.lines().next().unwrap().trim().to_string();
        let needle = format!("Got connection from ('127.0.0.1', {client_port})");
        let deadline = std::time::Instant::now() + STEP;
        while !served.stdout.lock().unwrap().contains("hello from python") {
            assert!(
                std::time::Instant::now() < deadline,
                "{mode}: {}",
                served.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let logged = served.stdout.lock().unwrap().clone();
        assert!(logged.contains(&needle), "{mode}: {logged}");
        served.signal(libc::SIGINT);
        assert!(served.wait_exit(STEP).success(), "{}", served.log());
    }
    let mut served = Served::start(&["daytime", "--listen", "127.0.0.1:0", "--tls-self-signed"]);
    assert!(served.log().contains("tls certificate sha256 fingerprint"));
    let out = connect(
        &[&format!("tls://localhost:{}", port(&served)), "--insecure"],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    served.signal(libc::SIGINT);
    assert!(served.wait_exit(STEP).success(), "{}", served.log());
}

#[test]
fn serve_exec_speaks_tls_too() {
    let dir = TempDir::new("tls-exec");
    let pki = make_pki(&dir, "e", &["localhost"]);
    let mut served = Served::start(&[
        "--exec",
        "tr a-z A-Z",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        path(&pki.cert),
        "--tls-key",
        path(&pki.key),
    ]);
    let addr = format!("tls://localhost:{}", port(&served));
    let out = connect(&[&addr, "--cacert", path(&pki.ca)], b"exec over tls\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "EXEC OVER TLS\n");
    served.signal(libc::SIGKILL);
    served.wait_exit(STEP);
}

#[test]
fn tls_options_are_checked() {
    let out = connect(&["tls://unix:///tmp/x.sock"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("tls:// takes HOST:PORT"),
        "{}",
        stderr(&out)
    );
    let out = connect(
        &["tls://127.0.0.1:1", "--cacert", "/nonexistent/ca.pem"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/ca.pem"),
        "{}",
        stderr(&out)
    );
    let mut cmd = Command::new(util::netkit());
    cmd.args(["listen", "127.0.0.1:0", "--tls-cert", "x.pem"]);
    let out = run_bounded(cmd, b"", STEP);
    assert_eq!(out.status.code(), Some(2));
}

#[cfg(feature = "peers")]
mod peers {
    use super::*;
    use std::process::Stdio;
    use std::thread;
    use std::time::{Duration, Instant};

    fn tool(name: &str) -> Command {
        let ok = Command::new(name)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(ok, "{name} is not installed (needed by the peers feature)");
        Command::new(name)
    }

    #[test]
    fn openssl_s_client_sees_the_printed_fingerprint() {
        let dir = TempDir::new("tls-sclient");
        // listen's input ends only once s_client's line arrived: s_client stops
        // reading its own input when the server closes.
        let input = dir.path("listen-stdin");
        std::fs::write(&input, b"to openssl\n").unwrap();
        let seen = dir.path("listen-stdout");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(concat!(
                "{ cat \"$NK_STDIN\"; i=0; while ! grep -q 'from openssl' \"$NK_OUT\" ",
                "&& [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; } ",
                "| \"$0\" listen 127.0.0.1:0 --tls-self-signed | tee \"$NK_OUT\""
            ))
            .arg(util::netkit())
            .env("NK_STDIN", input)
            .env("NK_OUT", &seen);
        std::fs::write(&seen, b"").unwrap();
        let mut l = Served::spawn(cmd, 1);
        let log = l.log();
        let fp = log
            .lines()
            .find_map(|l| l.strip_prefix("tls certificate sha256 fingerprint "))
            .unwrap()
            .to_string();
        let mut cmd = tool("openssl");
        cmd.args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", port(&l)),
            "-servername",
            "localhost",
            "-ign_eof",
        ]);
        let out = run_bounded(cmd, b"from openssl\n", STEP);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("to openssl"), "{text}");
        assert!(l.wait_exit(STEP).success());
        assert_eq!(*l.stdout.lock().unwrap(), "from openssl\n");
        // The certificate s_client printed has the fingerprint netkit printed.
        let pem_start = text.find("-----BEGIN CERTIFICATE-----").unwrap();
        let pem_end = text.find("-----END CERTIFICATE-----").unwrap() + 25;
        let mut x509 = tool("openssl");
        x509.args(["x509", "-noout", "-fingerprint", "-sha256"]);
        let out = run_bounded(x509, &text.as_bytes()[pem_start..pem_end], STEP);
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.trim().ends_with(&format!("={fp}")), "{shown} vs {fp}");
    }

    #[test]
    fn curl_gets_files_over_https_from_serve_http_in_reactor_and_threads_modes() {
        let dir = TempDir::new("tls-http");
        let pki = make_pki(&dir, "w", &["localhost"]);
        let root = dir.path("www");
        std::fs::create_dir(&root).unwrap();
        // Bigger than one TLS record and one producer call: sent in many chunks.
        let body: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("big.bin"), &body).unwrap();
        for mode in ["reactor", "threads"] {
            let mut served = Served::start(&[
                "http",
                "--mode",
                mode,
                "--root",
                path(&root),
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                path(&pki.cert),
                "--tls-key",
                path(&pki.key),
            ]);
            let url = format!("https://localhost:{}/big.bin", port(&served));
            let mut cmd = tool("curl");
            cmd.args(["-sS", "--cacert", path(&pki.ca), &url, &url]);
            let out = run_bounded(cmd, b"", STEP);
            assert!(out.status.success(), "{mode}: {}", stderr(&out));
            assert_eq!(out.stdout.len(), 2 * body.len(), "{mode}");
            assert!(out.stdout[..body.len()] == body[..], "{mode}: body differs");
            assert!(out.stdout[body.len()..] == body[..], "{mode}: body differs");
            let mut cmd = tool("curl");
            cmd.args(["-sS", "-r", "10-19", "--cacert", path(&pki.ca), &url]);
            let out = run_bounded(cmd, b"", STEP);
            assert_eq!(out.stdout, &body[10..20], "{mode}");
            served.signal(libc::SIGINT);
            assert!(served.wait_exit(STEP).success(), "{}", served.log());
        }
    }

    #[test]
    fn openssl_s_client_talks_to_serve_in_reactor_mode() {
        let dir = TempDir::new("tls-sclient-serve");
        let pki = make_pki(&dir, "o", &["localhost"]);
        // s_client keeps reading after its input ends (-quiet implies -ign_eof):
        // the idle timeout ends the session.
        let mut served = Served::start(&[
            "upper",
            "--idle-timeout",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            path(&pki.cert),
            "--tls-key",
            path(&pki.key),
        ]);
        let mut cmd = tool("openssl");
        cmd.args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{}", port(&served)),
            "-servername",
            "localhost",
            "-CAfile",
            path(&pki.ca),
            "-verify_return_error",
        ]);
        let out = run_bounded(cmd, b"shout please\n", STEP);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("SHOUT PLEASE"), "{text} {}", stderr(&out));
        served.signal(libc::SIGINT);
        assert!(served.wait_exit(STEP).success(), "{}", served.log());
    }

    #[test]
    fn curl_fetches_over_https_from_listen() {
        let dir = TempDir::new("tls-curl");
        let pki = make_pki(&dir, "f", &["localhost"]);
        let response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, curl!\n";
        let l = listen_with(
            &["--tls-cert", path(&pki.cert), "--tls-key", path(&pki.key)],
            response,
            &dir,
        );
        let mut cmd = tool("curl");
        cmd.args(["-sS", "--http1.1", "--cacert", path(&pki.ca)])
            .arg(format!("https://localhost:{}/", port(&l)));
        let out = run_bounded(cmd, b"", STEP);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(out.stdout, b"hello, curl!\n");
        let deadline = Instant::now() + STEP;
        while !l.stdout.lock().unwrap().contains("GET / HTTP/1.1") {
            assert!(Instant::now() < deadline, "{}", l.stdout.lock().unwrap());
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn connect_to_openssl_s_server_with_alpn_and_a_refused_ca() {
        let dir = TempDir::new("tls-sserver");
        let pki = make_pki(&dir, "g", &["localhost"]);
        let other = make_pki(&dir, "h", &["localhost"]);
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = free.local_addr().unwrap().port();
        drop(free);
        let mut server = tool("openssl")
            .args([
                "s_server",
                "-accept",
                &p.to_string(),
                "-cert",
                path(&pki.cert),
                "-key",
                path(&pki.key),
            ])
            .args(["-alpn", "h2", "-quiet", "-naccept", "3"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("tls://localhost:{p}");
        // Wait until s_server accepts connections (this probe is one of the three).
        let deadline = Instant::now() + STEP;
        while TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            thread::sleep(Duration::from_millis(50));
        }
        let out = connect(&[&addr, "--cacert", path(&other.ca)], b"x\n");
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("UnknownIssuer"), "{}", stderr(&out));
        let mut cmd = Command::new(util::netkit());
        cmd.args([
            "connect",
            &addr,
            "--cacert",
            path(&pki.ca),
            "--alpn",
            "http/1.1,h2",
            "--eof",
            "wait:1s",
        ]);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"to s_server\n")
            .unwrap();
        let mut got = String::new();
        let mut line = [0u8; 12];
        server
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut line)
            .unwrap();
        got.push_str(&String::from_utf8_lossy(&line));
        assert_eq!(got, "to s_server\n");
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("tls alpn h2"), "{}", stderr(&out));
        let _ = server.kill();
        let _ = server.wait();
    }
}
