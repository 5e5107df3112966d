//! `netkit relay` from a datagram address (`udp://`, `unix-dgram://`): one session per
//! client address. The first datagram from a client opens a connection to the
//! target; each datagram from the client is written to it, and each chunk read
//! from the target goes back to the client as one datagram (at most
//! `UDP_MAX` bytes). Datagrams have no end-of-file, so a session ends when the
//! target closes or after `idle` without traffic from the client.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use std::fmt;

use crate::net::{max_datagram_size, Datagram, PeerAddr, TruncationLog, UDP_MAX};

use super::dump::Dumper;
use super::{is_idle_recv, Endpoint, Log};

/// How often idle sessions are looked for.
const TICK: Duration = Duration::from_millis(200);

struct Session {
    conn: u64,
    writer: Box<dyn Write + Send>,
    control: Arc<dyn super::Control>,
    last: Instant,
}

type Sessions = Arc<Mutex<HashMap<PeerAddr, Session>>>;

/// Relays datagrams arriving on `sock` to targets made by `open`, until `sock`
/// fails. A target that cannot be opened, and a datagram that cannot be answered,
/// are reported to `log` and dropped.
///
/// # Errors
///
/// The first error of `sock` other than a timeout, an interruption or a refusal.
pub fn serve<E: fmt::Display>(
    sock: Datagram,
    idle: Duration,
    dumper: Option<Arc<Dumper>>,
    log: &Log,
    open: impl Fn() -> Result<Endpoint, E>,
) -> io::Result<()> {
    let sock = Arc::new(sock);
    sock.set_read_timeout(Some(TICK))?;
    let sessions: Sessions = Arc::new(Mutex::new(HashMap::new()));
    let mut buf = vec![0u8; max_datagram_size(sock.is_unix())];
    let mut truncations = TruncationLog::default();
    let mut next_conn = 0u64;
    loop {
        expire(&sessions, idle, dumper.as_deref());
        let r = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if is_idle_recv(&e) => continue,
            Err(e) => return Err(e),
        };
        if r.truncated {
            truncations.note(&sock.local_address(), &r.peer, r.len);
            continue;
        }
        let data = &buf[..r.len];
        let mut map = sessions
            .lock()
            .map_err(|_| io::Error::other("session map poisoned"))?;
        if !map.contains_key(&r.peer) {
            if matches!(r.peer, PeerAddr::Unix(None)) {
                log("netkit: a datagram from an unnamed Unix socket cannot be answered; dropped");
                continue;
            }
            next_conn += 1;
            let ep = match open() {
                Ok(ep) => ep,
                Err(e) => {
                    log(&format!(
                        "netkit: connection {next_conn} from {}: {e:#}",
                        r.peer
                    ));
                    continue;
                }
            };
            if let Some(d) = &dumper {
                d.note(next_conn, &format!("datagrams from {}", r.peer));
            }
            let Endpoint {
                reader,
                writer,
                control,
            } = ep;
            let back = Backward {
                conn: next_conn,
                peer: r.peer.clone(),
                sock: sock.clone(),
                sessions: sessions.clone(),
                dumper: dumper.clone(),
            };
            thread::spawn(move || back.run(reader));
            map.insert(
                r.peer.clone(),
                Session {
                    conn: next_conn,
                    writer,
                    control,
                    last: Instant::now(),
                },
            );
        }
        let failed = match map.get_mut(&r.peer) {
            Some(s) => {
                s.last = Instant::now();
                if let Some(d) = &dumper {
                    d.chunk(s.conn, ">", data);
                }
                s.writer
                    .write_all(data)
                    .and_then(|()| s.writer.flush())
                    .is_err()
            }
            None => false,
        };
        if failed {
            if let Some(s) = map.remove(&r.peer) {
                s.control.close();
            }
        }
    }
}

/// Closes sessions idle for `idle`.
fn expire(sessions: &Sessions, idle: Duration, dumper: Option<&Dumper>) {
    let Ok(mut map) = sessions.lock() else { return };
    let now = Instant::now();
    map.retain(|_, s| {
        let keep = now.duration_since(s.last) < idle;
        if !keep {
            s.control.close();
            if let Some(d) = dumper {
                d.note(s.conn, "idle, closed");
            }
        }
        keep
    });
}

/// Target → client for one session.
struct Backward {
    conn: u64,
    peer: PeerAddr,
    sock: Arc<Datagram>,
    sessions: Sessions,
    dumper: Option<Arc<Dumper>>,
}

impl Backward {
    fn run(self, mut reader: Box<dyn Read + Send>) {
        let mut buf = vec![0u8; UDP_MAX];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(d) = &self.dumper {
                d.chunk(self.conn, "<", &buf[..n]);
            }
            if self.sock.send_to(&buf[..n], &self.peer).is_err() {
                break;
            }
        }
        if let Ok(mut map) = self.sessions.lock() {
            if map.get(&self.peer).is_some_and(|s| s.conn == self.conn) {
                if let Some(s) = map.remove(&self.peer) {
                    s.control.close();
                }
            }
        }
        if let Some(d) = &self.dumper {
            d.note(self.conn, "closed");
        }
    }
}
