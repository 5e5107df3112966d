//! Seed 003: many clients, each one's data printed as it arrives (the seed does it
//! with `select()` on one thread; here a Protocol, run a thread per connection).
//! usage: select_logger HOST PORT

use netkit::protocol::{CloseReason, ConnInfo, PeerAddr, Protocol, Transport};
use netkit::server::{Mode, Server};
use netkit::services::logger::python_addr;

struct Logger {
    peer: PeerAddr,
}

impl Protocol for Logger {
    fn connection_made(&mut self, t: &mut dyn Transport) {
        println!("Got connection from {}", python_addr(t.peer_addr()));
    }

    fn data_received(&mut self, data: &[u8], _t: &mut dyn Transport) {
        print!("{}", String::from_utf8_lossy(data));
    }

    fn connection_lost(&mut self, _reason: &CloseReason) {
        println!("{} disconnected", python_addr(&self.peer));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: select_logger HOST PORT".into());
    };
    let server = Server::builder()
        .listen(format!("{host}:{port}").parse()?)
        .mode(Mode::Threads)
        .protocol(|c: &ConnInfo| Logger {
            peer: c.peer.clone(),
        })
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
