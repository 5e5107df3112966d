//! A TLS front for `netkit serve --tls-*`: the public addresses are bound here and
//! speak TLS; each connection is decrypted and relayed (half-close and all, one
//! session per connection) to the real server, which listens on a private Unix
//! socket in a fresh directory.
//!
//! The server modes and services stay untouched, at a price: services see the
//! relay's Unix peer address, not the client's. Running services over TLS
//! directly needs a stream-wrapping hook in `netkit::server` (or a TLS transport
//! in the reactor).

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use netkit::net::{self, Address, ListenOptions, Listener};
use rustls::ServerConfig;

use super::eof::{EofPolicy, Pipe};
use super::{tls, Endpoint};

/// How long connecting to the private backend may take.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The public TLS listeners and the private backend address.
#[derive(Debug)]
pub struct TlsFront {
    listeners: Vec<Listener>,
    dir: PathBuf,
    backend: Address,
    config: Arc<ServerConfig>,
}

impl TlsFront {
    /// Binds `addrs` (stream addresses only) and picks the private backend
    /// address, which the server must listen on instead.
    pub fn bind(addrs: &[String], config: Arc<ServerConfig>) -> anyhow::Result<TlsFront> {
        let mut listeners = Vec::new();
        for a in addrs {
            let addr = Address::parse(a).with_context(|| format!("invalid address `{a}`"))?;
            if !addr.is_stream() {
                bail!("TLS takes stream addresses (HOST:PORT or unix:///path), not {addr}");
            }
            let l = Listener::bind(&addr, &ListenOptions::default())
                .with_context(|| format!("cannot listen on {addr}"))?;
            listeners.push(l);
        }
        let dir = std::env::temp_dir().join(format!("netkit-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let backend = Address::Unix(dir.join("backend.sock"));
        Ok(TlsFront {
            listeners,
            dir,
            backend,
            config,
        })
    }

    /// Where the real server must listen.
    pub fn backend(&self) -> String {
        self.backend.to_string()
    }

    /// The public addresses, with their real ports.
    pub fn local_addresses(&self) -> Vec<Address> {
        self.listeners.iter().map(Listener::local_address).collect()
    }

    /// Starts accepting on every public address, each on its own thread.
    pub fn start(&mut self) {
        for l in self.listeners.drain(..) {
            let (config, backend) = (self.config.clone(), self.backend.clone());
            thread::spawn(move || accept_loop(&l, &config, &backend));
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn accept_loop(l: &Listener, config: &Arc<ServerConfig>, backend: &Address) {
    loop {
        let (stream, peer) = match l.accept() {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let (config, backend) = (config.clone(), backend.clone());
        thread::spawn(move || {
            let result = (|| -> anyhow::Result<()> {
                let (plain, bridge) = tls::accept(stream, &config)?;
                let b = net::connect(&backend, BACKEND_TIMEOUT)
                    .context("cannot reach the server behind TLS")?;
                let a = Endpoint::bridged(plain, Some(bridge))?;
                super::run(a, Endpoint::stream(b)?, Pipe::new(EofPolicy::Half), None)?;
                Ok(())
            })();
            if let Err(e) = result {
                tracing::info!("TLS connection from {peer}: {e:#}");
            }
        });
    }
}
