//! Seed 002: send the words, print the answer.  usage: socketserver_client HOST PORT WORDS...

use std::io::Read;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, words @ ..] = &args[..] else {
        return Err("usage: socketserver_client HOST PORT WORDS...".into());
    };
    let data = words.join(" ");
    let mut sock =
        netkit::net::connect(&format!("{host}:{port}").parse()?, Duration::from_secs(10))?;
    sock.send_all(format!("{data}\n").as_bytes())?;
    let mut buf = [0u8; 1024];
    let n = sock.read(&mut buf)?;
    println!("Sent:     {data}");
    println!("Received: {}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}
