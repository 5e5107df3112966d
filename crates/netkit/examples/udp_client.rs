//! Seed 004: a UDP client; sends "Hello World" and prints the reply.  usage: udp_client HOST PORT

use std::time::Duration;

use netkit::net::Datagram;
use netkit::services::logger::python_addr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: udp_client HOST PORT".into());
    };
    let s = Datagram::connect_to(&format!("udp://{host}:{port}").parse()?)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.send(b"Hello World")?;
    let mut buf = [0u8; 1000];
    let r = s.recv_from(&mut buf)?;
    let data = String::from_utf8_lossy(&buf[..r.len]);
    println!("Received b'{data}' from server at {}", python_addr(&r.peer));
    Ok(())
}
