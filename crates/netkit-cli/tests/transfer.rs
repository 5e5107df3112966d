//! `netkit send` and `netkit serve receive` over real sockets: trees of files in
//! every mode (the reactor through the library), a 200 MiB file, resume after a
//! killed sender, a Python client written with `socket` and `struct` only, and
//! hostile headers that must leave nothing behind.

mod util;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use netkit::services::transfer::{Header, Reply, ReplyKind, Status, FLAG_NO_OFFER, REPLY_SIZE};
use util::{netkit, python, run_bounded, Served, TempDir, MODES, STEP};

/// Longest a whole `netkit send` may take in these tests.
const SEND_LIMIT: Duration = Duration::from_secs(120);

fn crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b);
    h.finalize()
}

/// Deterministic bytes that differ from block to block.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The test tree: empty, binary, nested, names with spaces and non-ASCII.
fn make_tree(src: &Path) -> Vec<&'static str> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("bin/random.bin", pattern(3 * 1024 * 1024 + 17, 1)),
        ("bin/zeros and ones", [0u8, 1, 0, 255].repeat(1000)),
        ("with space/naïve café.txt", "crème brûlée\n".into()),
        ("日本/ファイル.dat", pattern(4096, 2)),
        ("deep/a/b/c/d.txt", b"deep\n".to_vec()),
    ];
    for (name, data) in &files {
        let p = src.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    }
    files.iter().map(|(n, _)| *n).collect()
}

/// Runs `netkit send ARGS...` in `cwd`.
fn send(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(netkit());
    cmd.current_dir(cwd).arg("send").args(args);
    run_bounded(cmd, b"", SEND_LIMIT)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every entry under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Compares two files chunk by chunk (they may be large).
fn same_content(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

fn assert_tree_arrived(src: &Path, root: &Path, names: &[&str]) {
    for name in names {
        let (a, b) = (src.join(name), root.join("src").join(name));
        assert!(same_content(&a, &b), "{name} differs");
    }
    assert!(
        !listing(root).iter().any(|p| p.contains(".netkit-part-")),
        "{:?}",
        listing(root)
    );
}

fn start_receiver(mode: &str, root: &Path, extra: &[&str]) -> Served {
    let mut args = vec![
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--mode",
        mode,
        "--root",
        root.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Served::start(&args)
}

#[test]
fn a_tree_arrives_byte_identical_in_every_mode() {
    for mode in MODES {
        let tmp = TempDir::new("xfer-tree");
        let (src, root) = (tmp.path("src"), tmp.path("root"));
        fs::create_dir_all(&root).unwrap();
        let names = make_tree(&src);
        let server = start_receiver(mode, &root, &[]);
        let out = send(&tmp.0, &[&server.addr("tcp"), "src", "--recursive"]);
        assert!(
            out.status.success(),
            "{mode}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_tree_arrived(&src, &root, &names);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("sent    src/日本/ファイル.dat (4096 bytes)"),
            "{stdout}"
        );
        assert!(stdout.contains("6 of 6 files sent"), "{stdout}");
        // Mode bits and mtime travel too.
        let (a, b) = (
            fs::metadata(src.join("bin/random.bin")).unwrap(),
            fs::metadata(root.join("src/bin/random.bin")).unwrap(),
        );
        assert_eq!(
            a.modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            b.modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        );
    }
}

#[test]
fn the_reactor_runs_the_same_receiver() {
    use netkit::reactor::{Reactor, ReactorConfig};
    use netkit::services::{ReceiveConfig, ReceiveFactory};
    let tmp = TempDir::new("xfer-reactor");
    let (src, root) = (tmp.path("src"), tmp.path("root"));
    fs::create_dir_all(&root).unwrap();
    let names = make_tree(&src);
    let mut reactor = Reactor::new(ReactorConfig {
        workers: 1,
        ..ReactorConfig::default()
    })
    .unwrap();
    let factory = ReceiveFactory::new(ReceiveConfig::new(&root)).unwrap();
    let addr = reactor
        .listen(netkit::net::Address::parse("127.0.0.1:0").unwrap(), factory)
        .unwrap();
    let handle = reactor.handle();
    let runner = thread::spawn(move || reactor.run());
    let out = send(&tmp.0, &[&addr.to_string(), "src/**/*"]);
    handle.shutdown();
    runner.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_tree_arrived(&src, &root, &names);
}

#[test]
fn unix_sockets_work_and_existing_files_are_refused_unless_overwrite() {
    let tmp = TempDir::new("xfer-unix");
    let root = tmp.path("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(tmp.path("a.txt"), b"new").unwrap();
    fs::write(tmp.path("b.txt"), b"b").unwrap();
    fs::write(root.join("a.txt"), b"old").unwrap();
    let sock = format!("unix://{}", tmp.path("r.sock").display());
    let server = Served::start(&[
        "receive",
        "--listen",
        &sock,
        "--root",
        root.to_str().unwrap(),
    ]);
    let out = send(&tmp.0, &[&server.addr("unix"), "a.txt", "b.txt"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAILED  a.txt: refused (exists)"),
        "{stdout}"
    );
    assert!(stdout.contains("sent    b.txt (1 bytes)"), "{stdout}");
    assert!(text(&out.stderr).contains("netkit: 1 of 2 files failed"));
    assert_eq!(fs::read(root.join("a.txt")).unwrap(), b"old");
    drop(server);

    let server = Served::start(&[
        "receive",
        "--listen",
        &sock,
        "--root",
        root.to_str().unwrap(),
        "--overwrite",
    ]);
    let out = send(&tmp.0, &[&server.addr("unix"), "*.txt"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(fs::read(root.join("a.txt")).unwrap(), b"new");
}

#[test]
fn a_200_mib_file_arrives_intact() {
    let tmp = TempDir::new("xfer-big");
    let root = tmp.path("root");
    fs::create_dir_all(&root).unwrap();
    let big = tmp.path("big.bin");
    {
        let mut f = fs::File::create(&big).unwrap();
        let block = pattern(1 << 20, 7);
        for i in 0..200u32 {
            f.write_all(&i.to_be_bytes()).unwrap();
            f.write_all(&block[4..]).unwrap();
        }
    }
    let server = start_receiver("threads", &root, &[]);
    let out = send(&tmp.0, &[&server.addr("tcp"), big.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("sent    big.bin (209715200 bytes)"));
    assert!(same_content(&big, &root.join("big.bin")));
}

/// Waits until a partial file under `root` holds at least `bytes`.
fn wait_for_part(root: &Path, bytes: u64) -> bool {
    let deadline = Instant::now() + STEP;
    while Instant::now() < deadline {
        let grown = fs::read_dir(root).unwrap().any(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(".netkit-part-")
                && !name.ends_with(".info")
                && e.metadata().unwrap().len() >= bytes
        });
        if grown {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_killed_transfer_leaves_no_file_and_resumes() {
    const SIZE: usize = 16 << 20;
    let tmp = TempDir::new("xfer-resume");
    let root = tmp.path("root");
    fs::create_dir_all(tmp.path("data")).unwrap();
    fs::create_dir_all(&root).unwrap();
    fs::write(tmp.path("data/big.bin"), pattern(SIZE, 3)).unwrap();
    let server = start_receiver("threads", &root, &[]);
    let addr = server.addr("tcp");

    let mut slow = Command::new(netkit())
        .current_dir(&tmp.0)
        .args(["send", &addr, "data/big.bin", "--limit-rate", "2MiB"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let grew = wait_for_part(&root, 2 << 20);
    slow.kill().unwrap();
    slow.wait().unwrap();
    assert!(grew, "no partial file grew");
    assert!(server.wait_log("kept for resume", STEP), "{}", server.log());
    assert!(!root.join("data").exists(), "nothing under the final name");

    let out = send(&tmp.0, &[&addr, "data/big.bin"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let at: u64 = stdout
        .split("resumed at ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resume in {stdout}"));
    assert!(at >= 2 << 20 && at < SIZE as u64, "{stdout}");
    assert!(
        stdout.contains(&format!("{} bytes on the wire", SIZE as u64 - at)),
        "{stdout}"
    );
    assert!(server.wait_log("resuming data/big.bin at", STEP));
    assert!(same_content(
        &tmp.path("data/big.bin"),
        &root.join("data/big.bin")
    ));
    assert_eq!(listing(&root), ["data", "data/big.bin"]);
}

#[test]
fn a_python_client_with_socket_and_struct_is_understood() {
    let tmp = TempDir::new("xfer-py");
    let root = tmp.path("root");
    fs::create_dir_all(&root).unwrap();
    let local = tmp.path("payload");
    fs::write(&local, pattern(200_000, 9)).unwrap();
    let server = start_receiver("threads", &root, &[]);
    let (host, port) = server.host_port();
    let port = port.to_string();
    let l = local.to_str().unwrap();
    let out = python(
        "transfer_client.py",
        &[
            &host,
            &port,
            &format!("py dir/файл.bin={l}"),
            &format!("second={l}"),
        ],
        STEP,
    );
    assert_eq!(
        text(&out.stdout),
        "py dir/файл.bin 0 stored\nsecond 0 stored\n"
    );
    let out = python(
        "transfer_client.py",
        &[&host, &port, "--no-offer", &format!("third={l}")],
        STEP,
    );
    assert_eq!(text(&out.stdout), "third 0 stored\n");
    for name in ["py dir/файл.bin", "second", "third"] {
        assert!(same_content(&local, &root.join(name)), "{name}");
    }
}

/// A raw connection for hostile headers.
struct Raw(TcpStream);

impl Raw {
    fn connect(server: &Served) -> Raw {
        let (host, port) = server.host_port();
        let s = TcpStream::connect((host.as_str(), port)).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        Raw(s)
    }
    fn reply(&mut self) -> Option<Reply> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if let Some((r, _)) = Reply::decode(&buf).unwrap() {
                return Some(r);
            }
            match self.0.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return None,
            }
            assert!(buf.len() <= REPLY_SIZE + 1024);
        }
    }
    fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0))
    }
}

fn hostile(path: &[u8], size: u64, crc32: u32, flags: u8) -> Vec<u8> {
    let mut h = Header::new(path.to_vec(), size, 0o644, 0, crc32);
    h.flags = flags;
    h.encode().unwrap()
}

#[test]
fn hostile_headers_are_refused_with_a_status_and_leave_nothing_outside() {
    let tmp = TempDir::new("xfer-hostile");
    let root = tmp.path("root");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(tmp.path("outside")).unwrap();
    std::os::unix::fs::symlink(tmp.path("outside"), root.join("escape")).unwrap();
    let server = start_receiver("threads", &root, &[]);

    // A path length past the limit: bad header, connection closed.
    let mut c = Raw::connect(&server);
    let mut h = hostile(b"x", 1, crc(b"x"), 0);
    h[6..8].copy_from_slice(&60_000u16.to_be_bytes());
    c.0.write_all(&h).unwrap();
    let r = c.reply().unwrap();
    assert_eq!((r.kind, r.status), (ReplyKind::Result, Status::BadHeader));
    assert!(r.message.contains("path length"), "{}", r.message);
    assert!(c.at_eof());

    // Wrong magic.
    let mut c = Raw::connect(&server);
    c.0.write_all(b"GET / HTTP/1.0\r\n\r\n....................")
        .unwrap();
    assert_eq!(c.reply().unwrap().status, Status::BadHeader);
    assert!(c.at_eof());

    // Traversal, absolute and symlinked paths: refused, the connection goes on.
    let mut c = Raw::connect(&server);
    for p in [
        &b"../../etc/evil"[..],
        b"/tmp/evil",
        b"escape/evil",
        b"a/./b",
        b"x\0y",
    ] {
        let mut wire = hostile(p, 4, crc(b"evil"), FLAG_NO_OFFER);
        wire.extend_from_slice(b"evil");
        c.0.write_all(&wire).unwrap();
        let r = c.reply().unwrap();
        assert_eq!(r.status, Status::BadPath, "{p:?}: {}", r.message);
    }

    // A body that does not match its checksum.
    c.0.write_all(&hostile(b"bad-crc", 4, crc(b"good"), 0))
        .unwrap();
    assert_eq!(c.reply().unwrap(), Reply::offer(0));
    c.0.write_all(b"evil").unwrap();
    let r = c.reply().unwrap();
    assert_eq!(r.status, Status::Checksum);
    assert!(r.message.contains("checksum mismatch"), "{}", r.message);

    // A size the body never reaches.
    c.0.write_all(&hostile(b"short", 100, 0, 0)).unwrap();
    assert_eq!(c.reply().unwrap(), Reply::offer(0));
    c.0.write_all(&[7u8; 50]).unwrap();
    c.0.shutdown(Shutdown::Write).unwrap();
    let r = c.reply().unwrap();
    assert_eq!((r.status, r.value), (Status::Short, 50));
    assert!(c.at_eof());

    assert!(fs::read_dir(tmp.path("outside")).unwrap().next().is_none());
    let left: Vec<String> = listing(&root)
        .into_iter()
        .filter(|p| !p.starts_with(".netkit-part-"))
        .collect();
    assert_eq!(
        left,
        ["escape"],
        "only the partial file of `short` may remain"
    );
    let mut names = listing(&tmp.0);
    names.retain(|n| !n.starts_with("root/"));
    assert_eq!(names, ["outside", "root"]);
}

#[test]
fn send_reports_each_file_and_fails_for_missing_ones() {
    let tmp = TempDir::new("xfer-cli");
    let root = tmp.path("root");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(tmp.path("dir/sub")).unwrap();
    fs::write(tmp.path("dir/sub/x"), b"x").unwrap();
    fs::write(tmp.path("one"), b"1").unwrap();
    let server = start_receiver("pool", &root, &[]);
    let addr = server.addr("tcp");
    let out = send(&tmp.0, &[&addr, "one", "nope", "*.none", "dir"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("sent    one (1 bytes)"), "{stdout}");
    assert!(stdout.contains("FAILED  nope: no such file"), "{stdout}");
    assert!(
        stdout.contains("FAILED  *.none: no file matches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILED  dir: is a directory (use --recursive)"),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("3 of 4 files failed"));

    // An absolute pattern is named from its base, never absolutely.
    let abs = format!("{}/dir/**/*", tmp.0.display());
    let out = send(&tmp.0, &[&addr, &abs]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(fs::read(root.join("sub/x")).unwrap(), b"x");

    // Nothing listens: every file fails, exit 1.
    drop(server);
    let out = send(&tmp.0, &[&addr, "one"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("cannot connect"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn serve_receive_refuses_a_root_it_cannot_create() {
    // A missing root is created (see the regression tests); one under a plain
    // file cannot be.
    let tmp = TempDir::new("xfer-noroot");
    let file = tmp.path("file");
    std::fs::write(&file, "not a directory").unwrap();
    let root = file.join("incoming");
    let mut cmd = Command::new(netkit());
    cmd.args(["serve", "receive", "--listen", "127.0.0.1:0", "--root"])
        .arg(&root);
    let out = run_bounded(cmd, b"", STEP);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot create"), "{err}");
    assert!(!root.exists());
}
