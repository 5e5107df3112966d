//! Seed 003, "A small client": print what the server says.  usage: small_client HOST PORT

use std::io::Read;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port] = &args[..] else {
        return Err("usage: small_client HOST PORT".into());
    };
    let mut s = netkit::net::connect(&format!("{host}:{port}").parse()?, Duration::from_secs(10))?;
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf)?;
    println!("{}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}
