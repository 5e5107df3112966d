//! Regressions in fetch: the library's client against servers written here on
//! std sockets, each serving a bounded number of connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use netkit::http::fetch::{Client, FetchError, FetchOptions, Target};

/// Serves `conns` connections on 127.0.0.1 with `answer`, sending each request
/// head down the returned channel.
fn server(
    conns: usize,
    answer: impl Fn(TcpStream) + Send + 'static,
) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming().take(conns) {
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new((&conn).take(64 * 1024));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            answer(conn);
        }
    });
    (port, rx)
}

fn has_authorization(head: &str) -> bool {
    head.lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"))
}

#[test]
fn invalid_port_is_an_invalid_url_error_not_a_panic() {
    let client = Client::new(FetchOptions::default()).unwrap();
    for url in ["http://127.0.0.1:99999/x", "http://127.0.0.1:abc/x"] {
        match client.urlopen(url) {
            Err(FetchError::InvalidUrl { url: u, .. }) => assert_eq!(u, url),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn reset_ending_a_body_without_length_is_incomplete() {
    let (port, _heads) = server(1, |mut conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let _ = conn.write_all(&[b'r'; 10_000]);
        thread::sleep(Duration::from_millis(200));
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a properly sized, initialised option value.
        let rc = unsafe {
            libc::setsockopt(
                conn.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
    });
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("r.bin");
    let client = Client::new(FetchOptions::default()).unwrap();
    let url = format!("http://127.0.0.1:{port}/r.bin");
    match client.download(&url, &Target::File(target.clone()), false, &mut |_| {}) {
        Err(FetchError::Incomplete {
            expected: None,
            reason,
            got,
            ..
        }) => {
            assert!(reason.contains("reset"), "{reason}");
            assert!(got <= 10_000);
        }
        other => panic!("{other:?}"),
    }
    assert!(!target.exists());
}

#[test]
fn redirect_to_another_port_drops_basic_auth() {
    let (b_port, b_heads) = server(1, |mut conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    let (a_port, a_heads) = server(1, move |mut conn| {
        let head = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{b_port}/b\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = conn.write_all(head.as_bytes());
    });
    let client = Client::new(FetchOptions {
        user: Some(("alice".into(), "s3cret".into())),
        ..FetchOptions::default()
    })
    .unwrap();
    let body = client
        .urlopen(&format!("http://127.0.0.1:{a_port}/a"))
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(body, b"ok");
    let limit = Duration::from_secs(10);
    assert!(has_authorization(&a_heads.recv_timeout(limit).unwrap()));
    assert!(!has_authorization(&b_heads.recv_timeout(limit).unwrap()));
}
