//! Seed 003: a server using `ForkingMixIn` with a `StreamRequestHandler`
//! (here: `Mode::Fork` with a [`Handler`]).  usage: forking_server HOST PORT

use std::io::{self, Write};

use netkit::server::{Conn, Handler, Mode, Server};

struct Greet;

impl Handler for Greet {
    fn handle(&self, c: &mut Conn) -> io::Result<()> {
        println!("Got connection from {}", c.peer_addr());
        c.write_all(b"Thank you for connecting")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: forking_server HOST PORT".into());
    };
    let server = Server::builder()
        .listen(format!("{host}:{port}").parse()?)
        .mode(Mode::Fork)
        .handler(Greet)
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
