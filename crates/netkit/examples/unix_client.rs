//! Seed 004: a Unix-domain stream client.  usage: unix_client PATH

use std::io::Read;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = &args[..] else {
        return Err("usage: unix_client PATH".into());
    };
    let mut s = netkit::net::connect(&format!("unix://{path}").parse()?, Duration::from_secs(10))?;
    let mut data = Vec::new();
    s.read_to_end(&mut data)?;
    println!(
        "Received from server: b'{}'",
        String::from_utf8_lossy(&data)
    );
    Ok(())
}
