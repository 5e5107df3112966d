//! tokio's `examples/echo.rs`, on the current-thread runtime: one task per
//! connection reading into a 1024-byte buffer (as the example does) and writing
//! it back. Usage: `tokio-echo [ADDR] [BUFSIZE]` (default 127.0.0.1:8080, 1024).
//! Prints `listening on ADDR` on stderr when ready.

use std::env;
use std::error::Error;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let bufsize: usize = match env::args().nth(2) {
        Some(s) => s.parse()?,
        None => 1024,
    };
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);

    loop {
        let (mut socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0; bufsize];
            loop {
                let n = match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if socket.write_all(&buf[0..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}
