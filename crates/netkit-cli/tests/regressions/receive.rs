//! Regressions in `serve receive`: log injection through file names, partial
//! uploads kept forever, and headers that never finish.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use netkit::services::transfer::{Header, Reply, Status, FLAG_NO_OFFER, REPLY_SIZE};

use crate::util::{Served, TempDir, MODES, STEP};

fn crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b);
    h.finalize()
}

fn start(mode: &str, root: &Path, extra: &[&str]) -> Served {
    let root = root.to_str().unwrap();
    let mut args = vec![
        "receive",
        "--mode",
        mode,
        "--root",
        root,
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Served::start(&args)
}

fn connect(server: &Served) -> TcpStream {
    let (host, port) = server.host_port();
    let s = TcpStream::connect((host.as_str(), port)).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s
}

/// Reads one reply, or `None` at end of file.
fn reply(s: &mut TcpStream) -> Option<Reply> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Some((r, _)) = Reply::decode(&buf).unwrap() {
            return Some(r);
        }
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        assert!(buf.len() <= REPLY_SIZE + 1024);
    }
}

/// A file and its header, sent without waiting for an offer.
fn upload(path: &[u8], body: &[u8]) -> Vec<u8> {
    let mut h = Header::new(path.to_vec(), body.len() as u64, 0o644, 0, crc(body));
    h.flags = FLAG_NO_OFFER;
    let mut wire = h.encode().unwrap();
    wire.extend_from_slice(body);
    wire
}

/// A partial file of `len` bytes, last written `age` ago, with its sidecar.
fn abandoned_part(root: &Path, n: u8, len: usize, age: Duration) -> std::path::PathBuf {
    let part = root.join(format!(".netkit-part-00000000000000{n:02x}"));
    fs::write(&part, vec![b'p'; len]).unwrap();
    fs::write(
        root.join(format!(".netkit-part-00000000000000{n:02x}.info")),
        b"x",
    )
    .unwrap();
    let when = SystemTime::now() - age;
    fs::File::options()
        .write(true)
        .open(&part)
        .unwrap()
        .set_modified(when)
        .unwrap();
    part
}

/// A file name with a newline used to be logged raw, so a client could forge
/// a log line of its own (`ERROR ...`).
#[test]
fn receive_log_escapes_control_characters_in_file_names() {
    let dir = TempDir::new("rx-inject");
    let served = start("reactor", &dir.0, &[]);
    let mut s = connect(&served);
    s.write_all(&upload(b"evil\nERROR forged line\x1b[2J", b"body"))
        .unwrap();
    let r = reply(&mut s).expect("a reply");
    assert!(
        served.wait_log("forged", Duration::from_secs(5)),
        "{}",
        served.log()
    );
    let log = served.log();
    assert!(
        !log.lines().any(|l| l.starts_with("ERROR forged")),
        "a forged line reached the log:\n{log}"
    );
    assert!(
        !log.contains('\x1b'),
        "a raw escape reached the log:\n{log}"
    );
    assert!(log.contains("evil\\x0aERROR forged line\\x1b[2J"), "{log}");
    // The reply's message is escaped the same way.
    assert!(!r.message.contains('\n'), "{:?}", r.message);
}

/// A client that sent part of a header and then nothing used to hold its
/// connection forever; the header now has the HTTP header timeout.
#[test]
fn receive_times_out_a_stalled_header_in_every_mode() {
    for mode in MODES {
        let dir = TempDir::new("rx-stall");
        let served = start(mode, &dir.0, &["--header-timeout", "1s"]);
        let mut s = connect(&served);
        let wire = upload(b"slow.txt", b"body");
        s.write_all(&wire[..7]).unwrap();
        let began = Instant::now();
        let r = reply(&mut s).expect("a reply before the close");
        assert_eq!(r.status, Status::BadHeader, "{mode}: {r:?}");
        assert!(r.message.contains("no complete header"), "{mode}: {r:?}");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(
            began.elapsed() < STEP,
            "{mode}: closed only after {:?}",
            began.elapsed()
        );
        // Everyone else is still served.
        let mut ok = connect(&served);
        ok.write_all(&upload(b"fine.txt", b"fine")).unwrap();
        assert_eq!(reply(&mut ok).unwrap().status, Status::Ok, "{mode}");
        assert_eq!(fs::read(dir.path("fine.txt")).unwrap(), b"fine");
    }
}

/// Abandoned partial uploads used to be kept forever; those older than
/// `--partial-ttl` are removed (at start and as uploads come in).
#[test]
fn receive_removes_partial_uploads_older_than_the_ttl() {
    let dir = TempDir::new("rx-ttl");
    let old = abandoned_part(&dir.0, 1, 1000, Duration::from_secs(3 * 3600));
    let young = abandoned_part(&dir.0, 2, 1000, Duration::from_secs(600));
    let served = start("threads", &dir.0, &["--partial-ttl", "1h"]);
    assert!(!old.exists(), "the expired partial file is still there");
    assert!(!dir.path(".netkit-part-0000000000000001.info").exists());
    assert!(young.exists(), "a partial file within the TTL was removed");
    assert!(served.log().contains("--partial-ttl"), "{}", served.log());
}

/// The total that abandoned partial uploads hold is bounded by
/// `--partial-max`: the oldest go first.
#[test]
fn receive_bounds_the_total_of_abandoned_partial_uploads() {
    let dir = TempDir::new("rx-max");
    let mib = 1 << 20;
    let parts: Vec<_> = (0..4u8)
        .map(|n| abandoned_part(&dir.0, n, mib, Duration::from_secs(600 - 60 * u64::from(n))))
        .collect();
    let _served = start("reactor", &dir.0, &["--partial-max", "2MiB"]);
    let kept: Vec<bool> = parts.iter().map(|p| p.exists()).collect();
    assert_eq!(kept, [false, false, true, true], "oldest first");
}

/// Four abandoned uploads used to fill a small disk so that a legitimate
/// upload failed; the oldest partial files now make way for it. Mounting a
/// small tmpfs needs root, so this runs with the `peers` tests (CI runs as root).
#[cfg(feature = "peers")]
#[test]
fn receive_evicts_abandoned_partials_when_the_disk_is_full() {
    let dir = TempDir::new("rx-disk");
    let mnt = dir.path("small");
    fs::create_dir(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=5m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mounting a 5 MiB tmpfs needs root");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    for n in 0..4u8 {
        abandoned_part(
            &mnt,
            n,
            1200 << 10,
            Duration::from_secs(600 - 60 * u64::from(n)),
        );
    }
    let served = start("reactor", &mnt, &[]);
    let body = vec![b'z'; 2 << 20];
    let mut s = connect(&served);
    s.write_all(&upload(b"legit.bin", &body)).unwrap();
    let r = reply(&mut s).expect("a reply");
    assert_eq!(r.status, Status::Ok, "{r:?}\n{}", served.log());
    assert_eq!(fs::read(mnt.join("legit.bin")).unwrap().len(), body.len());
}
