//! Seed 004: a thread per client. The seed spawns a thread per accepted socket by hand; here
//! `Mode::Threads` does it, children and all.  usage: thread_server HOST PORT

use std::io::{self, Write};

use netkit::protocol::PeerAddr;
use netkit::server::{Conn, Mode, Server};

fn handle_client(c: &mut Conn) -> io::Result<()> {
    let peer = match c.peer_addr() {
        PeerAddr::Inet(a) => format!("{}:{}", a.ip(), a.port()),
        other => other.to_string(),
    };
    println!("Handling connection from {peer}");
    c.write_all(format!("Hello {peer}\n").as_bytes())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: thread_server HOST PORT".into());
    };
    let server = Server::builder()
        .listen(format!("{host}:{port}").parse()?)
        .mode(Mode::Threads)
        .handler(handle_client)
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
