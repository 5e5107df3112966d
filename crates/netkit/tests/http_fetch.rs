//! `netkit::http::fetch` against the static file service on a real socket, and the
//! urllib seed run side by side with the same calls in Rust.

mod http_util;

use std::io::{BufRead, Read};
use std::path::Path;

use http_util::{python, serve, tree};
use netkit::http::fetch::{self, Client, FetchError, FetchOptions, Progress, Target};
use netkit::http::{HttpOptions, StaticFiles};

fn start(root: &Path) -> http_util::TestServer {
    serve(StaticFiles::new(root, HttpOptions::default()).unwrap())
}

#[test]
fn urlopen_reads_status_headers_and_lines() {
    let t = tree();
    std::fs::write(t.root.join("lines.txt"), "one\ntwo\r\nthree").unwrap();
    let srv = start(&t.root);
    let mut r = fetch::urlopen(&srv.url("/lines.txt")).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(14));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert!(r.url().ends_with("/lines.txt"));
    let mut first = String::new();
    r.read_line(&mut first).unwrap();
    assert_eq!(first, "one\n");
    let rest: Vec<String> = r.lines().map(|l| l.unwrap()).collect();
    assert_eq!(rest, ["two", "three"]);
    // Redirects are followed: /site -> /site/ -> index.html.
    let mut r = fetch::urlopen(&srv.url("/site")).unwrap();
    assert!(r.url().ends_with("/site/"), "{}", r.url());
    let mut body = String::new();
    r.read_to_string(&mut body).unwrap();
    assert!(body.contains("About"));
    match fetch::urlopen(&srv.url("/escape.txt")) {
        Err(FetchError::Status {
            status: 403, url, ..
        }) => assert!(url.ends_with("/escape.txt")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn urlretrieve_to_a_file_and_to_a_temporary_file() {
    let t = tree();
    let srv = start(&t.root);
    let out = t.dir.path().join("copy.bin");
    let mut seen = Vec::new();
    let (path, headers) =
        fetch::urlretrieve(&srv.url("/mid.bin"), Some(&out), |p: Progress| seen.push(p)).unwrap();
    assert_eq!(path, out);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(t.root.join("mid.bin")).unwrap()
    );
    assert!(headers
        .iter()
        .any(|(n, v)| n == "content-length" && v == "300000"));
    let last = seen.last().unwrap();
    assert_eq!((last.done, last.total), (300_000, Some(300_000)));
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
    let (tmp, _) = fetch::urlretrieve(&srv.url("/hello.txt"), None, |_| {}).unwrap();
    assert!(tmp.starts_with(std::env::temp_dir()));
    assert_eq!(tmp.extension().unwrap(), "txt");
    assert_eq!(std::fs::read_to_string(&tmp).unwrap(), "hello world\n");
    assert!(fetch::urlcleanup() >= 1);
    assert!(!tmp.exists());
}

#[test]
fn resume_against_the_static_service() {
    let t = tree();
    let srv = start(&t.root);
    let client = Client::new(FetchOptions::default()).unwrap();
    let target = t.dir.path().join("mid.copy");
    let data = std::fs::read(t.root.join("mid.bin")).unwrap();
    std::fs::write(fetch::part_path(&target), &data[..123_456]).unwrap();
    let done = client
        .download(
            &srv.url("/mid.bin"),
            &Target::File(target.clone()),
            true,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(done.resumed_from, 123_456);
    assert_eq!(done.size, 300_000);
    assert_eq!(std::fs::read(&target).unwrap(), data);
    // A .part that is already complete: the server answers 416 with the size.
    std::fs::write(fetch::part_path(&target), &data).unwrap();
    let done = client
        .download(
            &srv.url("/mid.bin"),
            &Target::File(target.clone()),
            true,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(done.size, 300_000);
    assert_eq!(std::fs::read(&target).unwrap(), data);
    // Into a directory, named after the URL.
    let done = client
        .download(
            &srv.url("/sub%20dir/%3Cb%3E%26.txt"),
            &Target::Dir(t.dir.path().to_path_buf()),
            false,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(done.path, t.dir.path().join("<b>&.txt"));
}

#[test]
fn the_urllib_seed_and_the_port_agree() {
    let t = tree();
    std::fs::write(
        t.root.join("page.html"),
        "<html><p>hi</p><a href=\"/about.html\" class=x>About</a></html>\n",
    )
    .unwrap();
    let srv = start(&t.root);
    let url = srv.url("/page.html");
    // The seed program itself (a copy of the Python 3 seed kept with the tests).
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/urllib_examples.py"
    ))
    .unwrap();
    let py_out = t.dir.path().join("py.html");
    let py = python(&script, &[&url, py_out.to_str().unwrap()]);
    let py_lines: Vec<&str> = py.lines().collect();

    // The Rust port's calls (examples/urllib_examples.rs).
    let rs_out = t.dir.path().join("rs.html");
    let mut page = fetch::urlopen(&url).unwrap();
    let text = String::from_utf8(page.read_all().unwrap()).unwrap();
    let re = regex::Regex::new(r#"(?is)<a href="([^"]+)".*?>about</a>"#).unwrap();
    let about = re
        .captures(&text)
        .unwrap()
        .get(1)
        .unwrap()
        .as_str()
        .to_string();
    let (saved, headers) = fetch::urlretrieve(&url, Some(&rs_out), |_| {}).unwrap();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .unwrap()
        .1
        .clone();

    assert_eq!(py_lines[0], format!("about link: {about}"));
    assert_eq!(py_lines[1], format!("saved {} {length}", py_out.display()));
    assert!(saved.ends_with("rs.html"));
    assert_eq!(
        std::fs::read(&py_out).unwrap(),
        std::fs::read(&rs_out).unwrap()
    );
}
