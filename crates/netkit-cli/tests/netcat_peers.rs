//! netkit next to the tools it replaces (`peers` feature: ncat and socat,
//! installed by `.ci/run`): the same scenario is run through netkit and through
//! the reference tool, and both must give the expected result — half-close passed
//! on by `relay` as by socat, `connect` and `listen` ending as ncat does.
#![cfg(feature = "peers")]

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use util::{run_bounded, Served, TempDir, STEP};

/// Checks a peer tool is installed; under `peers` a missing one is a failure.
fn tool(name: &str) -> Command {
    let ok = Command::new(name)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(ok, "{name} is not installed (needed by the peers feature)");
    Command::new(name)
}

/// A target that reads until end-of-file, then answers `got N bytes` and closes:
/// it answers only if the half-close reached it. Serves `conns` connections.
fn eof_target(conns: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for _ in 0..conns {
            let Ok((mut s, _)) = l.accept() else { return };
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            let _ = s.write_all(format!("got {} bytes\n", got.len()).as_bytes());
        }
    });
    port
}

/// A free port on 127.0.0.1, for tools that cannot report the one they bound.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects once `port` accepts, within STEP.
fn dial(port: u16) -> TcpStream {
    let deadline = Instant::now() + STEP;
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(STEP)).unwrap();
                return s;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "nothing listens on {port}: {e}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Sends `n` bytes, half-closes, and reads the answer to its end.
fn half_close_exchange(mut s: TcpStream, n: usize) -> String {
    s.write_all(&vec![b'x'; n]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn relay_passes_half_close_on_as_socat_does() {
    let target = eof_target(4);
    let port = free_port();
    let mut socat = tool("socat");
    socat
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg(format!("TCP:127.0.0.1:{target}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _socat = Killed(socat.spawn().unwrap());
    let mut cmd = Command::new(util::netkit());
    cmd.args(["relay", "127.0.0.1:0", &format!("127.0.0.1:{target}")]);
    let relay = Served::spawn(cmd, 1);
    let netkit_port = relay.host_port().1;
    for n in [0, 100_000] {
        let want = format!("got {n} bytes\n");
        assert_eq!(half_close_exchange(dial(port), n), want, "socat");
        assert_eq!(
            half_close_exchange(dial(netkit_port), n),
            want,
            "netkit relay"
        );
    }
}

#[test]
fn connect_half_closes_on_end_of_input_as_ncat_does() {
    let target = eof_target(2);
    let input = b"hello, server\n";
    let mut ncat = tool("ncat");
    ncat.args(["127.0.0.1", &target.to_string()]);
    let by_ncat = run_bounded(ncat, input, STEP);
    let mut netkit = Command::new(util::netkit());
    netkit.args(["connect", &format!("127.0.0.1:{target}")]);
    let by_netkit = run_bounded(netkit, input, STEP);
    for (who, out) in [("ncat", &by_ncat), ("netkit", &by_netkit)] {
        assert!(out.status.success(), "{who}: {:?}", out.status);
        assert_eq!(out.stdout, b"got 14 bytes\n", "{who}");
    }
}

#[test]
fn listen_takes_one_connection_as_ncat_l_does() {
    let dir = TempDir::new("ncat-listen");
    let reply = dir.path("reply");
    std::fs::write(&reply, b"pong\n").unwrap();
    let port = free_port();
    let mut ncat = tool("ncat");
    ncat.args(["-l", "127.0.0.1", &port.to_string()])
        .stdin(std::fs::File::open(&reply).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let ncat = ncat.spawn().unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" listen 127.0.0.1:0 < \"$NK_STDIN\"")
        .arg(util::netkit())
        .env("NK_STDIN", &reply);
    let mut listen = Served::spawn(cmd, 1);
    let netkit_port = listen.host_port().1;

    let from_ncat = exchange_ping(dial(port));
    let out = ncat.wait_with_output().unwrap();
    assert!(out.status.success(), "ncat -l: {:?}", out.status);
    assert_eq!(out.stdout, b"ping\n", "ncat -l stdout");
    assert_eq!(from_ncat, "pong\n", "ncat -l");

    let from_netkit = exchange_ping(dial(netkit_port));
    assert!(listen.wait_exit(STEP).success(), "{}", listen.log());
    assert_eq!(
        *listen.stdout.lock().unwrap(),
        "ping\n",
        "netkit listen stdout"
    );
    assert_eq!(from_netkit, "pong\n", "netkit listen");
}

/// Sends `ping`, half-closes, and reads what the listener sends until it closes.
fn exchange_ping(mut s: TcpStream) -> String {
    s.write_all(b"ping\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    got
}
