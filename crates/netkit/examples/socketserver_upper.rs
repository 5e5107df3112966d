//! Seed 002: socketserver's `MyTCPHandler`, answering with the upper-cased data.
//! usage: socketserver_upper HOST PORT [--threading]

use std::io::{self, Read, Write};

use netkit::server::{Conn, Mode, Server};

fn my_tcp_handler(c: &mut Conn) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf)?;
    let data = buf[..n].trim_ascii();
    println!(
        "{} wrote: {:?}",
        c.peer_addr(),
        String::from_utf8_lossy(data)
    );
    c.write_all(&data.to_ascii_uppercase())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, flags @ ..] = &args[..] else {
        return Err("usage: socketserver_upper HOST PORT [--threading]".into());
    };
    let mode = if flags.iter().any(|f| f == "--threading") {
        Mode::Threads
    } else {
        Mode::Sequential
    };
    let server = Server::builder()
        .listen(format!("{host}:{port}").parse()?)
        .mode(mode)
        .handler(my_tcp_handler)
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
