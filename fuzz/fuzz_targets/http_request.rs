//! The HTTP static-file Protocol (`netkit::http::StaticFiles`) fed arbitrary bytes,
//! in fuzzer-chosen chunks, through `protocol::testing`, over a small fixed tree
//! (a file, a directory with an index, and a symlink that leaves the root).
//! Never panics; every response starts with a status line; the bytes of the file
//! outside the root never appear in what is written.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use netkit::http::{HttpOptions, StaticFiles};
use netkit::protocol::testing::Script;
use netkit::protocol::{ConnInfo, Factory, PeerAddr};

#[path = "common.rs"]
mod common;

const SECRET: &[u8] = b"SECRET-OUTSIDE-THE-ROOT";

/// The fixture tree, made once per process: `www/` is the root; `secret` sits
/// beside it and `www/out` points at it.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("netkit-fuzz-http-{}", std::process::id()));
        let www = dir.join("www");
        std::fs::create_dir_all(www.join("sub")).unwrap();
        std::fs::write(dir.join("secret"), SECRET).unwrap();
        std::fs::write(www.join("a.txt"), b"hello\n").unwrap();
        std::fs::write(www.join("sub/index.html"), b"<p>index</p>").unwrap();
        let _ = std::os::unix::fs::symlink(dir.join("secret"), www.join("out"));
        www
    })
}

fuzz_target!(|input: &[u8]| {
    let (sizes, data) = input.split_at(input.len().min(4));
    let files = StaticFiles::new(root(), HttpOptions::default()).unwrap();
    let peer = PeerAddr::Inet(([127, 0, 0, 1], 40000).into());
    let conn = ConnInfo {
        peer: peer.clone(),
        local: PeerAddr::Inet(([127, 0, 0, 1], 8000).into()),
    };
    let mut script = Script::new().peer(peer);
    for chunk in common::chunks(data, sizes) {
        script = script.data(chunk);
    }
    let out = script.eof().run(files.build(&conn));
    if !out.written.is_empty() {
        assert!(out.written.starts_with(b"HTTP/1."), "{:?}", out.text());
    }
    assert!(
        !out.written.windows(SECRET.len()).any(|w| w == SECRET),
        "served a file outside the root"
    );
});
