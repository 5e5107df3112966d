//! Seed 003, "A small server": greet each client and close.  usage: small_server HOST PORT

use netkit::protocol::{ConnInfo, Protocol, Transport};
use netkit::server::{Mode, Server};

struct Greeter;

impl Protocol for Greeter {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        println!("Got connection from {}", t.peer_addr());
        t.write(b"Thank you for connecting");
        t.close();
    }

    fn data_received(&mut self, _data: &[u8], _t: &mut dyn Transport) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: small_server HOST PORT".into());
    };
    let server = Server::builder()
        .listen(format!("{host}:{port}").parse()?)
        .mode(Mode::Sequential)
        .protocol(|_: &ConnInfo| Greeter)
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
