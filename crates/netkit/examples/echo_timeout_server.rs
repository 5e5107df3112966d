//! Seed 001: a TCP echo server, one client at a time; a client silent for 5
//! seconds is timed out.  usage: echo_timeout_server HOST PORT [SECONDS]

use std::io::{self, Read, Write};
use std::time::Duration;

use netkit::server::{Conn, Mode, Server};

fn echo(c: &mut Conn) -> io::Result<()> {
    println!("Connection from: {}", c.peer_addr());
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => c.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                println!("Connection timed out");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, rest @ ..] = &args[..] else {
        return Err("usage: echo_timeout_server HOST PORT [SECONDS]".into());
    };
    let secs = rest.first().map_or(Ok(5), |s| s.parse())?;
    let server = Server::builder()
        .listen(format!("{host}:{port}").parse()?)
        .mode(Mode::Sequential)
        .idle_timeout(Some(Duration::from_secs(secs)))
        .handler(echo)
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
