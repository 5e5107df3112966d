//! Regressions in pool: in `pool` and `sequential` mode a Protocol connection
//! that waits for its peer must not hold a worker, and at a shutdown every
//! accepted connection is served through the grace period.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use netkit::protocol::ConnInfo;
use netkit::server::{Mode, Server, ServerError, ShutdownHandle};

const STEP: Duration = Duration::from_secs(20);

/// Starts an echo server in `mode` with one worker; its address, stop handle
/// and thread.
fn echo_server(
    mode: Mode,
    grace: Duration,
) -> (
    String,
    ShutdownHandle,
    thread::JoinHandle<Result<(), ServerError>>,
) {
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .mode(mode)
        .workers(1)
        .grace(grace)
        .protocol(|_: &ConnInfo| netkit::services::Echo)
        .build()
        .unwrap();
    let addr = server.local_addresses()[0].to_string();
    let stop = server.shutdown_handle();
    (addr, stop, thread::spawn(move || server.serve_forever()))
}

/// One echo round trip on a fresh connection, bounded by `limit`.
fn echoes(addr: &str, msg: &[u8], limit: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(limit)).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() && back == msg
}

#[test]
fn pool_one_worker_serves_a_fresh_client_while_others_wait_for_bytes() {
    for mode in [Mode::Pool, Mode::Sequential] {
        let (addr, stop, t) = echo_server(mode, Duration::from_millis(500));
        // Connections that sent part of something and wait: more than workers.
        let waiting: Vec<TcpStream> = (0..50)
            .map(|_| {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.write_all(b"partial").unwrap();
                s
            })
            .collect();
        assert!(
            echoes(&addr, b"fresh\n", Duration::from_secs(5)),
            "{mode}: a fresh client was not served while 50 others wait"
        );
        // The waiting ones are served too, whenever they go on.
        for (i, mut s) in waiting.into_iter().enumerate() {
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut back = [0u8; 7];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"partial", "{mode}: connection {i}");
        }
        stop.shutdown();
        t.join().unwrap().unwrap();
    }
}

#[test]
fn pool_grace_serves_queued_connections() {
    for mode in [Mode::Pool, Mode::Sequential] {
        let (addr, stop, t) = echo_server(mode, Duration::from_millis(500));
        // Each client sends its bytes and stays, never sending end-of-file: with
        // one worker, all but one would wait for it.
        let clients: Vec<TcpStream> = (0..4)
            .map(|i| {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(STEP)).unwrap();
                s.write_all(&[b'0' + i; 1000]).unwrap();
                s
            })
            .collect();
        thread::sleep(Duration::from_millis(100));
        stop.shutdown();
        for (i, mut s) in clients.into_iter().enumerate() {
            let mut back = Vec::new();
            let _ = s.read_to_end(&mut back);
            assert_eq!(
                back.len(),
                1000,
                "{mode}: client {i} sent 1000 bytes before the shutdown"
            );
        }
        t.join().unwrap().unwrap();
    }
}
