//! Seed 003: the logger again (the seed uses `poll()`), written line by line with
//! a LineReceiver, as the seed's Twisted version is.  usage: poll_logger HOST PORT

use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use netkit::protocol::{CloseReason, ConnInfo, PeerAddr, Transport};
use netkit::server::{Mode, Server};
use netkit::services::logger::python_addr;

struct SimpleLogger {
    peer: PeerAddr,
}

impl LineProtocol for SimpleLogger {
    fn connection_made(&mut self, t: &mut LineTransport<'_>) {
        println!("Got connection from {}", python_addr(t.peer_addr()));
    }

    fn line_received(&mut self, line: &[u8], _t: &mut LineTransport<'_>) {
        println!("{}", String::from_utf8_lossy(line));
    }

    fn connection_lost(&mut self, _reason: &CloseReason) {
        println!("{} disconnected", python_addr(&self.peer));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: poll_logger HOST PORT".into());
    };
    let server = Server::builder()
        .listen(format!("{host}:{port}").parse()?)
        .mode(Mode::Threads)
        .protocol(|c: &ConnInfo| {
            LineReceiver::new(SimpleLogger {
                peer: c.peer.clone(),
            })
            .with_delimiter(b"\n")
        })
        .handle_signals(true)
        .build()?;
    eprintln!("listening on {}", server.local_addresses()[0]);
    server.serve_forever()?;
    Ok(())
}
