//! Running out of file descriptors on accept: the reactor logs, rests the listener
//! and accepts the waiting connections once descriptors are free again. Alone in
//! its binary because it lowers this process's `RLIMIT_NOFILE` (through Python's
//! `resource.prlimit`, which also plays the clients).

mod reactor_util;

use std::process::Command;

use reactor_util::*;

const CLIENT: &str = r#"
import resource, socket, sys
pid, port, limit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
served = []
for s in socks:
    s.sendall(b"x")
for s in socks:
    s.settimeout(0.3)
    try:
        served.append(s.recv(1) == b"x")
    except socket.timeout:
        served.append(False)
first = served.count(True)
assert 0 < first < 30, served
for s, ok in zip(socks, served):
    if ok:
        s.close()
resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
for s, ok in zip(socks, served):
    if not ok:
        s.settimeout(20)
        assert s.recv(1) == b"x"
print(first)
"#;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn out_of_descriptors_on_accept_pauses_then_recovers() {
    let srv = Running::start(config(1), |r| {
        r.listen(any_port(), echo).unwrap();
    });
    let mut s = srv.connect();
    std::io::Write::write_all(&mut s, b"w").unwrap();
    let mut b = [0u8; 1];
    std::io::Read::read_exact(&mut s, &mut b).unwrap();
    drop(s);
    eventually("warm-up closed", || srv.handle.connections() == 0);
    let limit = open_fds() + 8;
    let out = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .arg(std::process::id().to_string())
        .arg(srv.port().to_string())
        .arg(limit.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(first < 30);
    eventually("every connection closed", || srv.handle.connections() == 0);
    srv.stop();
}
