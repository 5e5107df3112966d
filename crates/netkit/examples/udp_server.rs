//! Seed 004: a UDP server answering every datagram with "Hi!".  usage: udp_server HOST PORT

use netkit::server::{DatagramRequest, Server};
use netkit::services::logger::python_addr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: udp_server HOST PORT".into());
    };
    let server = Server::builder()
        .listen(format!("udp://{host}:{port}").parse()?)
        .datagram_handler(|req: &mut DatagramRequest<'_>| {
            let data = String::from_utf8_lossy(req.data());
            println!(
                "Received from client at {} saying b'{data}'",
                python_addr(req.peer())
            );
            req.reply(b"Hi!")
        })
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
