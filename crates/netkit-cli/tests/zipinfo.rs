//! `netkit zipinfo` against archives written by Python's zipfile at test time (stored,
//! deflated, bzip2, lzma, empty, directory, UTF-8 and CP437 names, data descriptors,
//! comment, prepended stub, ZIP64), compared with `zipfile.ZipFile.infolist()` and
//! `python3 -m zipfile -l`; and the errors for files that are not ZIP archives.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::Command as Cmd;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("netkit-zipinfo-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn py(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script)
}

fn python(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("python3").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "python3 {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Where the name starts in a `netkit zipinfo` line.
const NAME_COLUMN: usize = 8 + 2 + 12 + 2 + 12 + 2 + 9 + 1;

/// One listed entry: (name, crc, compressed, uncompressed, method).
type Row = (String, u32, u64, u64, String);

fn zipinfo(path: &Path) -> Vec<Row> {
    let out = Cmd::cargo_bin("netkit")
        .unwrap()
        .arg("zipinfo")
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", path.display());
    assert!(stderr.is_empty(), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CRC-32") && header.ends_with("Name"),
        "{header}"
    );
    lines
        .map(|l| {
            // Fixed columns: CRC (8), sizes (12 each), method (9), then the name.
            let fields: Vec<&str> = l[..NAME_COLUMN].split_whitespace().collect();
            assert_eq!(fields.len(), 4, "{l}");
            (
                l[NAME_COLUMN..].to_string(),
                u32::from_str_radix(fields[0], 16).unwrap(),
                fields[1].parse().unwrap(),
                fields[2].parse().unwrap(),
                fields[3].to_string(),
            )
        })
        .collect()
}

fn method(n: u64) -> &'static str {
    match n {
        0 => "stored",
        8 => "deflated",
        12 => "bzip2",
        14 => "lzma",
        _ => panic!("method {n}"),
    }
}

/// Name and size of each entry as `python3 -m zipfile -l` lists them.
fn python_listing(path: &Path) -> Vec<(String, u64)> {
    let text = python(&[
        "-m".as_ref(),
        "zipfile".as_ref(),
        "-l".as_ref(),
        path.as_os_str(),
    ]);
    text.lines()
        .skip(1)
        .map(|l| {
            // '%-46s %s %12d' % (name, "YYYY-MM-DD HH:MM:SS", size)
            let size = l.rsplit(' ').next().unwrap().parse().unwrap();
            let trimmed = l.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end();
            let name = trimmed[..trimmed.len() - 19].trim_end().to_string();
            (name, size)
        })
        .collect()
}

#[test]
fn lists_what_python_zipfile_wrote() {
    let dir = TempDir::new("ok");
    let made = python(&[py("make_zips.py").as_os_str(), dir.0.as_os_str()]);
    let archives: Vec<&str> = made.lines().collect();
    assert!(archives.len() >= 7, "{archives:?}");
    let mut saw_descriptor = false;
    let mut saw_big = false;
    for name in archives {
        let path = dir.0.join(name);
        let rows = zipinfo(&path);
        let want: Vec<serde_json::Value> =
            python(&[py("zip_entries.py").as_os_str(), path.as_os_str()])
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        assert_eq!(rows.len(), want.len(), "{name}: {rows:?}");
        for (row, w) in rows.iter().zip(&want) {
            let expect: Row = (
                w["name"].as_str().unwrap().to_string(),
                w["crc"].as_u64().unwrap() as u32,
                w["compress_size"].as_u64().unwrap(),
                w["file_size"].as_u64().unwrap(),
                method(w["compress_type"].as_u64().unwrap()).to_string(),
            );
            assert_eq!(row, &expect, "{name}");
            saw_descriptor |= w["flag_bits"].as_u64().unwrap() & 8 != 0 && expect.3 > 0;
            saw_big |= expect.3 > 10_000;
        }
        let listing = python_listing(&path);
        let ours: Vec<(String, u64)> = rows.iter().map(|r| (r.0.clone(), r.3)).collect();
        assert_eq!(ours, listing, "{name} vs python3 -m zipfile -l");
    }
    assert!(saw_descriptor && saw_big);
    // The specific names that exercise the decoders.
    let names: Vec<String> = zipinfo(&dir.0.join("basic.zip"))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(
        names.contains(&"dir/café naïve ☃.txt".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"dir/".to_string()));
    let cp437 = zipinfo(&dir.0.join("cp437.zip"));
    assert_eq!(cp437[0].0, "café-ß.txt");
}

fn zipinfo_fails(path: &Path, needle: &str) {
    let out = Cmd::cargo_bin("netkit")
        .unwrap()
        .arg("zipinfo")
        .arg(path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
    assert!(out.stdout.is_empty());
    assert!(err.starts_with("netkit: "), "{err}");
    assert!(
        err.contains(needle),
        "{}: {err:?} lacks {needle:?}",
        path.display()
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_archives_are_clear_errors() {
    let dir = TempDir::new("bad");
    python(&[py("make_zips.py").as_os_str(), dir.0.as_os_str()]);
    let good = std::fs::read(dir.0.join("basic.zip")).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    zipinfo_fails(&write("empty-file.zip", b""), "too short");
    zipinfo_fails(&write("text.zip", &[b'x'; 5000]), "not a ZIP archive");
    zipinfo_fails(
        &write("half.zip", &good[..good.len() / 2]),
        "not a ZIP archive",
    );
    // The end record survives but the start of the archive is gone.
    zipinfo_fails(
        &write("headless.zip", &good[good.len() - 200..]),
        "truncated or corrupt",
    );
    // The end record is cut short: its comment length points past the end.
    zipinfo_fails(
        &write("cut-eocd.zip", &good[..good.len() - 3]),
        "not a ZIP archive",
    );
    // A central directory entry with a broken signature.
    let mut bad = good.clone();
    let cd = good.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bad[cd + 3] = 9;
    zipinfo_fails(&write("bad-sig.zip", &bad), "bad signature");
    zipinfo_fails(&dir.0.join("missing.zip"), "missing.zip");
    // ZIP64: a locator pointing at nothing.
    let z64 = std::fs::read(dir.0.join("zip64.zip")).unwrap();
    let loc = z64.windows(4).rposition(|w| w == b"PK\x06\x06").unwrap();
    let mut broken = z64.clone();
    broken[loc + 2] = 0;
    zipinfo_fails(&write("bad-zip64.zip", &broken), "ZIP64");
}
