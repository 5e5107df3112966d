//! `netkit serve echo --backend uring`: echo over TCP and a Unix socket, then
//! SIGTERM ends the server with exit status 0 and removes the socket file.

mod util;

use std::io::Read;
use std::net::Shutdown;

use netkit::net::{self, Address};

use util::{Served, TempDir, STEP};

fn echo_once(addr: &str, data: &[u8]) -> Vec<u8> {
    let s = net::connect(&Address::parse(addr).unwrap(), STEP).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.send_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    (&s).read_to_end(&mut got).unwrap();
    got
}

#[test]
fn serve_echo_with_the_uring_backend() {
    let dir = TempDir::new("serve-uring");
    let sock = format!("unix://{}", dir.path("s.sock").display());
    let mut served = Served::start(&[
        "echo",
        "--workers",
        "1",
        "--backend",
        "uring",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &sock,
    ]);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for kind in ["tcp", "unix"] {
        assert_eq!(echo_once(&served.addr(kind), &data), data, "{kind}");
    }
    served.signal(libc::SIGTERM);
    let st = served.wait_exit(STEP);
    assert!(st.success(), "{st}\n{}", served.log());
    assert!(!dir.path("s.sock").exists(), "unix socket file left behind");
}
