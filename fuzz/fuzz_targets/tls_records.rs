//! The TLS Protocol wrapper's record path: a client and a server wrapper joined
//! in memory complete a real handshake, then the fuzzer's bytes are sent as
//! application data in fuzzer-chosen pieces (echoed back and checked), and the
//! ciphertext on its way to the server is corrupted, cut or followed by raw
//! bytes as the input says. Never panics; intact records arrive intact; a
//! corrupted stream ends the connection instead of delivering altered plaintext.
//! A fresh server also takes the raw input as its first flight.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use netkit::protocol::testing::FakeTransport;
use netkit::protocol::tls::TlsProtocol;
use netkit::protocol::{PeerAddr, Protocol, Transport};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

#[path = "common.rs"]
mod common;

/// Records what it receives; the server's echoes it, the client's writes each
/// mailbox message.
struct Echo {
    got: Vec<u8>,
    echo: bool,
}

impl Echo {
    fn new(echo: bool) -> Echo {
        Echo {
            got: Vec::new(),
            echo,
        }
    }
}

impl Protocol for Echo {
    fn data_received(&mut self, data: &[u8], t: &mut dyn Transport) {
        self.got.extend_from_slice(data);
        if self.echo {
            t.write(data);
        }
    }
    fn message_received(&mut self, msg: Bytes, t: &mut dyn Transport) {
        t.write(&msg);
    }
}

fn configs() -> &'static (Arc<ServerConfig>, Arc<ClientConfig>) {
    static CONFIGS: OnceLock<(Arc<ServerConfig>, Arc<ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert: CertificateDer<'static> = ck.cert.der().clone();
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    })
}

fn addr(port: u16) -> PeerAddr {
    PeerAddr::Inet(([127, 0, 0, 1], port).into())
}

struct Wire {
    c: TlsProtocol<Echo>,
    ct: FakeTransport,
    s: TlsProtocol<Echo>,
    st: FakeTransport,
}

impl Wire {
    fn new() -> Wire {
        let (server, client) = configs();
        let name = ServerName::try_from("localhost").unwrap();
        let mut w = Wire {
            c: TlsProtocol::client(client.clone(), name, Echo::new(false)).unwrap(),
            ct: FakeTransport::new(addr(9443), addr(50000)),
            s: TlsProtocol::server(server.clone(), Echo::new(true)).unwrap(),
            st: FakeTransport::new(addr(50000), addr(9443)),
        };
        w.s.connection_made(&mut w.st);
        w.c.connection_made(&mut w.ct);
        w.pump(None);
        w
    }

    /// Moves bytes both ways until neither side writes; `tamper` may change
    /// what goes from the client to the server.
    fn pump(&mut self, mut tamper: Option<&mut dyn FnMut(Vec<u8>) -> Vec<u8>>) {
        for _ in 0..64 {
            let mut up = self.ct.take_written();
            if let Some(f) = tamper.as_mut() {
                if !up.is_empty() {
                    up = f(up);
                }
            }
            let down = self.st.take_written();
            if up.is_empty() && down.is_empty() {
                return;
            }
            if !up.is_empty() && !self.st.is_finished() {
                self.s.data_received(&up, &mut self.st);
            }
            if !down.is_empty() && !self.ct.is_finished() {
                self.c.data_received(&down, &mut self.ct);
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    // A server that sees the input as its first flight.
    let (server, _) = configs();
    let mut s = TlsProtocol::server(server.clone(), Echo::new(true)).unwrap();
    let mut st = FakeTransport::new(addr(50000), addr(9443));
    s.connection_made(&mut st);
    s.data_received(input, &mut st);
    s.eof_received(&mut st);

    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let (sizes, data) = rest.split_at(rest.len().min(4));
    let mut w = Wire::new();
    assert!(!w.ct.is_finished() && !w.st.is_finished(), "the handshake failed");
    let mut sent = Vec::new();
    for chunk in common::chunks(data, sizes) {
        sent.extend_from_slice(chunk);
        w.c.message_received(Bytes::copy_from_slice(chunk), &mut w.ct);
        match mode % 4 {
            // Intact records.
            0 | 1 => w.pump(None),
            // One ciphertext byte flipped.
            2 => w.pump(Some(&mut |mut up: Vec<u8>| {
                let i = usize::from(mode) % up.len();
                up[i] ^= 0x5a;
                up
            })),
            // Raw bytes after the records.
            _ => w.pump(Some(&mut |mut up: Vec<u8>| {
                up.extend_from_slice(chunk);
                up
            })),
        }
    }
    let got = &w.s.inner().got;
    if mode % 4 < 2 {
        assert_eq!(got, &sent, "intact records arrived altered");
        assert_eq!(&w.c.inner().got, &sent, "the echo came back altered");
    } else {
        // Whatever arrived before the damage is a prefix of what was sent.
        assert!(sent.starts_with(got), "altered plaintext was delivered");
    }
});
