//! Seed 004: a Unix-domain stream server; says "Hello " and closes.  usage: unix_server PATH

use std::io::{self, Write};

use netkit::server::{Conn, Mode, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = &args[..] else {
        return Err("usage: unix_server PATH".into());
    };
    // A socket file left by an earlier run is replaced, as the seed does.
    if std::path::Path::new(path).exists() {
        std::fs::remove_file(path)?;
    }
    let server = Server::builder()
        .listen(format!("unix://{path}").parse()?)
        .mode(Mode::Sequential)
        .handler(|c: &mut Conn| -> io::Result<()> { c.write_all(b"Hello ") })
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
